/**
 * The default CloudEvents `source`: identifies the observed CAO server, unique across machines
 * and stable across restarts (never a port 0 or a bare loopback address).
 *
 *   cao://<machine key>.<host name>:<CAO port>            CAO on this machine (loopback upstream)
 *   cao://<machine key>.<host name>:<CAO port>/<host>      CAO elsewhere (the upstream's host)
 *
 * The machine key is the first 12 hex digits of SHA-256 over "cao-events:" + the machine id
 * (/etc/machine-id or /var/lib/dbus/machine-id, so the id itself is never published); where
 * there is none (macOS, some containers) a random id kept in
 * `$XDG_STATE_HOME/cao-events/machine-id` (default ~/.local/state/…); failing that, the host
 * name. Set `source` (--source, CAO_EVENTS_SOURCE) to choose your own.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { dirname, join } from 'node:path';

/** CAO's own default address (CAO_API_HOST / CAO_API_PORT). */
export const CAO_DEFAULT_URL = 'http://127.0.0.1:9889';

export interface MachineIdentity {
  hostname: string;
  machineKey: string;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h === '::' || h === '0.0.0.0' ||
    /^127\.\d+\.\d+\.\d+$/.test(h) || h === '0:0:0:0:0:0:0:1';
}

/** A DNS-label-safe form of a host name. */
function label(name: string): string {
  const clean = name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[.-]+|[.-]+$/g, '');
  return clean || 'host';
}

/** The source for a CAO server URL on a machine. Pure. */
export function sourceFor(caoUrl: string, machine: MachineIdentity): string {
  const url = new URL(caoUrl);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const base = `cao://${machine.machineKey}.${label(machine.hostname)}:${port}`;
  return isLoopback(url.hostname) ? base : `${base}/${encodeURIComponent(url.hostname.replace(/^\[|\]$/g, ''))}`;
}

function readFirst(paths: readonly string[]): string | undefined {
  for (const path of paths) {
    try {
      const text = readFileSync(path, 'utf8').trim();
      if (text) return text;
    } catch {
      // not there: try the next
    }
  }
  return undefined;
}

function persistedId(env: Record<string, string | undefined>): string | undefined {
  const stateHome = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  const path = join(stateHome, 'cao-events', 'machine-id');
  const existing = readFirst([path]);
  if (existing) return existing;
  try {
    const id = randomUUID();
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${id}\n`, { flag: 'wx', mode: 0o644 });
    return id;
  } catch {
    return readFirst([path]); // another process won the race, or the directory is read-only
  }
}

let cached: MachineIdentity | undefined;

/** This machine's identity (read once per process). */
export function machineIdentity(env: Record<string, string | undefined> = process.env): MachineIdentity {
  if (cached) return cached;
  const name = hostname();
  const id = readFirst(['/etc/machine-id', '/var/lib/dbus/machine-id']) ?? persistedId(env) ?? `host:${name}`;
  cached = { hostname: name, machineKey: createHash('sha256').update(`cao-events:${id}`).digest('hex').slice(0, 12) };
  return cached;
}

/** The default source for a CAO server URL (CAO's default address when none is given). */
export function defaultSource(caoUrl: string = CAO_DEFAULT_URL): string {
  return sourceFor(caoUrl, machineIdentity());
}
