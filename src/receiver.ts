/**
 * A local CloudEvents receiver: accepts structured, binary and batched HTTP requests, validates
 * every event, and hands each to a callback. Users point the callback URL at it to try things
 * out (`cao-events receive`); tests and the demo use it too.
 */
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudEventV1 } from 'cloudevents';
import type { ContentMode } from '../exporters/cloudevents/encode.ts';
import { decodeRequest } from '../exporters/cloudevents/decode.ts';
import { BodyTooLarge, readBody } from './read-body.ts';

export interface ReceivedEvent {
  event: CloudEventV1<unknown>;
  mode: ContentMode;
  receivedAt: number;
  headers: IncomingMessage['headers'];
}

export interface ReceiverOptions {
  host?: string;
  port?: number;
  /** Largest request body accepted. */
  maxBodyBytes?: number;
  onEvent?: (received: ReceivedEvent) => void;
  /** Called for a request that is not a valid CloudEvents request (answered 400). */
  onInvalid?: (error: string) => void;
}

export interface Receiver {
  url: string;
  port: number;
  readonly received: ReceivedEvent[];
  close(): Promise<void>;
}

export async function startReceiver(options: ReceiverOptions = {}): Promise<Receiver> {
  const received: ReceivedEvent[] = [];
  const limit = options.maxBodyBytes ?? 16 * 1024 * 1024;
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method === 'GET' && (req.url === '/healthz' || req.url === '/')) {
      reply(200, { ok: true, received: received.length });
      return;
    }
    if (req.method !== 'POST') {
      reply(405, { error: 'POST CloudEvents here' });
      return;
    }
    readBody(req, limit).then(
      (body) => {
        let decoded: ReturnType<typeof decodeRequest>;
        try {
          decoded = decodeRequest(req.headers, body);
        } catch (err) {
          options.onInvalid?.((err as Error).message);
          reply(400, { error: (err as Error).message });
          return;
        }
        const receivedAt = Date.now();
        for (const event of decoded.events) {
          const item = { event, mode: decoded.mode, receivedAt, headers: req.headers };
          received.push(item);
          options.onEvent?.(item);
        }
        reply(202, { accepted: decoded.events.length });
      },
      (err) => {
        if (err instanceof BodyTooLarge) reply(413, { error: `body larger than ${limit} bytes` });
        else res.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    port: address.port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
