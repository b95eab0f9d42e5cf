/**
 * Writes a real run's HTTP exchanges as a replayable fixture (CAO_E2E_RECORD=1):
 * test/fixtures/real-cao/<version>/scenario-<plugin|plain>.json. Format in test/fixtures/real-cao/README.md.
 * Machine-specific values are replaced by placeholders: the run's temp root by `{{ROOT}}`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { E2E_DIR } from './real-cao.ts';
import type { Exchange } from './cao-client.ts';
import type { RunResult } from './real-run.ts';

function sanitize(value: unknown, root: string): unknown {
  if (typeof value === 'string') return value.split(root).join('{{ROOT}}');
  if (Array.isArray(value)) return value.map((v) => sanitize(v, root));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, sanitize(v, root)]));
  }
  return value;
}

/** The value a poll waits on: a terminal's status, an inbox list's row statuses, or the HTTP status. */
export function pollState(x: Exchange): string {
  if (x.status !== 200) return `HTTP ${x.status}`;
  const r = x.response as unknown;
  if (Array.isArray(r)) return r.map((row) => String((row as { status?: unknown }).status ?? '')).join(',');
  if (r && typeof r === 'object' && typeof (r as { status?: unknown }).status === 'string') return String((r as { status: string }).status);
  return 'HTTP 200';
}

/**
 * Consecutive identical GETs (a client or the test polling until something holds) become one
 * entry: the last answer, how many polls, and the states they saw in order (`seen`).
 */
export function collapsePolls(exchanges: Exchange[]): Array<Exchange & { polls?: number; seen?: string[] }> {
  const out: Array<Exchange & { polls?: number; seen?: string[] }> = [];
  const key = (x: Exchange) => `${x.by} ${x.method} ${x.path} ${JSON.stringify(x.query)}`;
  for (const x of exchanges) {
    const prev = out.at(-1);
    if (prev && x.method === 'GET' && key(prev) === key(x)) {
      const seen = prev.seen ?? [pollState(prev)];
      const state = pollState(x);
      out[out.length - 1] = { ...x, polls: (prev.polls ?? 1) + 1, seen: seen.at(-1) === state ? seen : [...seen, state] };
    } else out.push(x);
  }
  return out;
}

export function writeFixtures(result: RunResult, plugin: boolean): string {
  const dir = join(E2E_DIR, '..', 'fixtures', 'real-cao', result.version.version);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `scenario-${plugin ? 'plugin' : 'plain'}.json`);
  const fixture = {
    format: 'cao-events real-cao exchanges v1',
    cao_version: result.version.version,
    stand_in_provider: result.version.provider,
    plugin_installed: plugin,
    placeholders: { '{{ROOT}}': 'the run\'s temp directory (HOME, work dir and tmux socket live under it)' },
    terminals: result.ids,
    exchanges: collapsePolls(result.exchanges).map((x) => sanitize(x, result.root)),
  };
  writeFileSync(file, `${JSON.stringify(fixture, null, 1)}\n`);
  return file;
}

/** CAO_E2E_DUMP=<dir>: every observer's CloudEvents, the ids and the logs of a run, for diagnosing a failure. */
export function dumpRun(dir: string, result: RunResult, plugin: boolean): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${result.version.version}-${plugin ? 'plugin' : 'plain'}.json`);
  writeFileSync(file, `${JSON.stringify({ ids: result.ids, events: result.events, logs: result.logs }, null, 1)}\n`);
  return file;
}
