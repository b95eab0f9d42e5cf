/**
 * Writes a real run's HTTP exchanges as a replayable fixture (CAO_E2E_RECORD=1):
 * test/fixtures/real-cao/<version>/scenario-<plugin|plain>.json. Format in test/fixtures/real-cao/README.md.
 * Machine-specific values are replaced by placeholders: the run's temp root by `{{ROOT}}`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { E2E_DIR } from './real-cao.ts';
import type { RunResult } from './real-run.ts';

function sanitize(value: unknown, root: string): unknown {
  if (typeof value === 'string') return value.split(root).join('{{ROOT}}');
  if (Array.isArray(value)) return value.map((v) => sanitize(v, root));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, sanitize(v, root)]));
  }
  return value;
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
    exchanges: result.exchanges.map((x) => sanitize(x, result.root)),
  };
  writeFileSync(file, `${JSON.stringify(fixture, null, 1)}\n`);
  return file;
}
