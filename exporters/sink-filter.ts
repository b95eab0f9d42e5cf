/**
 * Per-sink event filters: event types, session-name glob patterns, orchestration types and
 * phases. Every criterion given must match; `orchestration` and `phases` concern messages
 * only (lifecycle events pass them; add `types: [message_sent]` to drop those). Pure.
 */
import type { CloudEventV1 } from 'cloudevents';

export interface SinkFilterSpec {
  /** Event types (`message_sent`, `session_created`, …). */
  types?: readonly string[];
  /** Glob patterns on the session name: `*` any run of characters, `?` one character. */
  sessions?: readonly string[];
  /** Orchestration types of messages (`send_message`, `handoff`, `assign`). */
  orchestration?: readonly string[];
  /** Phases of messages (`dispatched`, `delivered`, `completed`, `failed`). */
  phases?: readonly string[];
}

export type EventFilter = (event: CloudEventV1<unknown>) => boolean;

export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 's');
}

/** The predicate of a filter spec; undefined when the spec lets everything through. */
export function compileFilter(spec: SinkFilterSpec | undefined): EventFilter | undefined {
  if (!spec) return undefined;
  const types = spec.types?.length ? new Set(spec.types) : undefined;
  const sessions = spec.sessions?.length ? spec.sessions.map(globToRegExp) : undefined;
  const orchestration = spec.orchestration?.length ? new Set(spec.orchestration) : undefined;
  const phases = spec.phases?.length ? new Set(spec.phases) : undefined;
  if (!types && !sessions && !orchestration && !phases) return undefined;
  return (event) => {
    const data = (event.data ?? {}) as Record<string, unknown>;
    const type = String(data.event_type ?? '');
    if (types && !types.has(type)) return false;
    if (sessions) {
      const name = String(data.session_name ?? event.subject ?? '');
      if (!sessions.some((re) => re.test(name))) return false;
    }
    if (type === 'message_sent') {
      if (orchestration && !orchestration.has(String(data.orchestration_type ?? ''))) return false;
      if (phases && !phases.has(String(data.phase ?? ''))) return false;
    }
    return true;
  };
}
