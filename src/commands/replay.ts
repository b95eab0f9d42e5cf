/** `cao-events replay`: re-send dead letters (or pending outbox events) with their original ids. */
import { replay } from '../../exporters/delivery/replay.ts';
import { CONTENT_MODES, type ContentMode } from '../../exporters/cloudevents/encode.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';

export const REPLAY_OPTIONS = {
  'outbox-dir': { type: 'string' },
  'dead-letter': { type: 'boolean' },
  since: { type: 'string' },
  'callback-url': { type: 'string' },
  mode: { type: 'string' },
  config: { type: 'string' },
} as const;

export const REPLAY_USAGE = `Usage: cao-events replay [--dead-letter] [--since TIME] [--outbox-dir DIR] [--callback-url URL]

Re-sends CloudEvents kept on disk, each with its original id (receivers de-duplicate on source + id):
with --dead-letter the events a sink gave up on (rejected, retries exhausted, 410), removing those
delivered now from the dead-letter file; without it the events still pending in the outbox (when
the sidecar is not running). Prints how many were selected, delivered and failed; exits 1 if any failed.

Options:
  --outbox-dir <dir>     the outbox directory (default: outbox.dir from config / CAO_EVENTS_OUTBOX_DIR)
  --dead-letter          replay the dead-letter files instead of the pending outbox
  --since <time>         only events at or after this time (ISO 8601, e.g. 2026-11-25T10:00:00Z)
  --callback-url <url>   where to send them (default: the configured callback URL)
  --mode <m>             structured, binary or batch (default: the configured mode)
  --config <file>        config file
  --help                 show this help`;

export async function runReplayCommand(values: Record<string, string | boolean | undefined>): Promise<number> {
  const config = loadConfig({
    flags: { 'callback-url': values['callback-url'], mode: values.mode, 'outbox-dir': values['outbox-dir'] },
    env: process.env,
    configPath: values.config as string | undefined,
  });
  const url = config.callbackUrl;
  if (!url) throw new ConfigError('callbackUrl: replay needs --callback-url or CAO_EVENT_CALLBACK_URL');
  const dir = config.outbox.dir;
  if (!dir) throw new ConfigError('outbox.dir: replay needs --outbox-dir or CAO_EVENTS_OUTBOX_DIR');
  let since: Date | undefined;
  if (values.since !== undefined) {
    since = new Date(String(values.since));
    if (Number.isNaN(since.getTime())) throw new ConfigError(`since (flag --since): not a time: ${JSON.stringify(values.since)}`);
  }
  const mode = config.mode as ContentMode;
  if (!CONTENT_MODES.includes(mode)) throw new ConfigError(`mode: must be one of ${CONTENT_MODES.join(', ')}`);
  const logger = createLogger(config.logLevel);
  const result = await replay({ dir, url, mode, deadLetter: values['dead-letter'] === true, since, logger });
  process.stdout.write(`replay: ${result.selected} selected, ${result.delivered} delivered, ${result.failed} failed\n`);
  return result.failed > 0 ? 1 : 0;
}
