/**
 * The published package: the TypeScript sources compile (tsc, tsconfig.build.json) to JavaScript
 * and declarations that run without type stripping — relative `.ts` imports rewritten, the library
 * entry importable, the compiled command line answering — and the bin's first file gives an old
 * Node one clear sentence instead of a crash. (The packed tarball itself is installed and run by
 * .ci/pack-smoke in CI.)
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

const ROOT = new URL('..', import.meta.url).pathname;
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  engines: { node: string };
  exports: Record<string, { types: string; default: string } | string>;
};
// inside the project, so that the compiled files resolve the project's node_modules
const OUT = join(ROOT, 'node_modules', '.cache', `cao-events-build-test-${process.pid}`);
const TRACE = new URL('./helpers/trace-modules.ts', import.meta.url).pathname;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/** A `node` on PATH older than the package needs (the system Node of this kind of machine), if any. */
function oldNode(): { path: string; version: string } | undefined {
  const [major, minor] = /(\d+)\.(\d+)/.exec(PKG.engines.node)!.slice(1).map(Number) as [number, number];
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir || dir.includes('node_modules')) continue;
    const candidate = join(dir, 'node');
    if (!existsSync(candidate)) continue;
    const version = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    const [a, b] = version.split('.').map(Number) as [number, number];
    if (a < major || (a === major && b < minor)) return { path: candidate, version };
  }
  return undefined;
}

describe('the published package', () => {
  before(() => {
    rmSync(OUT, { recursive: true, force: true });
    execFileSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(ROOT, 'tsconfig.build.json'), '--outDir', OUT], { stdio: 'pipe' });
    mkdirSync(OUT, { recursive: true });
    copyFileSync(join(ROOT, 'package.json'), join(OUT, 'package.json')); // as in the package: dist/src/ two levels below it
  });
  after(() => rmSync(OUT, { recursive: true, force: true }));

  it('compiles every source to JavaScript with .d.ts, and no relative import still names a .ts file', () => {
    const files = filesUnder(OUT);
    const js = files.filter((f) => f.endsWith('.js'));
    assert.ok(js.some((f) => f.endsWith('/src/cli.js')) && js.some((f) => f.endsWith('/exporters/transform.js')));
    for (const source of filesUnder(join(ROOT, 'src')).filter((f) => f.endsWith('.ts'))) {
      const rel = source.slice(ROOT.length).replace(/\.ts$/, '');
      assert.ok(existsSync(join(OUT, `${rel}.js`)) && existsSync(join(OUT, `${rel}.d.ts`)), `${rel}.ts compiled`);
    }
    for (const file of js) {
      const text = readFileSync(file, 'utf8');
      assert.doesNotMatch(text, /(from|import\()\s*['"]\.{1,2}\/[^'"]*\.ts['"]/, `${file} imports a .ts file`);
    }
    const entry = PKG.exports['.'] as { types: string; default: string };
    assert.equal(entry.types, './dist/src/index.d.ts');
    assert.ok(existsSync(join(OUT, 'src', 'index.d.ts')));
  });

  it('the compiled library entry loads and works without type stripping', async () => {
    const lib = (await import(pathToFileURL(join(OUT, 'src', 'index.js')).href)) as typeof import('../src/index.ts');
    const telemetry = lib.createCaoTelemetry({ otlp: false });
    assert.ok(telemetry.emit({ type: 'session_created', sessionName: 'cao-packaged' }));
    await telemetry.shutdown();
  });

  it('the compiled command line prints its version and help, and --help loads no OpenTelemetry or undici', () => {
    const cli = join(OUT, 'src', 'cli.js');
    const version = spawnSync(process.execPath, ['--no-experimental-strip-types', cli, '--version'], { encoding: 'utf8' });
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout, `${PKG.version}\n`);
    const trace = join(OUT, 'modules.txt');
    const help = spawnSync(process.execPath, ['--import', TRACE, cli, 'gateway', '--help'], { encoding: 'utf8', env: { ...process.env, TRACE_MODULES_OUT: trace } });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /Usage: cao-events gateway/);
    const loaded = readFileSync(trace, 'utf8').split('\n');
    assert.deepEqual(loaded.filter((u) => /node_modules\/(@opentelemetry|undici)\//.test(u)), []);
    assert.ok(loaded.some((u) => u.includes('cao-events-build-test')), 'the compiled files ran');
  });

  it('bin/cao-events.cjs starts the command line on a recent Node', () => {
    const bin = join(ROOT, PKG.bin['cao-events']!);
    assert.match(readFileSync(bin, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${PKG.version}\n`);
  });

  it('the bin and src/cli.ts are committed executable (npm ci would chmod them and leave the tree modified)', (t) => {
    const files = [PKG.bin['cao-events']!, 'src/cli.ts'];
    for (const file of files) assert.ok((statSync(join(ROOT, file)).mode & 0o111) !== 0, `${file} is executable on disk`);
    const git = spawnSync('git', ['ls-files', '-s', ...files], { cwd: ROOT, encoding: 'utf8' });
    if (git.status !== 0 || git.stdout.trim() === '') {
      t.skip('not a git checkout');
      return;
    }
    for (const line of git.stdout.trim().split('\n')) assert.match(line, /^100755 /, line);
  });

  it('bin/cao-events.cjs on an old Node: one sentence naming the versions, exit code 1', (t) => {
    const old = oldNode();
    if (!old) {
      t.skip('no Node older than the engines field on PATH');
      return;
    }
    const r = spawnSync(old.path, [join(ROOT, PKG.bin['cao-events']!), '--version'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^cao-events needs Node ≥ 22\\.19 \\(found ${old.version.replace(/\./g, '\\.')}\\)\\. Install Node\\.js 22\\.19 or later`));
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
