/**
 * The long-running commands (gateway, watch, ingest): start the runtime and the sources, log
 * exactly one INFO line saying where they listen and where CloudEvents go, run until SIGINT or
 * SIGTERM, then flush (bounded) and exit 0.
 */
import type { Config } from '../config.ts';
import { startGatewayService } from '../gateway-service.ts';
import type { Logger } from '../logger.ts';
import { startRuntime } from '../runtime.ts';
import { startIngestServer } from '../sources/ingest-server.ts';
import { createPoller } from '../sources/poller.ts';

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => () => resolve(signal);
    process.once('SIGINT', on('SIGINT'));
    process.once('SIGTERM', on('SIGTERM'));
  });
}

async function serve(
  logger: Logger,
  start: () => Promise<{ line: Record<string, unknown>; message: string; close: () => Promise<void> }>,
): Promise<number> {
  const service = await start();
  logger.info(service.line, service.message);
  const signal = await untilSignal();
  logger.debug({ signal }, 'stopping');
  await service.close();
  logger.flush();
  return 0;
}

export function runGatewayCommand(config: Config, logger: Logger): Promise<number> {
  return serve(logger, async () => {
    const runtime = startRuntime(config, logger);
    const gateway = await startGatewayService(config, runtime);
    return {
      line: {
        listen: gateway.url,
        upstream: config.gateway.upstream,
        ingest: gateway.ingestUrl,
        poller: config.poller.enabled ? `${config.poller.intervalMs} ms` : 'off',
      },
      message: `cao-events gateway listening on ${gateway.url}; ${runtime.deliveryNote}`,
      close: async () => {
        await gateway.close();
        await runtime.close();
      },
    };
  });
}

export function runWatchCommand(config: Config, logger: Logger): Promise<number> {
  return serve(logger, async () => {
    const runtime = startRuntime(config, logger);
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
      close: async () => {
        await poller.stop();
        await runtime.close();
      },
    };
  });
}

export function runIngestCommand(config: Config, logger: Logger): Promise<number> {
  return serve(logger, async () => {
    const runtime = startRuntime(config, logger);
    const ingest = await startIngestServer({
      host: config.ingest.host,
      port: config.ingest.port,
      token: config.ingest.token,
      maxBodyBytes: config.ingest.maxBodyBytes,
      onEvent: (event) => runtime.record(event),
      logger,
      metrics: runtime.metrics,
    });
    return {
      line: { ingest: ingest.url },
      message: `cao-events ingest listening on ${ingest.url}; ${runtime.deliveryNote}`,
      close: async () => {
        await ingest.close();
        await runtime.close();
      },
    };
  });
}
