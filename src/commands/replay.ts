/**
 * `cao-events replay`: re-sends what sinks kept on disk, each sink's events through that sink's
 * own layers (renderer: CloudEvents mode, Slack, Discord or a user module; signing; headers),
 * with their original ids. The sinks come from the same configuration the sidecar runs with;
 * `--sink` picks some of them by name.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../config.ts';
import type { ReplayResult, ReplayTarget } from '../../exporters/delivery/replay.ts';
import type { CommandModule, OptionValues } from './command.ts';

export const REPLAY_OPTIONS = {
  'outbox-dir': { type: 'string' },
  'dead-letter': { type: 'boolean' },
  since: { type: 'string' },
  sink: { type: 'string' },
  'timeout-ms': { type: 'string' },
  'callback-url': { type: 'string' },
  mode: { type: 'string' },
  config: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
} as const;

export const REPLAY_USAGE = `Usage: cao-events replay [--dead-letter] [--since TIME] [--sink NAME[,NAME…]] [--config FILE] [--outbox-dir DIR]

Re-sends CloudEvents kept on disk, each sink's through that sink's own renderer (CloudEvents mode,
slack, discord or its transform module), signing and headers, each event with its original id
(receivers de-duplicate on source + id). The sinks are those of the configuration the sidecar runs
with (the config file's sinks: and the callback URL); each has its directory DIR/<sink name>.

With --dead-letter: the events sinks gave up on (rejected, retry budget spent, 410); those
delivered now leave the dead-letter file, the rest stay. Safe while the sidecar runs.
Without it: the events still pending in the outbox, delivered exactly as a sidecar start would;
only while the sidecar is stopped (the outbox is locked by a running one).
Prints, per sink and in total, how many were selected, delivered and failed; exits 1 if any failed.

Options:
  --dead-letter          replay the dead-letter files instead of the pending outbox
  --since <time>         with --dead-letter: only events at or after this time (ISO 8601)
  --sink <names>         only these sinks (comma-separated names; default all)
  --timeout-ms <ms>      keep trying for at most this long per sink (default 60000)
  --config <file>        the config file (sinks:, callbackUrl, outbox.dir) [env CAO_EVENTS_CONFIG]
  --outbox-dir <dir>     the outbox directory (default: outbox.dir / CAO_EVENTS_OUTBOX_DIR)
  --callback-url <url>   the callback URL's sink (default: callbackUrl / CAO_EVENT_CALLBACK_URL)
  --mode <m>             its content mode: structured, binary or batch (default: the configured mode)
  --log-level <level>    log level on stderr (default info) [env CAO_EVENTS_LOG_LEVEL, LOG_LEVEL]
  --log-format <f>       auto (readable on a terminal, else JSON lines), json or pretty
  --help                 show this help`;

function hasFiles(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() && readdirSync(dir).some((f) => f.startsWith('seg-') || f.startsWith('dead-letter'));
  } catch {
    return false;
  }
}

export async function runReplayCommand(values: OptionValues): Promise<number> {
  const config = loadConfig({
    flags: {
      'callback-url': values['callback-url'],
      mode: values.mode,
      'outbox-dir': values['outbox-dir'],
      'log-level': values['log-level'],
      'log-format': values['log-format'],
    },
    env: process.env,
    configPath: values.config as string | undefined,
  });
  const dir = config.outbox.dir;
  if (!dir) throw new ConfigError('outbox.dir: replay needs --outbox-dir or CAO_EVENTS_OUTBOX_DIR');
  const deadLetter = values['dead-letter'] === true;
  let since: Date | undefined;
  if (values.since !== undefined) {
    since = new Date(String(values.since));
    if (Number.isNaN(since.getTime())) throw new ConfigError(`since (flag --since): not a time: ${JSON.stringify(values.since)}`);
    if (!deadLetter) throw new ConfigError('since (flag --since): applies to --dead-letter only (pending events are replayed whole, in order)');
  }
  const timeoutText = String(values['timeout-ms'] ?? '60000');
  if (!/^\d+$/.test(timeoutText) || Number(timeoutText) < 1000) throw new ConfigError('timeout-ms (flag --timeout-ms): must be an integer of at least 1000');
  const timeoutMs = Number(timeoutText);
  // What replay runs is loaded only now: `replay --help` loads no dependency.
  const [
    { OutboxLockedError, OutboxUnavailableError },
    { DEAD_LETTER_FILE },
    { replayDeadLetters, replayPending },
    { createLogger },
    { createDeliveryQueue, outboxDirOf },
    { sinkSpecs },
  ] = await Promise.all([
    import('../../exporters/delivery/outbox.ts'),
    import('../../exporters/delivery/outbox-files.ts'),
    import('../../exporters/delivery/replay.ts'),
    import('../logger.ts'),
    import('../sink-factory.ts'),
    import('../sinks.ts'),
  ]);
  const specs = sinkSpecs(config);
  if (specs.length === 0) {
    throw new ConfigError('callbackUrl: replay needs the sinks it replays for: --config FILE (with sinks:) or --callback-url URL');
  }
  const names = specs.map((s) => s.name);
  const wanted = typeof values.sink === 'string' ? values.sink.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
  for (const name of wanted ?? []) {
    if (!names.includes(name)) throw new ConfigError(`sink (flag --sink): no configured sink named ${JSON.stringify(name)} (configured: ${names.join(', ')})`);
  }
  if (existsSync(dir)) {
    for (const entry of readdirSync(dir)) {
      if (!names.includes(entry) && hasFiles(join(dir, entry))) {
        process.stderr.write(`replay: ${join(dir, entry)}: no configured sink named ${JSON.stringify(entry)}; skipped\n`);
      }
    }
  }
  const logger = createLogger(config.logLevel, { format: config.logFormat });
  const total = { selected: 0, delivered: 0, failed: 0 };
  let errors = 0;
  for (const spec of specs.filter((s) => !wanted || wanted.includes(s.name))) {
    const replaySpec = { ...spec, retry: { ...spec.retry, maxAttempts: 3, maxElapsedMs: timeoutMs } };
    const target: ReplayTarget = {
      name: spec.name,
      dir: outboxDirOf(dir, spec.name),
      maxQueue: spec.maxQueue,
      maxBytes: config.outbox.maxBytes,
      queue: (storage, losses) => createDeliveryQueue(replaySpec, storage, losses, { logger }),
    };
    if (!existsSync(target.dir) || (deadLetter && !existsSync(join(target.dir, DEAD_LETTER_FILE)) && !hasFiles(target.dir))) continue;
    let result: ReplayResult;
    try {
      result = deadLetter
        ? await replayDeadLetters(target, { since, timeoutMs, logger })
        : await replayPending(target, { timeoutMs, logger });
    } catch (err) {
      if (!(err instanceof OutboxLockedError || err instanceof OutboxUnavailableError)) throw err;
      process.stderr.write(`replay ${spec.name}: ${err.message}\n`);
      errors += 1;
      continue;
    }
    if (result.selected === 0) continue;
    process.stdout.write(`replay ${spec.name}: ${result.selected} selected, ${result.delivered} delivered, ${result.failed} failed\n`);
    total.selected += result.selected;
    total.delivered += result.delivered;
    total.failed += result.failed;
  }
  process.stdout.write(`replay: ${total.selected} selected, ${total.delivered} delivered, ${total.failed} failed\n`);
  logger.flush();
  return total.failed > 0 || errors > 0 ? 1 : 0;
}

export const command: CommandModule = {
  usage: () => REPLAY_USAGE,
  options: REPLAY_OPTIONS,
  run: runReplayCommand,
};
