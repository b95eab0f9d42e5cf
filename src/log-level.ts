/**
 * Named log levels and log formats, shared by the configuration and the logger. Kept apart from
 * logger.ts so that reading the configuration (and `--help`) does not load pino.
 */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `auto`: human-readable on a terminal (stderr is a TTY), JSON lines otherwise. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
