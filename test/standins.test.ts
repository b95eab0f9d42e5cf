/**
 * The stand-in agent CLIs of the real-CAO e2e suite (test/e2e/standins) speak the pane protocol
 * CAO's providers read (test/e2e/README.md). Checked here on a pipe, without CAO; the e2e suite
 * runs them in real tmux panes under real cao-server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { scratchDir } from './helpers/scratch-dir.ts';

const DIR = join(import.meta.dirname, 'e2e', 'standins');
const PROMPT = '\u276f ';
const KIRO = (agent: string) => `\x1b[38;5;13m[${agent}] \x1b[38;5;10m> \x1b[0m`;

function runCli(name: string, args: string[], input: string, home = tmpdir()): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('python3', [join(DIR, name), ...args], { env: { ...process.env, HOME: home } }, (err, stdout) => {
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ code: err ? Number(err.code) : 0, stdout });
    });
    child.stdin!.end(input);
  });
}

describe('mock_cli stand-in', () => {
  it('prompts, answers each line, injects errors and sleeps, strips paste markers, exits on /exit', async () => {
    const input = ['hello', '', '__mock_error__', '__mock_sleep_0', '\x1b[200~pasted\x1b[201~', '/exit', 'never read'].join('\n') + '\n';
    const { code, stdout } = await runCli('mock_cli', ['--delay-ms', '0', '--unknown-flag'], input);
    assert.equal(code, 0);
    assert.equal(stdout, [
      'mock_cli stand-in ready\n', PROMPT,
      '> MOCK: hello\n', PROMPT,
      PROMPT,
      'ERROR: mock failure injected\n', PROMPT,
      '> MOCK: slept 0s\n', PROMPT,
      '> MOCK: pasted\n', PROMPT,
      'goodbye\n',
    ].join(''));
  });
});

describe('kiro-cli stand-in', () => {
  it('shows the coloured agent prompt, a `> thinking` line before each reply, kiro\'s error text', async () => {
    const input = ['do it', '', '__mock_error__', '/exit'].join('\n') + '\n';
    const { code, stdout } = await runCli('kiro-cli', ['chat', '--legacy-ui', '--agent', 'developer'], input);
    assert.equal(code, 0);
    assert.equal(stdout, [
      'kiro-cli stand-in (agent developer)\n', KIRO('developer'),
      '> thinking\n', '> MOCK: do it\n', KIRO('developer'),
      KIRO('developer'),
      '> thinking\n', 'Kiro is having trouble responding right now\n', KIRO('developer'),
    ].join(''));
  });
  it('refuses anything but `chat`', async () => {
    const { code } = await runCli('kiro-cli', ['--version'], '');
    assert.equal(code, 2);
  });
});

describe('launch-failure injection (test control)', () => {
  for (const [name, args] of [['mock_cli', []], ['kiro-cli', ['chat', '--agent', 'x']]] as const) {
    it(`${name} exits 1 before any prompt while $HOME/.standin/fail-launch exists`, async () => {
      const home = scratchDir('standin-');
      try {
        mkdirSync(join(home, '.standin'));
        writeFileSync(join(home, '.standin', 'fail-launch'), '');
        const { code, stdout } = await runCli(name, [...args], 'hello\n', home);
        assert.equal(code, 1);
        assert.match(stdout, /launch failure injected/);
        assert.ok(!stdout.includes(PROMPT) && !stdout.includes('> '), 'no prompt, no reply');
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    });
  }
});
