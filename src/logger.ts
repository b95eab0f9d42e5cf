/**
 * Structured logging with pino. Logs go to stderr so that stdout stays free for command output
 * (the receiver's event lines, the demo's timeline). Message bodies and query strings are never
 * logged at info or above.
 */
import { type Logger, pino } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    { name: 'cao-events', level, base: undefined },
    (destination ?? pino.destination({ dest: 2, sync: false })) as pino.DestinationStream,
  );
}

/** A logger that writes nothing, for library hosts that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
