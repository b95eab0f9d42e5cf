/**
 * Runs one exported async function of a bench module in a fresh child process (Node's
 * --expose-gc on, plus any `nodeFlags`), so that each measurement starts from a clean heap and its
 * resident memory is its own. The result must be plain data (it crosses IPC). The child is killed
 * when the time bound passes.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export async function inChild<T>(
  moduleUrl: string | URL,
  exportName: string,
  args: unknown[],
  timeoutMs: number,
  nodeFlags: string[] = [],
): Promise<T> {
  const child = fork(fileURLToPath(import.meta.url), ['--isolate', String(moduleUrl), exportName, JSON.stringify(args)], {
    execArgv: ['--expose-gc', ...nodeFlags],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`${exportName} did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('message', (m: { result?: T; error?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (m.error !== undefined) reject(new Error(`${exportName}: ${m.error}`));
      else resolve(m.result as T);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      reject(new Error(`${exportName}: child exited (${code ?? signal}) without a result`));
    });
  });
}

/** Child side. No top-level await: the bench module imported here may import this module too. */
async function runInChild(moduleUrl: string, exportName: string, args: string): Promise<void> {
  try {
    const mod = (await import(moduleUrl)) as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const fn = mod[exportName];
    if (typeof fn !== 'function') throw new Error(`${moduleUrl} exports no function ${exportName}`);
    const result = await fn(...(JSON.parse(args) as unknown[]));
    process.send!({ result }, () => process.exit(0));
  } catch (err) {
    process.send!({ error: (err as Error).stack ?? String(err) }, () => process.exit(1));
  }
}

if (import.meta.main && process.argv[2] === '--isolate') {
  void runInChild(process.argv[3]!, process.argv[4]!, process.argv[5] ?? '[]');
}
