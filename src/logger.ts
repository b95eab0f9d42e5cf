/**
 * Structured logging with pino. Logs go to stderr so that stdout stays free for command output
 * (the receiver's event lines, the demo's timeline). On a terminal they are human-readable
 * (pino-pretty, loaded only then); anywhere else one JSON object per line, for log collectors.
 * Message bodies and query strings are never logged at info or above.
 */
import { createRequire } from 'node:module';
import { type DestinationStream, type Logger, pino } from 'pino';
import type { LogFormat, LogLevel } from './log-level.ts';

export type { Logger };
export { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log-level.ts';

const load = createRequire(import.meta.url);

/** pino-pretty as an in-process, synchronous stream to stderr (no worker thread). */
function prettyStderr(): DestinationStream {
  const pretty = load('pino-pretty') as (options: Record<string, unknown>) => DestinationStream;
  return pretty({
    destination: 2,
    sync: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name',
  });
}

export interface LoggerOptions {
  /** Where JSON lines go (tests); given a destination, the format is always JSON. */
  destination?: NodeJS.WritableStream;
  format?: LogFormat;
}

export function createLogger(
  level: LogLevel = 'info',
  destinationOrOptions?: NodeJS.WritableStream | LoggerOptions,
): Logger {
  const options: LoggerOptions =
    destinationOrOptions && 'write' in destinationOrOptions
      ? { destination: destinationOrOptions as NodeJS.WritableStream }
      : ((destinationOrOptions as LoggerOptions | undefined) ?? {});
  const settings = { name: 'cao-events', level, base: undefined };
  if (options.destination) return pino(settings, options.destination as DestinationStream);
  const format = options.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true);
  return pino(settings, pretty ? prettyStderr() : pino.destination({ dest: 2, sync: false }));
}

/** A logger that writes nothing, for library hosts that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
