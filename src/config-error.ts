/** The one error type of configuration problems (re-exported by config.ts). */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Where a config value came from, for parsers of structured keys (sinks, redaction patterns). */
export interface ParseContext {
  /** The dotted key, e.g. `sinks`. */
  key: string;
  /** `config file path`, `env NAME` or `flag --name`. */
  origin: string;
  /** Directory that relative paths in the value are resolved against (the config file's). */
  baseDir: string;
  env: Record<string, string | undefined>;
}

/** Throws a ConfigError naming the exact path (`sinks[1].filter.types[0]`) and where it came from. */
export function fail(path: string, ctx: ParseContext, message: string): never {
  throw new ConfigError(`${path} (${ctx.origin}): ${message}`);
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Expands `${NAME}` from the environment (for secrets kept out of the file: webhook URLs,
 * tokens, signing secrets). An unset variable is an error naming the path, never the value.
 */
export function expandEnv(value: string, path: string, ctx: ParseContext): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const v = ctx.env[name];
    if (v === undefined || v === '') fail(path, ctx, `environment variable ${name} is not set`);
    return v;
  });
}
