/**
 * The `redaction.patterns` list of the config file: each entry a regular-expression source, or
 * a mapping {name, pattern, flags, replacement}; validated (it compiles, it cannot match the
 * empty string) with a ConfigError naming the exact path. Pure.
 */
import { type ParseContext, fail, isMapping } from './config-error.ts';
import type { RedactionPatternSpec } from './redact.ts';

const PATTERN_KEYS = ['name', 'pattern', 'flags', 'replacement'];

export function parseRedactionPatterns(value: unknown, ctx: ParseContext): RedactionPatternSpec[] {
  if (!Array.isArray(value)) fail(ctx.key, ctx, 'must be a list of patterns (strings or {name, pattern, flags, replacement})');
  return value.map((item, i): RedactionPatternSpec => {
    const path = `${ctx.key}[${i}]`;
    const spec = typeof item === 'string' ? { pattern: item } : item;
    if (!isMapping(spec)) fail(path, ctx, 'must be a pattern string or a mapping {name, pattern, flags, replacement}');
    for (const key of Object.keys(spec)) {
      if (!PATTERN_KEYS.includes(key)) fail(`${path}.${key}`, ctx, `unknown key; known keys: ${PATTERN_KEYS.join(', ')}`);
    }
    const name = spec.name ?? `pattern-${i}`;
    if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
      fail(`${path}.name`, ctx, 'must be 1-64 letters, digits, dashes or underscores');
    }
    if (typeof spec.pattern !== 'string' || spec.pattern === '') fail(`${path}.pattern`, ctx, 'must be a non-empty regular expression');
    const flags = spec.flags ?? '';
    if (typeof flags !== 'string' || !/^[imsu]*$/.test(flags)) fail(`${path}.flags`, ctx, 'may only contain i, m, s, u');
    let re: RegExp;
    try {
      re = new RegExp(spec.pattern, flags);
    } catch (err) {
      return fail(`${path}.pattern`, ctx, `not a valid regular expression: ${(err as Error).message}`);
    }
    if (re.test('')) fail(`${path}.pattern`, ctx, 'matches the empty string (it would redact between every character)');
    if (spec.replacement !== undefined && typeof spec.replacement !== 'string') fail(`${path}.replacement`, ctx, 'must be a string');
    return {
      name,
      pattern: spec.pattern,
      ...(flags ? { flags } : {}),
      ...(spec.replacement !== undefined ? { replacement: spec.replacement as string } : {}),
    };
  });
}
