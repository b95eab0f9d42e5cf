#!/usr/bin/env node
/**
 * The `cao-events` command line. Runs on the Node 24 that npm brings (node_modules/.bin/node):
 * call it as `npx cao-events …` or through the npm scripts.
 */
import { parseArgs } from 'node:util';
import { ConfigError, KEYS, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { OtlpConfigError } from './otlp.ts';
import { runDemoCommand, DEMO_OPTIONS, DEMO_USAGE } from './demo/demo-command.ts';
import { runGatewayCommand, runIngestCommand, runWatchCommand } from './commands/services.ts';
import { RECEIVE_OPTIONS, RECEIVE_USAGE, runReceiveCommand } from './commands/receive.ts';
import { REPLAY_OPTIONS, REPLAY_USAGE, runReplayCommand } from './commands/replay.ts';
import { VERIFY_OPTIONS, VERIFY_USAGE, runVerifyCommand } from './commands/verify.ts';

type OptionSpec = { type: 'string' | 'boolean'; short?: string };

/** Flags of every configuration key (see config.ts), shared by the service commands. */
const CONFIG_OPTIONS: Record<string, OptionSpec> = Object.fromEntries([
  ['config', { type: 'string' }],
  ...Object.values(KEYS)
    .filter((k) => k.flag)
    .map((k) => [k.flag!, { type: k.kind.t === 'bool' ? 'boolean' : 'string' }]),
]);

function configHelp(only?: (key: string) => boolean): string {
  const rows = Object.entries(KEYS)
    .filter(([key, spec]) => spec.flag && (!only || only(key)))
    .map(([key, spec]) => {
      const flag = spec.kind.t === 'bool' ? `--[no-]${spec.flag}` : `--${spec.flag} <value>`;
      const env = spec.env ? ` [env ${spec.env}]` : '';
      return `  ${flag.padEnd(32)} ${spec.help}${env} (key ${key})`;
    });
  return [
    `  ${'--config <file>'.padEnd(32)} YAML or JSON config file [env CAO_EVENTS_CONFIG]`,
    ...rows,
    `  ${'--help'.padEnd(32)} show this help`,
    '',
    'Precedence: flags > environment > config file > defaults. Standard OTEL_* variables',
    '(OTEL_EXPORTER_OTLP_ENDPOINT, _PROTOCOL, _HEADERS, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,',
    'OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER) configure OTLP export.',
  ].join('\n');
}

const forGateway = (): boolean => true;
const noGateway = (k: string) => !k.startsWith('gateway.host') && !k.startsWith('gateway.port');

interface Command {
  summary: string;
  usage: () => string;
  options: Record<string, OptionSpec>;
  run: (values: Record<string, string | boolean | undefined>) => Promise<number>;
}

function serviceCommand(
  summary: string,
  synopsis: string,
  only: (key: string) => boolean,
  run: (config: ReturnType<typeof loadConfig>, logger: ReturnType<typeof createLogger>) => Promise<number>,
): Command {
  return {
    summary,
    usage: () => `${synopsis}\n\n${summary}\n\nOptions:\n${configHelp(only)}`,
    options: CONFIG_OPTIONS,
    run: async (values) => {
      const config = loadConfig({
        flags: values,
        env: process.env,
        configPath: values.config as string | undefined,
      });
      return run(config, createLogger(config.logLevel));
    },
  };
}

const COMMANDS: Record<string, Command> = {
  gateway: serviceCommand(
    'Transparent proxy in front of cao-server (start it with --port 9890) that records every session, terminal and message; with the poller and the plugin ingest endpoint.',
    'Usage: cao-events gateway [options]',
    forGateway,
    runGatewayCommand,
  ),
  watch: serviceCommand(
    'Poll a CAO server and record what changes (no proxy): sessions, terminals, delivered inbox messages.',
    'Usage: cao-events watch [--upstream URL] [options]',
    (k) => noGateway(k) && !k.startsWith('ingest.'),
    runWatchCommand,
  ),
  ingest: serviceCommand(
    'Accept events from the CAO plugin (integrations/cao-plugin) at /v1/cao/events and record them.',
    'Usage: cao-events ingest [--ingest-port N] [options]',
    (k) => noGateway(k) && !k.startsWith('poller.'),
    runIngestCommand,
  ),
  receive: {
    summary: 'A local CloudEvents receiver: prints one line per event (all three HTTP content modes).',
    usage: () => RECEIVE_USAGE,
    options: RECEIVE_OPTIONS,
    run: runReceiveCommand,
  },
  replay: {
    summary: 'Re-send dead letters (or pending outbox events) with their original ids.',
    usage: () => REPLAY_USAGE,
    options: REPLAY_OPTIONS,
    run: runReplayCommand,
  },
  verify: {
    summary: 'Check the Standard Webhooks signature of a received request (JSON {headers, body} on stdin or --file).',
    usage: () => VERIFY_USAGE,
    options: VERIFY_OPTIONS,
    run: runVerifyCommand,
  },
  demo: {
    summary: 'Run the whole pipeline against a built-in CAO simulator and print the CloudEvents timeline.',
    usage: () => DEMO_USAGE,
    options: DEMO_OPTIONS,
    run: runDemoCommand,
  },
};

function mainUsage(): string {
  return [
    'Usage: cao-events <command> [options]',
    '',
    'Makes CLI Agent Orchestrator (CAO) sessions observable: OpenTelemetry spans + CloudEvents webhooks.',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`),
    '',
    'Run `cao-events <command> --help` for the options of a command.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    const target = name === 'help' && rest[0] ? COMMANDS[rest[0]] : undefined;
    process.stdout.write(`${target ? target.usage() : mainUsage()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`cao-events: unknown command ${JSON.stringify(name)}\n\n${mainUsage()}\n`);
    return 2;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowNegative: true,
      strict: true,
      allowPositionals: false,
    }) as { values: Record<string, string | boolean | undefined> });
  } catch (err) {
    process.stderr.write(`cao-events ${name}: ${(err as Error).message}\n\n${command.usage()}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${command.usage()}\n`);
    return 0;
  }
  try {
    return await command.run(values);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof OtlpConfigError) {
      process.stderr.write(`cao-events ${name}: configuration error: ${err.message}\n`);
      return 2;
    }
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      process.stderr.write(`cao-events ${name}: ${(err as Error).message} (is another instance running?)\n`);
      return 1;
    }
    throw err;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`cao-events: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
