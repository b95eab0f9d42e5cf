/**
 * A CloudEvents receiver on 127.0.0.1 that can go down and come back on the same port: `down()`
 * stops listening (requests under way are answered first, so nothing is half-done; every later
 * connection is refused, as when a receiver is stopped), `up()` listens again. For outage tests.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudEventV1 } from 'cloudevents';
import { decodeRequest } from '../../exporters/cloudevents/decode.ts';
import { readBody } from './read-body.ts';

export interface SwitchableReceiver {
  url: string;
  port: number;
  /** Every event received, in arrival order, across outages. */
  received: CloudEventV1<unknown>[];
  /** Refused connections seen while down are not observable here; `requests` counts what arrived. */
  requests: number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startSwitchableReceiver(): Promise<SwitchableReceiver> {
  const received: CloudEventV1<unknown>[] = [];
  let server: Server | undefined;
  let port = 0;
  const state = { requests: 0 };
  const listen = async (): Promise<void> => {
    const s = createServer((req, res) => {
      readBody(req).then((body) => {
        state.requests += 1;
        try {
          received.push(...decodeRequest(req.headers, body).events);
          res.writeHead(204).end();
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  const down = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeIdleConnections();
    });
  };
  await listen();
  return {
    url: `http://127.0.0.1:${port}/events`,
    port,
    received,
    get requests() {
      return state.requests;
    },
    down,
    up: listen,
    close: down,
  };
}
