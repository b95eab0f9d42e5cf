/**
 * The long-running commands (gateway, watch, ingest): start the runtime and the sources, log
 * exactly one INFO line saying where they listen and where CloudEvents go, run until SIGINT or
 * SIGTERM, then flush (bounded) and exit 0. A source that cannot start (a port in use) closes
 * what was already started and the error goes up to the command line, which names the key.
 */
import type { Config } from '../config.ts';
import { startGatewayService } from '../gateway-service.ts';
import type { Logger } from '../logger.ts';
import { type Runtime, startRuntime } from '../runtime.ts';
import { startIngestServer } from '../sources/ingest-server.ts';
import { createPoller } from '../sources/poller.ts';

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => () => resolve(signal);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
}

interface Started {
  line: Record<string, unknown>;
  message: string;
  close: () => Promise<void>;
}

/** Starts the runtime, then the sources; if the sources fail, the runtime is closed before the error goes on. */
async function serve(config: Config, logger: Logger, start: (runtime: Runtime) => Promise<Started>): Promise<number> {
  const runtime = startRuntime(config, logger);
  let service: Started;
  try {
    service = await start(runtime);
  } catch (err) {
    await runtime.close();
    throw err;
  }
  logger.info(service.line, service.message);
  const signal = await untilSignal();
  logger.debug({ signal }, 'stopping');
  await service.close();
  await runtime.close();
  logger.flush();
  return 0;
}

export function runGatewayCommand(config: Config, logger: Logger): Promise<number> {
  return serve(config, logger, async (runtime) => {
    const gateway = await startGatewayService(config, runtime);
    return {
      line: {
        listen: gateway.url,
        upstream: config.gateway.upstream,
        ingest: gateway.ingestUrl,
        poller: config.poller.enabled ? `${config.poller.intervalMs} ms` : 'off',
      },
      message: `cao-events gateway listening on ${gateway.url}; ${runtime.deliveryNote}`,
      close: () => gateway.close(),
    };
  });
}

export function runWatchCommand(config: Config, logger: Logger): Promise<number> {
  return serve(config, logger, async (runtime) => {
    const poller = createPoller({
      baseUrl: config.gateway.upstream,
      intervalMs: config.poller.intervalMs,
      confirmations: config.poller.confirmations,
      token: config.poller.token,
      state: runtime.state,
      onEvent: (event) => runtime.record(event),
      logger,
    });
    poller.start();
    return {
      line: { upstream: config.gateway.upstream, interval: config.poller.intervalMs },
      message: `cao-events watching ${config.gateway.upstream}; ${runtime.deliveryNote}`,
      close: () => poller.stop(),
    };
  });
}

export function runIngestCommand(config: Config, logger: Logger): Promise<number> {
  return serve(config, logger, async (runtime) => {
    const ingest = await startIngestServer({
      host: config.ingest.host,
      port: config.ingest.port,
      token: config.ingest.token,
      maxBodyBytes: config.ingest.maxBodyBytes,
      allowedHosts: config.ingest.allowedHosts,
      allowedOrigins: config.ingest.allowedOrigins,
      onEvent: (event) => runtime.record(event),
      logger,
      metrics: runtime.metrics,
    });
    return {
      line: { ingest: ingest.url },
      message: `cao-events ingest listening on ${ingest.url}; ${runtime.deliveryNote}`,
      close: () => ingest.close(),
    };
  });
}
