/**
 * A webhook receiver in its own child process (so it neither shares the event loop nor counts in
 * the resident memory of the process under test), driven over IPC.
 *
 * kinds:
 * - `receiver`: the project's own CloudEvents receiver (src/receiver.ts: reads the body, decodes
 *   and validates every event, answers 202). With `latency`, each event's `data.message` is
 *   expected to be `hr:<process.hrtime.bigint()>` of the moment it was emitted; the receiver
 *   subtracts it from its own `process.hrtime.bigint()` when the event is decoded. hrtime is
 *   CLOCK_MONOTONIC, one clock for every process on the machine, so the difference is the true
 *   emit-to-receipt time.
 * - `slow`: reads the body, waits `delayMs` (0: none), answers 202 (a slow webhook, or with 0 a
 *   cheap one; counts events, does not validate them).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startReceiver } from '../src/receiver.ts';

export interface ReceiverHostOptions {
  kind: 'receiver' | 'slow';
  delayMs?: number;
  latency?: boolean;
  /** Listen on this port (default: a free one), e.g. where a sink already sends while it is down. */
  port?: number;
}

export interface ReceiverStats {
  events: number;
  /** Requests seen (`slow` only; the built-in receiver does not count them). */
  requests: number;
  invalid: number;
  /** emit-to-receipt times in ms (only with `latency`), since the last reset. */
  latenciesMs: number[];
  /** CPU time (user + system) the receiver process used since the last reset, ms. */
  cpuMs: number;
  rss: number;
}

export interface ReceiverProcess {
  url: string;
  stats(): Promise<ReceiverStats>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

type Command = { id: number; cmd: 'stats' | 'reset' | 'stop' };

// ------------------------------------------------------------------ child side

async function serve(opts: ReceiverHostOptions): Promise<void> {
  let events = 0;
  let requests = 0;
  let invalid = 0;
  let latencies: number[] = [];
  let cpu = process.cpuUsage();
  let url: string;
  let close: () => Promise<void>;

  if (opts.kind === 'receiver') {
    const receiver = await startReceiver({
      port: opts.port ?? 0,
      onEvent: (item) => {
        events++;
        if (opts.latency) {
          const message = (item.event.data as { message?: unknown } | undefined)?.message;
          if (typeof message === 'string' && message.startsWith('hr:')) {
            latencies.push(Number(process.hrtime.bigint() - BigInt(message.slice(3))) / 1e6);
          }
        }
        // The built-in receiver keeps every event it got; a benchmark sends hundreds of thousands.
        if (receiver.received.length >= 10_000) receiver.received.length = 0;
      },
      onInvalid: () => invalid++,
    });
    url = receiver.url;
    close = () => receiver.close();
  } else {
    const delayMs = opts.delayMs ?? 100;
    const server = http.createServer({ noDelay: true }, (req, res) => {
      requests++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if ((req.headers['content-type'] ?? '').includes('batch')) {
          try {
            events += (JSON.parse(body) as unknown[]).length;
          } catch {
            invalid++;
          }
        } else events++;
        if (delayMs > 0) setTimeout(() => res.writeHead(202, { 'content-length': '0' }).end(), delayMs);
        else res.writeHead(202, { 'content-length': '0' }).end();
      });
    });
    server.listen(opts.port ?? 0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    close = () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
  }
  process.on('message', (m: Command) => {
    if (m.cmd === 'stats') {
      process.send!({
        id: m.id,
        result: {
          events,
          requests,
          invalid,
          latenciesMs: latencies,
          cpuMs: ((u) => (u.user + u.system) / 1000)(process.cpuUsage(cpu)),
          rss: process.memoryUsage.rss(),
        } satisfies ReceiverStats,
      });
    } else if (m.cmd === 'reset') {
      events = 0;
      requests = 0;
      invalid = 0;
      latencies = [];
      cpu = process.cpuUsage();
      process.send!({ id: m.id, result: null });
    } else {
      void close().then(() => {
        process.send!({ id: m.id, result: null });
        process.exit(0);
      });
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready: url });
}

if (import.meta.main && process.argv[2] === '--receiver-host') {
  void serve(JSON.parse(process.argv[3] ?? '{}') as ReceiverHostOptions);
}

// ------------------------------------------------------------------ parent side

export async function startReceiverProcess(opts: ReceiverHostOptions): Promise<ReceiverProcess> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--receiver-host', JSON.stringify(opts)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, (result: unknown) => void>();
  let nextId = 1;
  const ready = new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`receiver process exited (${code}) before it was ready`)));
    child.on('message', (m: { ready?: string; id?: number; result?: unknown }) => {
      if (m.ready) resolve(m.ready);
      else if (m.id !== undefined) {
        pending.get(m.id)?.(m.result);
        pending.delete(m.id);
      }
    });
  });
  const url = await ready;
  const call = <T>(cmd: Command['cmd']): Promise<T> =>
    new Promise<T>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve as (r: unknown) => void);
      child.send({ id, cmd } satisfies Command);
    });
  return {
    url,
    stats: () => call<ReceiverStats>('stats'),
    reset: () => call<void>('reset'),
    stop: async () => {
      const exited = once(child, 'exit');
      await call<void>('stop');
      await exited;
    },
  };
}
