/**
 * `cao-events gateway` or `cao-events watch` as a real process (the Node 24 from node_modules running
 * src/cli.ts), with its CloudEvents going to a callback URL. stop() sends SIGTERM and waits for the
 * flush-and-exit; it never throws.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { E2E_DIR } from './real-cao.ts';

const ROOT = resolve(E2E_DIR, '..', '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const CLI = join(ROOT, 'src', 'cli.ts');

export interface CaoEventsOptions {
  command: 'gateway' | 'watch';
  /** The real cao-server. */
  upstream: string;
  /** Where CloudEvents go; none: CloudEvents off (the core still records every event). */
  callbackUrl?: string;
  /** gateway only. */
  port?: number;
  /** gateway only: the plugin ingest endpoint. */
  ingestPort?: number;
  pollIntervalMs: number;
  /** OTLP export of the spans (OTEL_EXPORTER_OTLP_ENDPOINT / _PROTOCOL); none when absent. */
  otlp?: { endpoint: string; protocol: string };
}

export interface CaoEventsProcess {
  /** The gateway's URL (gateway only). */
  url?: string;
  ingestUrl?: string;
  /** stderr so far (JSON log lines). */
  logs(): string;
  stop(): Promise<void>;
}

export async function startCaoEvents(opts: CaoEventsOptions): Promise<CaoEventsProcess> {
  const args = [CLI, opts.command, '--upstream', opts.upstream, ...(opts.callbackUrl ? ['--callback-url', opts.callbackUrl] : []),
    '--poll-interval-ms', String(opts.pollIntervalMs), '--log-level', 'info'];
  if (opts.command === 'gateway') {
    if (!opts.port || !opts.ingestPort) throw new Error('gateway needs port and ingestPort');
    args.push('--port', String(opts.port), '--ingest-port', String(opts.ingestPort));
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CAO_') && !k.startsWith('OTEL_')) env[k] = v;
  if (opts.otlp) Object.assign(env, { OTEL_EXPORTER_OTLP_ENDPOINT: opts.otlp.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: opts.otlp.protocol });
  const proc: ChildProcess = spawn(NODE, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  // The one INFO line every service command logs once it listens.
  const ready = new Promise<void>((resolveReady, reject) => {
    proc.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (/"msg":"cao-events (gateway listening|watching)/.test(stderr)) resolveReady();
    });
    void exited.then((code) => reject(new Error(`cao-events ${opts.command} exited with ${code} before listening:\n${stderr}`)));
  });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`cao-events ${opts.command} did not start:\n${stderr}`)), 30_000).unref());
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000))]);
      if (!done) proc.kill('SIGKILL');
    }
  };
  try {
    await Promise.race([ready, timeout]);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    ...(opts.command === 'gateway'
      ? { url: `http://127.0.0.1:${opts.port}`, ingestUrl: `http://127.0.0.1:${opts.ingestPort}/v1/cao/events` }
      : {}),
    logs: () => stderr,
    stop,
  };
}
