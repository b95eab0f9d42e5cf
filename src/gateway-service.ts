/**
 * `cao-events gateway` as a service: the transparent proxy in front of cao-server, the
 * classifier turning exchanges into CaoEvents after the response went out, the poller
 * reconciling what never passes through HTTP, and the plugin ingest endpoint. Events an
 * exchange yields are recorded in order; one that names only a terminal the recorder has not
 * seen is placed in its session by asking CAO (`GET /terminals/{id}`) first.
 */
import { Agent, request } from 'undici';
import type { Config } from './config.ts';
import type { CaoEvent } from './core/events.ts';
import type { Runtime } from './runtime.ts';
import { ExchangeClassifier } from './sources/classify.ts';
import { type GatewayProxy, startGatewayProxy } from './sources/gateway-proxy.ts';
import { type IngestServer, startIngestServer } from './sources/ingest-server.ts';
import { type Poller, createPoller } from './sources/poller.ts';

export interface GatewayService {
  url: string;
  ingestUrl?: string;
  poller?: Poller;
  /** Resolves when every event handed in so far has been recorded. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export interface GatewayServiceOptions {
  /** Start the plugin ingest endpoint too (default true). */
  ingest?: boolean;
}

export async function startGatewayService(
  config: Config,
  runtime: Runtime,
  options: GatewayServiceOptions = {},
): Promise<GatewayService> {
  const log = runtime.logger;
  const upstream = config.gateway.upstream;
  const lookupAgent = new Agent({ connections: 4, headersTimeout: 5_000, bodyTimeout: 5_000 });
  const classifier = new ExchangeClassifier();
  let chain: Promise<void> = Promise.resolve();

  async function sessionOfTerminal(id: string): Promise<string | undefined> {
    const known = runtime.telemetry.recorder.sessionOfTerminal(id);
    if (known) return known;
    try {
      const res = await request(new URL(`/terminals/${encodeURIComponent(id)}`, upstream), {
        dispatcher: lookupAgent,
        headers: config.poller.token ? { authorization: `Bearer ${config.poller.token}` } : {},
        signal: AbortSignal.timeout(5_000),
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        return undefined;
      }
      const body = (await res.body.json()) as { session_name?: unknown };
      return typeof body.session_name === 'string' ? body.session_name : undefined;
    } catch (err) {
      log.warn({ terminal: id, error: (err as Error).message }, 'could not look up the session of a terminal');
      return undefined;
    }
  }

  async function place(event: CaoEvent): Promise<CaoEvent> {
    if (event.sessionName) return event;
    for (const id of [event.terminalId, event.sender, event.receiver]) {
      if (!id) continue;
      const sessionName = await sessionOfTerminal(id);
      if (sessionName) return { ...event, sessionName };
    }
    return event;
  }

  function handle(events: CaoEvent[]): void {
    if (events.length === 0) return;
    chain = chain.then(async () => {
      for (const event of events) runtime.record(await place(event));
    });
  }

  const proxy: GatewayProxy = await startGatewayProxy({
    upstream,
    host: config.gateway.host,
    port: config.gateway.port,
    capture: (method, path) => classifier.capture(method, path),
    // Only the few classified routes are copied; a large message (a 5 MiB task) must still classify.
    maxCaptureBytes: 16 * 1024 * 1024,
    onRequest: (arrival) => handle(classifier.onRequest(arrival)),
    onExchange: (exchange) => handle(classifier.onExchange({ ...exchange, finishedAt: new Date() })),
    logger: log,
  });

  let poller: Poller | undefined;
  if (config.poller.enabled) {
    poller = createPoller({
      baseUrl: upstream,
      intervalMs: config.poller.intervalMs,
      confirmations: config.poller.confirmations,
      token: config.poller.token,
      onEvent: (event) => handle([event]),
      logger: log,
    });
    poller.start();
  }

  let ingest: IngestServer | undefined;
  if (options.ingest ?? true) {
    ingest = await startIngestServer({
      host: config.ingest.host,
      port: config.ingest.port,
      token: config.ingest.token,
      maxBodyBytes: config.ingest.maxBodyBytes,
      onEvent: (event) => handle([event]),
      logger: log,
      metrics: runtime.metrics,
    });
  }

  return {
    url: proxy.url,
    ingestUrl: ingest?.url,
    poller,
    settled: async () => {
      let current: Promise<void>;
      do {
        current = chain;
        await current;
      } while (current !== chain);
    },
    async close(): Promise<void> {
      await poller?.stop();
      await Promise.all([proxy.close(), ingest?.close()]);
      await chain;
      await lookupAgent.close();
    },
  };
}
