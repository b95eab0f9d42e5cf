/**
 * The ingest endpoint for the CAO plugin: POST /v1/cao/events with one plugin event (or an
 * array of them) as JSON. Validates each event (400 naming the problem), enforces a size limit
 * (413) and an optional shared secret (401), answers 202 and hands the CaoEvents on.
 */
import { timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { CaoEvent } from '../core/events.ts';
import { silentLogger } from '../logger.ts';
import type { CaoMetrics } from '../metrics.ts';
import { BodyTooLarge, readBody } from '../read-body.ts';
import { pluginEventToCaoEvent } from './plugin-event.ts';

export const INGEST_PATH = '/v1/cao/events';

export interface IngestServerOptions {
  host?: string;
  port?: number;
  token?: string;
  maxBodyBytes?: number;
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

function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return true;
  const header = req.headers.authorization ?? '';
  const expected = Buffer.from(`Bearer ${token}`);
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startIngestServer(options: IngestServerOptions): Promise<IngestServer> {
  const log = options.logger ?? silentLogger;
  const limit = options.maxBodyBytes ?? 1024 * 1024;
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') {
      const health = options.metrics?.health() ?? { ok: true };
      return reply(health.ok ? 200 : 503, health);
    }
    if (req.method === 'GET' && path === '/metrics' && options.metrics) return options.metrics.handle(req, res);
    if (path !== INGEST_PATH) return reply(404, { error: `not found; POST plugin events to ${INGEST_PATH}` });
    if (req.method !== 'POST') return reply(405, { error: 'use POST' });
    if (!authorized(req, options.token)) {
      log.warn({ path }, 'ingest request with a missing or wrong token refused');
      return reply(401, { error: 'missing or wrong bearer token' });
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
    server.once('error', reject);
    server.listen(options.port ?? 4319, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host && options.host.includes(':') ? `[${options.host}]` : (options.host ?? '127.0.0.1');
  return {
    url: `http://${host}:${port}${INGEST_PATH}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
