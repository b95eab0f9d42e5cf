/**
 * OpenTelemetry's own errors (an exporter that throws, a processor that fails, an OTLP endpoint
 * that refuses) go to OTel's diag logger, which is silent unless someone sets one: this routes
 * them into our log (warn and error; the SDK's chatter below that stays out). Only the first
 * line of a message and an error's code are kept: OTel may format a URL with its query, or a
 * header, into its messages. The diag logger is process-global, so only the sidecar sets it
 * (library hosts keep theirs).
 */
import { type DiagLogger, DiagLogLevel, diag } from '@opentelemetry/api';
import type { Logger } from 'pino';

function clean(text: string): string {
  return text.split('\n')[0]!.replace(/(https?:\/\/[^/\s?#]+)[^\s]*/g, '$1/…').slice(0, 300);
}

function details(args: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const arg of args) {
    if (arg instanceof Error) {
      out.error = clean(arg.message);
      const code = (arg as { code?: unknown }).code;
      if (typeof code === 'string' || typeof code === 'number') out.code = code;
    } else if (typeof arg === 'string') {
      out.detail = clean(arg);
    }
  }
  return out;
}

/** The routes in place, newest last (several runtimes may live in one process, e.g. in tests). */
const active: Array<{ logger: DiagLogger; level: DiagLogLevel }> = [];

/** Routes OTel diagnostics at `level` and above into `logger`; returns a function that stops it. */
export function routeOtelDiagnostics(logger: Logger, level: DiagLogLevel = DiagLogLevel.WARN): () => void {
  const log = logger.child({ component: 'opentelemetry' });
  const route = {
    level,
    logger: {
      error: (message, ...args) => log.error(details(args), clean(message)),
      warn: (message, ...args) => log.warn(details(args), clean(message)),
      info: (message, ...args) => log.info(details(args), clean(message)),
      debug: (message, ...args) => log.debug(details(args), clean(message)),
      verbose: (message, ...args) => log.trace(details(args), clean(message)),
    } satisfies DiagLogger,
  };
  active.push(route);
  diag.setLogger(route.logger, { logLevel: level, suppressOverrideMessage: true });
  return () => {
    const index = active.indexOf(route);
    if (index < 0) return;
    active.splice(index, 1);
    const previous = active.at(-1);
    if (previous) diag.setLogger(previous.logger, { logLevel: previous.level, suppressOverrideMessage: true });
    else diag.disable();
  };
}
