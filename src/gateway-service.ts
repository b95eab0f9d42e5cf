/**
 * `cao-events gateway` as a service: the transparent proxy in front of cao-server, the
 * classifier turning exchanges into CaoEvents after the response went out, the poller
 * reconciling what never passes through HTTP, and the plugin ingest endpoint. Every source's
 * events are handed to the core in one order (one promise chain); an event that names only a
 * terminal the core does not know is placed in its session by asking CAO first (see
 * session-locator.ts).
 *
 * Cause before effect: CAO delivers an inbox message to an idle receiver inside the POST that
 * dispatches it, so the plugin's (or the poller's) `delivered` can arrive before the gateway
 * reports the `dispatched`. While such a POST is in flight, deliveries on its route wait for it
 * (at most HOLD_MS), so the session's sequence and the events' times agree.
 */
import type { Config } from './config.ts';
import type { CaoEvent } from './core/events.ts';
import type { Runtime } from './runtime.ts';
import { ExchangeClassifier } from './sources/classify.ts';
import { type GatewayProxy, startGatewayProxy } from './sources/gateway-proxy.ts';
import { type IngestServer, startIngestServer } from './sources/ingest-server.ts';
import { type Poller, createPoller } from './sources/poller.ts';
import { createSessionLocator } from './sources/session-locator.ts';

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

/** Longest a delivery waits for the dispatch exchange on its route. */
export const HOLD_MS = 10_000;

const routeOf = (type: string, sender: string | undefined, receiver: string | undefined): string =>
  `${type}|${sender ?? ''}|${receiver ?? ''}`;

export async function startGatewayService(
  config: Config,
  runtime: Runtime,
  options: GatewayServiceOptions = {},
): Promise<GatewayService> {
  const log = runtime.logger;
  const upstream = config.gateway.upstream;
  const locator = createSessionLocator({ upstream, token: config.poller.token, state: runtime.state, logger: log });
  const classifier = new ExchangeClassifier({ sessionOfTerminal: (id) => runtime.state.sessionOfTerminal(id) });
  let chain: Promise<void> = Promise.resolve();

  function handle(events: CaoEvent[]): void {
    if (events.length === 0) return;
    chain = chain.then(async () => {
      for (const event of events) runtime.record(await locator.locate(event));
    });
  }

  // ---- dispatches in flight, and the deliveries waiting for them ----
  const inFlight = new Map<string, number>();
  const held = new Map<string, Array<{ events: CaoEvent[]; timer: NodeJS.Timeout }>>();

  function release(route: string): void {
    const waiting = held.get(route);
    held.delete(route);
    for (const { events, timer } of waiting ?? []) {
      clearTimeout(timer);
      handle(events);
    }
  }

  /** Hands a source's event on, or holds a delivery while its dispatch is in flight. */
  function report(event: CaoEvent): void {
    const route = routeOf(event.orchestrationType ?? '', event.sender, event.receiver);
    if (event.type !== 'message_sent' || event.phase !== 'delivered' || !inFlight.get(route)) {
      handle([event]);
      return;
    }
    const entry = { events: [event], timer: setTimeout(() => release(route), HOLD_MS) };
    held.set(route, [...(held.get(route) ?? []), entry]);
  }

  const proxy: GatewayProxy = await startGatewayProxy({
    upstream,
    host: config.gateway.host,
    port: config.gateway.port,
    capture: (method, path) => classifier.capture(method, path),
    // Only the few classified routes are copied; a large message (a 5 MiB task) must still classify.
    maxCaptureBytes: 16 * 1024 * 1024,
    onRequest: (arrival) => {
      const dispatch = classifier.dispatchOf(arrival);
      if (dispatch) {
        const route = routeOf(dispatch.orchestrationType, dispatch.sender, dispatch.receiver);
        inFlight.set(route, (inFlight.get(route) ?? 0) + 1);
      }
      handle(classifier.onRequest(arrival));
    },
    onExchange: (exchange) => {
      handle(classifier.onExchange({ ...exchange, finishedAt: new Date() }));
      const dispatch = exchange.requestBody === undefined ? undefined : classifier.dispatchOf(exchange);
      if (!dispatch) return;
      const route = routeOf(dispatch.orchestrationType, dispatch.sender, dispatch.receiver);
      const open = (inFlight.get(route) ?? 1) - 1;
      if (open > 0) inFlight.set(route, open);
      else inFlight.delete(route);
      release(route);
    },
    logger: log,
    clientHeadersTimeoutMs: config.gateway.headersTimeoutMs,
  });

  let poller: Poller | undefined;
  if (config.poller.enabled) {
    poller = createPoller({
      baseUrl: upstream,
      intervalMs: config.poller.intervalMs,
      confirmations: config.poller.confirmations,
      token: config.poller.token,
      state: runtime.state,
      onEvent: report,
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
      allowedHosts: config.ingest.allowedHosts,
      allowedOrigins: config.ingest.allowedOrigins,
      onEvent: report,
      logger: log,
      metrics: runtime.metrics,
    }).catch(async (err: unknown) => {
      await Promise.all([poller?.stop(), proxy.close(), locator.close()]); // nothing half-started stays open
      throw err;
    });
  }

  const settled = async (): Promise<void> => {
    let current: Promise<void>;
    do {
      current = chain;
      await current;
    } while (current !== chain);
  };

  return {
    url: proxy.url,
    ingestUrl: ingest?.url,
    poller,
    settled,
    async close(): Promise<void> {
      await poller?.stop();
      await Promise.all([proxy.close(), ingest?.close()]);
      for (const route of [...held.keys()]) release(route);
      await settled();
      await locator.close();
    },
  };
}
