/**
 * The Go binaries the end-to-end tests run for real (Jaeger v2, the OpenTelemetry Collector):
 * installed by the repository's own install scripts (cached; a missing Go toolchain or a failed
 * build fails the test, nothing is skipped), started as child processes on loopback and stopped
 * again. A binary counts as started when the collector framework logs that its pipelines run.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = new URL('../../../', import.meta.url).pathname;

/** What every collector-based binary logs once all its components have started. */
export const COLLECTOR_READY = /Everything is ready\. Begin running and processing data\./;

/**
 * Runs an install script of .ci/ (idempotent: prints the cached binary at once, else builds it)
 * and returns the path it prints on its last line.
 */
export async function installBinary(script: 'install-jaeger' | 'install-otelcol'): Promise<string> {
  try {
    const { stdout } = await run('bash', [`${REPO}.ci/${script}`], { cwd: REPO, timeout: 45 * 60_000, maxBuffer: 64 * 1024 * 1024 });
    const path = stdout.trim().split('\n').at(-1);
    if (!path) throw new Error('printed no path');
    return path;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`.ci/${script} failed: ${e.message}\n${(e.stderr ?? '').slice(-4000)}`);
  }
}

export interface RunningBinary {
  readonly name: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** A line the process prints when it is ready. */
  ready: RegExp;
  timeoutMs?: number;
}

/**
 * Starts a long-running binary and resolves when its output matches `ready`; rejects (with the
 * output) when it exits first or does not get ready in time.
 */
export async function startBinary(options: StartOptions): Promise<RunningBinary> {
  const child: ChildProcess = spawn(options.command, options.args, {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let exited: string | undefined;
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of waiters) w();
  };
  const append = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    if (output.length > 4_000_000) output = output.slice(-2_000_000);
    notify();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  child.on('exit', (code, signal) => {
    exited = `exited with ${signal ?? code}`;
    notify();
  });
  child.on('error', (err) => {
    exited = `could not start: ${err.message}`;
    notify();
  });

  const binary: RunningBinary = {
    name: options.name,
    output: () => output,
    async stop(): Promise<void> {
      if (exited || child.exitCode !== null) return;
      const gone = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    },
  };

  const timeoutMs = options.timeoutMs ?? 60_000;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => check(true), timeoutMs);
    function check(timedOut = false): void {
      if (options.ready.test(output)) done();
      else if (exited) done(new Error(`${options.name} ${exited} before it was ready:\n${output.slice(-6000)}`));
      else if (timedOut) done(new Error(`${options.name} not ready after ${timeoutMs} ms:\n${output.slice(-6000)}`));
    }
    function done(err?: Error): void {
      clearTimeout(timer);
      waiters.delete(check);
      if (err) {
        void binary.stop();
        reject(err);
      } else resolve();
    }
    waiters.add(check);
    check();
  });
  return binary;
}
