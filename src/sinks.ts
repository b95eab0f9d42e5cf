/**
 * The configured sinks at start-up: each `sinks:` entry, and the callback URL, becomes a
 * SinkSpec (renderer, headers, signing, time-out, retry policy, filter, content policy) and
 * then a WebhookSink (src/sink-factory.ts). User transform modules are loaded here, once,
 * synchronously (Node's require() of ES modules), so a module that is missing, throws while
 * loading, uses top-level await or exports no transform stops start-up with a ConfigError
 * naming the sink and the module path.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { WebhookSink } from '../exporters/delivery/webhook-sink.ts';
import { cloudEventsRenderer } from '../exporters/renderers/cloudevents.ts';
import { createDiscordSink } from '../exporters/renderers/discord.ts';
import { createSlackSink } from '../exporters/renderers/slack.ts';
import type { EventTransformFunction, Renderer, SinkTransform } from '../exporters/renderers/types.ts';
import { compileFilter } from '../exporters/sink-filter.ts';
import type { Config } from './config.ts';
import { ConfigError } from './config-error.ts';
import type { SinkConfig, TransformRef } from './sink-config.ts';
import { type SinkEnvironment, type SinkSpec, cloudEventsSinkSpec, createWebhookSink, outboxDirOf } from './sink-factory.ts';

const require = createRequire(import.meta.url);

function isTransform(value: unknown): value is SinkTransform {
  return value !== null && typeof value === 'object' && typeof (value as SinkTransform).encode === 'function';
}

/** The transform with a name (user objects may have none; logs use it). Keeps prototype methods. */
function named(t: SinkTransform, label: string): SinkTransform {
  if (typeof t.name === 'string' && t.name !== '') return t;
  return {
    name: label,
    encode: t.encode.bind(t),
    ...(t.maxBatch !== undefined ? { maxBatch: t.maxBatch } : {}),
    ...(t.minIntervalMs !== undefined ? { minIntervalMs: t.minIntervalMs } : {}),
    ...(t.groupBy ? { groupBy: t.groupBy.bind(t) } : {}),
    ...(t.grouping ? { grouping: t.grouping } : {}),
    ...(t.onResponse ? { onResponse: t.onResponse.bind(t) } : {}),
  };
}

function fromFunction(fn: EventTransformFunction, name: string): SinkTransform {
  return { name, maxBatch: 1, encode: (events, context) => fn(events[0]!, context) };
}

/**
 * The transform a user module provides, in the first of these forms it has:
 * `export function createTransform(options, {sink})` returning a SinkTransform (a factory, called
 * once per sink); `export default function (event, context)` (one event in, one request or null
 * out); `export default {encode, …}` (a SinkTransform object); or the same as a named export
 * `transform`.
 */
export function transformFromModule(
  mod: Record<string, unknown>,
  label: string,
  options: Record<string, unknown>,
  sink: string,
): SinkTransform | undefined {
  if (typeof mod.createTransform === 'function') {
    const made = (mod.createTransform as (o: unknown, c: unknown) => unknown)(options, { sink });
    if (typeof made === 'function') return fromFunction(made as EventTransformFunction, label);
    if (isTransform(made)) return named(made, label);
    throw new Error('createTransform() returned neither a function nor an object with encode()');
  }
  for (const candidate of [mod.default, mod.transform]) {
    if (typeof candidate === 'function') return fromFunction(candidate as EventTransformFunction, label);
    if (isTransform(candidate)) return named(candidate, label);
  }
  return undefined;
}

function loadModuleTransform(ref: Extract<TransformRef, { kind: 'module' }>, sink: SinkConfig, index: number): SinkTransform {
  const where = `sinks[${index}] (${sink.name}): transform module ${ref.spec} (${ref.path})`;
  let mod: Record<string, unknown>;
  try {
    mod = require(ref.path) as Record<string, unknown>;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason =
      e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND'
        ? 'not found'
        : e.code === 'ERR_REQUIRE_ASYNC_MODULE'
          ? 'uses top-level await, which a transform module cannot (do async work inside the transform)'
          : `failed to load: ${e.name}: ${e.message.split('\n')[0]}`;
    throw new ConfigError(`${where}: ${reason}`);
  }
  let transform: SinkTransform | undefined;
  try {
    transform = transformFromModule(mod, ref.spec, sink.options, sink.name);
  } catch (err) {
    throw new ConfigError(`${where}: ${(err as Error).message}`);
  }
  if (!transform) {
    throw new ConfigError(
      `${where}: exports no transform; export default function (event, context) { return { body, headers } or null }`,
    );
  }
  return transform;
}

/** A sink's renderer (and, for a service with state of its own, its sender). */
export interface ResolvedRenderer {
  renderer: Renderer;
  sender?: SinkSpec['sender'];
}

/**
 * Where a chat sink keeps its session map (Slack's channels and threads, Discord's forum
 * posts): `stateFile` when given, else next to the sink's outbox (`<outbox.dir>/<sink>/<file>`),
 * else nowhere (memory only).
 */
export function chatStateFile(sink: SinkConfig, stateFile: string | undefined, outboxDir: string | undefined, file: string): string | undefined {
  if (stateFile) return stateFile;
  return outboxDir ? join(outboxDirOf(outboxDir, sink.name), file) : undefined;
}

export const SLACK_STATE_FILE = 'slack-sessions.json';
export const DISCORD_STATE_FILE = 'discord-sessions.json';

/** A sink's renderer: its transform (built-in or module), else its CloudEvents content mode. */
export function resolveRenderer(sink: SinkConfig, index: number, outboxDir?: string): ResolvedRenderer {
  const ref = sink.transform;
  if (!ref) return { renderer: cloudEventsRenderer(sink.mode) };
  if (ref.kind === 'module') return { renderer: loadModuleTransform(ref, sink, index) };
  switch (ref.name) {
    case 'slack': {
      const options = sink.slack ?? {};
      const stateFile = chatStateFile(sink, options.stateFile, outboxDir, SLACK_STATE_FILE);
      return createSlackSink({ ...options, ...(stateFile ? { stateFile } : {}) });
    }
    case 'discord': {
      const options = sink.discord ?? {};
      const stateFile = chatStateFile(sink, options.stateFile, outboxDir, DISCORD_STATE_FILE);
      return createDiscordSink({ ...options, ...(stateFile ? { stateFile } : {}) });
    }
  }
}

/** The sinks of a configuration: the `sinks:` entries, then the callback URL's sink. Throws ConfigError. */
export function sinkSpecs(config: Pick<Config, 'sinks' | 'callbackUrl' | 'mode' | 'timeoutMs' | 'maxQueue' | 'retry'> & { outbox?: { dir?: string } }): SinkSpec[] {
  const entries = config.sinks ?? [];
  const renderers = entries.map((entry, i) => resolveRenderer(entry, i, config.outbox?.dir)); // all load before any sink starts
  const budget = config.retry?.maxElapsedMs;
  const specs: SinkSpec[] = entries.map((entry, i) => ({
    name: entry.name,
    url: entry.url,
    renderer: renderers[i]!.renderer,
    ...(renderers[i]!.sender ? { sender: renderers[i]!.sender } : {}),
    headers: entry.headers,
    signingSecrets: entry.signing?.secrets,
    timeoutMs: entry.timeoutMs ?? config.timeoutMs,
    maxQueue: entry.maxQueue ?? config.maxQueue,
    retry: { ...(budget !== undefined ? { maxElapsedMs: budget } : {}), ...entry.retry },
    filter: compileFilter(entry.filter),
    content: entry.content,
    options: entry.options,
  }));
  if (config.callbackUrl) {
    const spec = cloudEventsSinkSpec({
      url: config.callbackUrl,
      mode: config.mode,
      timeoutMs: config.timeoutMs,
      maxQueue: config.maxQueue,
      retry: budget !== undefined ? { maxElapsedMs: budget } : undefined,
    });
    let name = spec.name;
    for (let n = 2; specs.some((s) => s.name === name); n++) name = `${spec.name}-${n}`;
    specs.push({ ...spec, name });
  }
  return specs;
}

/** The sinks, built and ready to hand to createCaoTelemetry. Throws ConfigError (an outbox directory). */
export function buildSinks(specs: readonly SinkSpec[], env: SinkEnvironment): WebhookSink[] {
  return specs.map((spec) => createWebhookSink(spec, env));
}
