/**
 * The ingest endpoint for the CAO plugin: POST /v1/cao/events with one plugin event (or an
 * array of them) as `application/json` (415 otherwise). Validates each event (400 naming the
 * problem), enforces a size limit (413), answers 202 and hands the CaoEvents on. Every route,
 * /metrics and /healthz included, refuses a Host that is not loopback or allowed (403, DNS
 * rebinding), a browser Origin that is not allowed (403, cross-site requests) and, when a shared
 * secret is set, a request without it (401). Listening beyond loopback without a secret is
 * logged as a warning at start-up.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { CaoEvent } from '../core/events.ts';
import { listenError } from '../listen-error.ts';
import { silentLogger } from '../logger.ts';
import type { CaoMetrics } from '../metrics.ts';
import { BodyTooLarge, readBody } from '../read-body.ts';
import { pluginEventToCaoEvent } from './plugin-event.ts';
import { type GuardOptions, exposureWarning, guardRequest, isJsonContentType } from './request-guard.ts';

export const INGEST_PATH = '/v1/cao/events';

export interface IngestServerOptions {
  host?: string;
  port?: number;
  token?: string;
  maxBodyBytes?: number;
  /** Host names besides loopback and the bound address (see request-guard.ts). */
  allowedHosts?: readonly string[];
  /** Browser origins allowed to post (default none). */
  allowedOrigins?: readonly string[];
  onEvent: (event: CaoEvent) => void;
  logger?: Logger;
  /** Serves GET /metrics (Prometheus text) and a richer GET /healthz. */
  metrics?: CaoMetrics;
}

export interface IngestServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startIngestServer(options: IngestServerOptions): Promise<IngestServer> {
  const log = options.logger ?? silentLogger;
  const limit = options.maxBodyBytes ?? 1024 * 1024;
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 4319;
  const guard: GuardOptions = {
    boundHost: host,
    allowedHosts: options.allowedHosts,
    allowedOrigins: options.allowedOrigins,
    token: options.token,
  };
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const path = (req.url ?? '/').split('?')[0];
    const verdict = guardRequest(req.headers, guard);
    if (!verdict.ok) {
      log.warn({ path, status: verdict.status, error: verdict.error }, 'ingest request refused');
      req.resume();
      return reply(verdict.status, { error: verdict.error });
    }
    if (req.method === 'GET' && path === '/healthz') {
      const health = options.metrics?.health() ?? { ok: true };
      return reply(health.ok ? 200 : 503, health);
    }
    if (req.method === 'GET' && path === '/metrics' && options.metrics) return options.metrics.handle(req, res);
    if (path !== INGEST_PATH) return reply(404, { error: `not found; POST plugin events to ${INGEST_PATH}` });
    if (req.method !== 'POST') return reply(405, { error: 'use POST' });
    if (!isJsonContentType(req.headers['content-type'])) {
      log.warn({ path }, 'ingest request that is not application/json refused');
      req.resume();
      return reply(415, { error: 'plugin events must be sent as content-type application/json' });
    }
    readBody(req, limit).then((body) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return reply(400, { error: 'body is not valid JSON' });
      }
      const items = Array.isArray(parsed) ? parsed : [parsed];
      let events: CaoEvent[];
      try {
        events = items.map((item, i) => {
          try {
            return pluginEventToCaoEvent(item);
          } catch (err) {
            throw new Error(items.length > 1 ? `[${i}]: ${(err as Error).message}` : (err as Error).message);
          }
        });
      } catch (err) {
        log.warn({ error: (err as Error).message }, 'invalid plugin event refused');
        return reply(400, { error: (err as Error).message });
      }
      for (const event of events) options.onEvent(event);
      reply(202, { accepted: events.length });
    }, (err) => {
      if (err instanceof BodyTooLarge) reply(413, { error: `event larger than ${limit} bytes` });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError(err, { host: 'ingest.host', port: 'ingest.port' }, host, port)));
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const exposed = exposureWarning(host, options.token);
  if (exposed) log.warn({ host, port: bound }, exposed);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${bound}${INGEST_PATH}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
