/**
 * `cao-events <command>` as a real child process on this Node, with a clean environment (no
 * CAO_EVENT* or OTEL_* of the caller), its stderr kept and read as JSON log lines. Every process
 * started is killed when the calling test file ends.
 */
import { spawn } from 'node:child_process';
import { after } from 'node:test';
import { scratchDir } from './scratch-dir.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAO_EVENT') && !k.startsWith('OTEL_')));
/** Children's temp files (the demo's span file) go to a directory removed at exit. */
clean.TMPDIR = scratchDir('cao-events-cli-');
const children: Array<ReturnType<typeof spawn>> = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

export function startCli(command: string, args: string[]) {
  const child = spawn(process.execPath, [CLI, command, ...args], { env: clean });
  children.push(child);
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c));
  const lines = () => err.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { child, lines, stderr: () => err };
}
