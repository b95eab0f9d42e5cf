/** `cao-events receive`: a local CloudEvents receiver printing one readable line (or JSON) per event. */
import { loadLogSettings } from '../config.ts';
import { listenError } from '../listen-error.ts';
import type { CommandModule, OptionValues } from './command.ts';

export const RECEIVE_OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  json: { type: 'boolean' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
} as const;

export const RECEIVE_USAGE = `Usage: cao-events receive [--port N] [--host H] [--json]

A local CloudEvents receiver. Point the callback URL at it (CAO_EVENT_CALLBACK_URL=http://127.0.0.1:8089/)
to watch events arrive. Accepts structured, binary and batched HTTP requests, validates every event
(invalid requests get 400), and prints one line per event: time, type, session, sender → receiver,
orchestration, the first words of the message.

Options:
  --port <n>           port to listen on (default 8089; 0 picks a free one)
  --host <addr>        address to listen on (default 127.0.0.1)
  --json               print each event as one JSON line instead
  --log-level <level>  log level on stderr (default info) [env CAO_EVENTS_LOG_LEVEL, LOG_LEVEL]
  --log-format <f>     auto (readable on a terminal, else JSON lines), json or pretty
  --help               show this help`;

export async function runReceiveCommand(values: OptionValues): Promise<number> {
  const portText = (values.port as string | undefined) ?? '8089';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65_535) {
    process.stderr.write(`cao-events receive: --port must be an integer from 0 to 65535 (got ${JSON.stringify(portText)})\n`);
    return 2;
  }
  const log = loadLogSettings({ flags: values, env: process.env });
  const host = (values.host as string | undefined) ?? '127.0.0.1';
  const json = values.json === true;
  const [{ createLogger }, { startReceiver }, { formatEventLine }, { toPlainObject }] = await Promise.all([
    import('../logger.ts'),
    import('../receiver.ts'),
    import('../format-event.ts'),
    import('../../exporters/cloudevents/encode.ts'),
  ]);
  const logger = createLogger(log.logLevel, { format: log.logFormat });
  const receiver = await startReceiver({
    host,
    port,
    onEvent: ({ event }) => {
      process.stdout.write(`${json ? JSON.stringify(toPlainObject(event)) : formatEventLine(event)}\n`);
    },
    onInvalid: (error) => logger.warn({ error }, 'invalid CloudEvents request refused (400)'),
  }).catch((err: unknown) => {
    throw listenError(err, { host: '--host', port: '--port' }, host, port);
  });
  logger.info({ url: receiver.url }, `cao-events receiving CloudEvents on ${receiver.url}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await receiver.close();
  return 0;
}

export const command: CommandModule = {
  usage: () => RECEIVE_USAGE,
  options: RECEIVE_OPTIONS,
  run: runReceiveCommand,
};
