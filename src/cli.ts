#!/usr/bin/env node
/**
 * The `cao-events` command line. Installed, it runs as compiled JavaScript behind
 * bin/cao-events.cjs (which checks the Node version first); in a checkout it runs from source on
 * the Node 24 that npm brings: `./node_modules/.bin/node src/cli.ts …`, `npx cao-events …`.
 *
 * Each command lives in its own module, imported only when that command is named: `--help` and
 * `--version` load nothing but this file and package.json, and no command loads what another
 * needs. Every failure to start (bad configuration, a port in use) is one message on stderr
 * naming the key, after what was started is closed, and a non-zero exit code.
 */
import { parseArgs } from 'node:util';
import type { CommandModule, OptionValues } from './commands/command.ts';
import { packageInfo } from './package-info.ts';

interface CommandEntry {
  summary: string;
  load: () => Promise<CommandModule>;
}

const COMMANDS: Record<string, CommandEntry> = {
  gateway: {
    summary:
      'Transparent proxy in front of cao-server (start it with --port 9890) that records every session, terminal and message; with the poller and the plugin ingest endpoint.',
    load: async () => (await import('./commands/service-commands.ts')).gateway,
  },
  watch: {
    summary: 'Poll a CAO server and record what changes (no proxy): sessions, terminals, delivered inbox messages.',
    load: async () => (await import('./commands/service-commands.ts')).watch,
  },
  ingest: {
    summary: 'Accept events from the CAO plugin (integrations/cao-plugin) at /v1/cao/events and record them.',
    load: async () => (await import('./commands/service-commands.ts')).ingest,
  },
  receive: {
    summary: 'A local CloudEvents receiver: prints one line per event (all three HTTP content modes).',
    load: async () => (await import('./commands/receive.ts')).command,
  },
  replay: {
    summary: 'Re-send dead letters (or pending outbox events) with their original ids.',
    load: async () => (await import('./commands/replay.ts')).command,
  },
  verify: {
    summary: 'Check the Standard Webhooks signature of a received request (JSON {headers, body} on stdin or --file).',
    load: async () => (await import('./commands/verify.ts')).command,
  },
  demo: {
    summary: 'Run the whole pipeline against a built-in CAO simulator and print the CloudEvents timeline.',
    load: async () => (await import('./commands/demo.ts')).command,
  },
};

function mainUsage(): string {
  return [
    'Usage: cao-events <command> [options]',
    '       cao-events --version | --help',
    '',
    'Makes CLI Agent Orchestrator (CAO) sessions observable: OpenTelemetry spans + CloudEvents webhooks.',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`),
    '',
    'Run `cao-events <command> --help` for the options of a command.',
    'Logs go to stderr: readable on a terminal, JSON lines otherwise; LOG_LEVEL or --log-level sets the level.',
  ].join('\n');
}

/** The error kinds that are the user's to fix: one line, no stack. */
const CONFIGURATION_ERRORS = new Set(['ConfigError', 'OtlpConfigError']);

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`${packageInfo().version}\n`);
    return 0;
  }
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    const entry = name === 'help' && rest[0] ? COMMANDS[rest[0]] : undefined;
    process.stdout.write(`${entry ? (await entry.load()).usage(entry.summary) : mainUsage()}\n`);
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    process.stderr.write(`cao-events: unknown command ${JSON.stringify(name)}\n\n${mainUsage()}\n`);
    return 2;
  }
  const command = await entry.load();
  let values: OptionValues;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowNegative: true,
      strict: true,
      allowPositionals: false,
    }) as { values: OptionValues });
  } catch (err) {
    process.stderr.write(`cao-events ${name}: ${(err as Error).message}\n\n${command.usage(entry.summary)}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${command.usage(entry.summary)}\n`);
    return 0;
  }
  try {
    return await command.run(values);
  } catch (err) {
    const kind = (err as Error | undefined)?.name ?? '';
    if (CONFIGURATION_ERRORS.has(kind)) {
      process.stderr.write(`cao-events ${name}: configuration error: ${(err as Error).message}\n`);
      return 2;
    }
    if (kind === 'ListenError') {
      process.stderr.write(`cao-events ${name}: ${(err as Error).message}\n`);
      return 1;
    }
    throw err;
  }
}

/** Runs the command line and sets the exit code; the entry point of bin/cao-events.cjs. */
export function run(argv: string[]): Promise<void> {
  return main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`cao-events: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

if (import.meta.main) void run(process.argv.slice(2));
