/**
 * Data flows one way: sources → core → exporters. Nothing under exporters/ imports the sources,
 * the recorder, the state, the ledger or the emit path; from src/ the exporters may read only
 * the event vocabulary (the field registry and the attribute names), never state. The core does
 * not import sources either.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(new URL('..', import.meta.url).pathname);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') || path.endsWith('.mjs') ? [path] : [];
  });
}

/** Repository-relative paths a file imports (relative imports only). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g)]
    .map((m) => relative(ROOT, resolve(join(file, '..'), m[1]!)));
}

describe('one direction', () => {
  it('exporters/ reads only the event vocabulary from src/', () => {
    const allowed = new Set(['src/core/fields.ts', 'src/core/attributes.ts']);
    for (const file of files(join(ROOT, 'exporters'))) {
      for (const target of imports(file).filter((t) => t.startsWith('src/'))) {
        assert.ok(allowed.has(target), `${relative(ROOT, file)} imports ${target}`);
      }
    }
  });

  it('the event vocabulary imports nothing of the core\'s state, and the core no source', () => {
    for (const vocabulary of ['src/core/fields.ts', 'src/core/attributes.ts', 'src/core/events.ts', 'src/core/time.ts']) {
      for (const target of imports(join(ROOT, vocabulary))) {
        assert.ok(['src/core/fields.ts', 'src/core/events.ts', 'src/core/time.ts'].includes(target), `${vocabulary} imports ${target}`);
      }
    }
    for (const file of files(join(ROOT, 'src/core'))) {
      for (const target of imports(file)) assert.ok(!target.startsWith('src/sources/'), `${relative(ROOT, file)} imports ${target}`);
    }
  });
});
