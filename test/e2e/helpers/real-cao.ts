/**
 * A real cao-server (from PyPI, installed by test/e2e/install.sh) for one CAO version, fully isolated:
 * its own temp dir with HOME, CAO_HOME_DIR, TMUX_TMPDIR (so its own tmux server), cwd, port, and the
 * stand-in agent CLI on PATH. `apiPort` becomes CAO_API_PORT in its environment (and so in every
 * agent pane and cao-mcp-server): point it at the gateway and agents go through the gateway.
 * stop() deletes the sessions it knows, SIGTERMs the process group, kills the tmux server and
 * removes the temp dir; it never throws.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync, closeSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'undici';

const run = promisify(execFile);
export const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const STANDINS = join(E2E_DIR, 'standins');

export type StandinProvider = 'mock_cli' | 'kiro_cli';

export interface CaoVersion {
  version: string;
  /** The CAO provider whose agent CLI our stand-in impersonates. */
  provider: StandinProvider;
}

/** The versions listed in test/e2e/cao-versions (the install script reads the same file). */
export function caoVersions(): CaoVersion[] {
  return readFileSync(join(E2E_DIR, 'cao-versions'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [version, provider] = l.split(/\s+/);
      if (!version || (provider !== 'mock_cli' && provider !== 'kiro_cli')) {
        throw new Error(`test/e2e/cao-versions: bad line ${JSON.stringify(l)} (want "<version> mock_cli|kiro_cli")`);
      }
      return { version, provider };
    });
}

export function cacheDir(): string {
  return process.env.CAO_EVENTS_CACHE || join(homedir(), '.cache', 'cao-events');
}

/** The venv install.sh made for a version: `cao-<v>`, or `cao-<v>-plugin` with our plugin pip-installed. */
export function venvOf(version: string, plugin: boolean): string {
  const dir = join(cacheDir(), 'venvs', `cao-${version}${plugin ? '-plugin' : ''}`);
  if (!existsSync(join(dir, 'bin', 'cao-server'))) {
    throw new Error(`${dir} has no cao-server: run test/e2e/install.sh first (it installs every version in test/e2e/cao-versions)`);
  }
  return dir;
}

const BINARY: Record<StandinProvider, string> = { mock_cli: 'mock_cli', kiro_cli: 'kiro-cli' };

export interface RealCaoOptions {
  version: CaoVersion;
  /** Use the venv with the cao-events plugin installed. */
  plugin: boolean;
  port: number;
  /** CAO_API_PORT of the server's environment: where agents (and cao-mcp-server) send requests. */
  apiPort: number;
  /** CAO_EVENTS_INGEST_URL for the plugin. */
  ingestUrl?: string;
}

export interface RealCao {
  url: string;
  port: number;
  version: CaoVersion;
  /** Temp root (home/, tmux/, bin/, work/ inside). */
  root: string;
  workDir: string;
  /** Runs `tmux -S <this server's socket> …`. */
  tmux(...args: string[]): Promise<string>;
  /** While on, every launch of the stand-in CLI fails (so CAO's provider init times out). */
  failLaunches(on: boolean): void;
  /** Sessions stop() deletes. */
  sessions: Set<string>;
  /** cao-server's own log (stdout + stderr) so far. */
  log(): string;
  stop(): Promise<void>;
}

async function healthy(url: string, timeoutMs: number, proc: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`cao-server exited with ${proc.exitCode}:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    try {
      const res = await request(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`cao-server at ${url} not healthy after ${timeoutMs} ms:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startRealCao(opts: RealCaoOptions): Promise<RealCao> {
  const venv = venvOf(opts.version.version, opts.plugin);
  const root = mkdtempSync(join(tmpdir(), `cao-e2e-${opts.version.version}-`));
  const home = join(root, 'home');
  const bin = join(root, 'bin');
  const workDir = join(root, 'work');
  const tmuxDir = join(root, 'tmux');
  for (const d of [home, bin, workDir, tmuxDir, join(home, '.standin')]) mkdirSync(d, { recursive: true });
  const binary = BINARY[opts.version.provider];
  symlinkSync(join(STANDINS, binary), join(bin, binary));
  // tmux starts login shells and Debian's /etc/profile resets PATH: put the stand-in back from HOME.
  for (const rc of ['.bashrc', '.bash_profile']) writeFileSync(join(home, rc), `export PATH="${bin}:$PATH"\n`);
  const uid = process.getuid?.() ?? 0;
  const socket = join(tmuxDir, `tmux-${uid}`, 'default');

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'TMUX' && !k.startsWith('CAO_')) env[k] = v;
  Object.assign(env, {
    HOME: home,
    CAO_HOME_DIR: join(home, '.cao'),
    TMUX_TMPDIR: tmuxDir,
    SHELL: '/bin/bash',
    PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    CAO_API_HOST: '127.0.0.1',
    CAO_API_PORT: String(opts.apiPort),
    CAO_MEMORY_ENABLED: 'false',
    OTEL_SDK_DISABLED: 'true',
    PYTHONWARNINGS: 'ignore',
    ...(opts.ingestUrl ? { CAO_EVENTS_INGEST_URL: opts.ingestUrl } : {}),
  });
  // The pane's login shell must find the stand-in (real-cao.md §1.3).
  const { stdout } = await run('bash', ['-lc', `command -v ${binary}`], { env, cwd: workDir }).catch((err: Error) => {
    throw new Error(`the ${binary} stand-in is not on a login shell's PATH (HOME=${home}): ${err.message}`);
  });
  if (!stdout.trim().startsWith(bin)) throw new Error(`login shell finds ${stdout.trim()}, not the stand-in in ${bin}`);

  const logFile = join(root, 'cao-server.log');
  const fd = openSync(logFile, 'a');
  const proc = spawn(join(venv, 'bin', 'cao-server'), ['--host', '127.0.0.1', '--port', String(opts.port)], {
    cwd: workDir, env, stdio: ['ignore', fd, fd], detached: true,
  });
  closeSync(fd);
  const url = `http://127.0.0.1:${opts.port}`;
  const sessions = new Set<string>();
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const tmux = async (...args: string[]): Promise<string> => (await run('tmux', ['-S', socket, ...args])).stdout;

  const stop = async (): Promise<void> => {
    for (const s of sessions) {
      try {
        const res = await request(`${url}/sessions/${encodeURIComponent(s)}`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
        await res.body.dump();
      } catch {
        // the server may be gone already
      }
    }
    if (proc.exitCode === null && proc.pid) {
      try {
        process.kill(-proc.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const killed = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
      if (!killed) {
        try {
          process.kill(-proc.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    await tmux('kill-server').catch(() => undefined);
    if (!process.env.CAO_E2E_KEEP) rmSync(root, { recursive: true, force: true });
  };

  try {
    await healthy(url, 60_000, proc, logFile);
  } catch (err) {
    await stop();
    throw err;
  }
  const failFile = join(home, '.standin', 'fail-launch');
  return {
    url,
    port: opts.port,
    version: opts.version,
    root,
    workDir,
    tmux,
    sessions,
    failLaunches(on) {
      if (on) writeFileSync(failFile, '');
      else if (existsSync(failFile)) unlinkSync(failFile);
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop,
  };
}
