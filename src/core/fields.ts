/**
 * The field registry: one row per fact an event can carry. Everything else is derived from it:
 * the CaoEvent type and its validation (events.ts), the span-event attribute keys
 * (attributes.ts), the CloudEvent `data` keys and the `CaoEventData` type (the exporter's pure
 * transform), the JSON Schemas in schemas/ and the AsyncAPI document (schemas.ts, written by
 * `node src/core/write-contract.ts`; test/contract.test.ts proves the files on disk agree).
 *
 * Adding a field = one row here + the source that produces it (then run the generator).
 * Names are a contract (design.md): never rename an existing attribute or data key.
 */

export const EVENT_TYPES = [
  'session_created',
  'session_killed',
  'terminal_created',
  'terminal_killed',
  'message_sent',
] as const;
export type CaoEventType = (typeof EVENT_TYPES)[number];

export const ORCHESTRATION_TYPES = ['send_message', 'handoff', 'assign'] as const;
export type OrchestrationType = (typeof ORCHESTRATION_TYPES)[number];

export const PHASES = ['dispatched', 'delivered', 'completed', 'failed'] as const;
export type Phase = (typeof PHASES)[number];

export const EVENT_SOURCES = ['gateway', 'poller', 'plugin', 'api'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** The catalog's "when" of each event type (design.md). */
export const EVENT_DESCRIPTIONS: Record<CaoEventType, string> = {
  session_created: 'a CAO session exists that did not before',
  session_killed: 'a CAO session is gone',
  terminal_created: 'a terminal (agent window) exists in a session',
  terminal_killed: 'a terminal is gone',
  message_sent: 'send_message, handoff, assign (assign and handoff emit one per phase)',
};

/** Version of the event contract (the CloudEvents `data` and attributes). 1.1: sender_agent, receiver_agent. */
export const CONTRACT_VERSION = '1.1.0';

const ALL = EVENT_TYPES;
const TERMINAL = ['terminal_created', 'terminal_killed'] as const;
const MESSAGE = ['message_sent'] as const;

interface FieldRow {
  /** The CaoEvent property (camelCase): what sources and library users set. */
  readonly key: string;
  /** The span-event attribute key (`cao.*`). */
  readonly attribute: string;
  /** Further span-event attribute keys carrying the same value (OTel GenAI conventions). */
  readonly aliases?: readonly string[];
  /** The CloudEvent `data` key (snake_case, CAO's plugin-event names where CAO has one). */
  readonly data: string;
  /** The event types that carry the field; any other type refuses it. */
  readonly on: readonly CaoEventType[];
  /** The event types whose `data` always has it (the core fills it before export). */
  readonly required?: readonly CaoEventType[];
  /** Allowed values; a free string when absent. */
  readonly values?: readonly string[];
  /** Message text: sinks apply their content policy and redaction to it. */
  readonly content?: boolean;
  readonly description: string;
}

export const FIELDS = [
  {
    key: 'sessionId', attribute: 'cao.session.id', data: 'session_id', on: ALL,
    description: 'CAO session id (CAO uses the tmux session name)',
  },
  {
    key: 'sessionName', attribute: 'cao.session.name', aliases: ['gen_ai.conversation.id'], data: 'session_name',
    on: ALL, required: ALL,
    description: 'CAO session name (cao-…); also the CloudEvent subject',
  },
  {
    key: 'terminalId', attribute: 'cao.terminal.id', aliases: ['gen_ai.agent.id'], data: 'terminal_id',
    on: TERMINAL, required: TERMINAL,
    description: 'the terminal this lifecycle event is about (CAO terminal id, 8 hex characters)',
  },
  {
    key: 'agentName', attribute: 'cao.agent.name', aliases: ['gen_ai.agent.name'], data: 'agent_name', on: TERMINAL,
    description: 'agent profile of that terminal',
  },
  {
    key: 'provider', attribute: 'cao.provider', data: 'provider', on: TERMINAL,
    description: 'agent CLI provider of that terminal (kiro_cli, claude_code, …)',
  },
  {
    key: 'sender', attribute: 'cao.message.sender', data: 'sender', on: MESSAGE,
    description: 'sender terminal id',
  },
  {
    key: 'senderAgent', attribute: 'cao.message.sender_agent', data: 'sender_agent', on: MESSAGE,
    description: 'agent profile of the sender terminal',
  },
  {
    key: 'receiver', attribute: 'cao.message.receiver', data: 'receiver', on: MESSAGE,
    description: 'receiver terminal id (absent on a handoff dispatched before its worker exists)',
  },
  {
    key: 'receiverAgent', attribute: 'cao.message.receiver_agent', data: 'receiver_agent', on: MESSAGE,
    description: 'agent profile of the receiver terminal (a handoff names it before its worker exists)',
  },
  {
    key: 'message', attribute: 'cao.message.content', data: 'message', on: MESSAGE, content: true,
    description: 'message content (after redaction and the sink\'s content policy); later phases carry the text the core knows from earlier ones',
  },
  {
    key: 'orchestrationType', attribute: 'cao.orchestration.type', data: 'orchestration_type', on: MESSAGE,
    required: MESSAGE, values: ORCHESTRATION_TYPES,
    description: 'the CAO orchestration',
  },
  {
    key: 'phase', attribute: 'cao.orchestration.phase', data: 'phase', on: MESSAGE, required: MESSAGE, values: PHASES,
    description: 'dispatched (the orchestrator accepted it), delivered (the text reached the receiver\'s CLI), completed (a handoff\'s result came back), failed',
  },
  {
    key: 'source', attribute: 'cao.event.source', data: 'observed_by', on: ALL, required: ALL, values: EVENT_SOURCES,
    description: 'the cao-events source that observed the fact first',
  },
] as const satisfies readonly FieldRow[];

export type Field = (typeof FIELDS)[number];
export type FieldKey = Field['key'];

type ValueOf<R> = R extends { values: readonly (infer V)[] } ? V : string;

/** Every registry field as an optional CaoEvent property. */
export type EventFields = { -readonly [R in Field as R['key']]?: ValueOf<R> };

/** The flat snake_case `data` of every CAO CloudEvent. */
export type CaoEventData = { event_type: CaoEventType } & { -readonly [R in Field as R['data']]?: ValueOf<R> };

/** Rules over several fields of one event type (in `data` and in a CaoEvent alike). */
export const EVENT_RULES: Partial<Record<CaoEventType, { anyOf: readonly (readonly FieldKey[])[]; why: string }>> = {
  message_sent: { anyOf: [['sender'], ['receiver']], why: 'a message names its sender or its receiver' },
};

/** Span-event attribute for the per-session position (the CloudEvents `sequence` extension). */
export const SEQUENCE_ATTRIBUTE = 'cao.event.sequence';

/** The rows an event type carries, in registry order. */
export function fieldsOf(type: CaoEventType): readonly Field[] {
  return FIELDS.filter((f) => (f.on as readonly string[]).includes(type));
}

/** Registry row by CaoEvent key. */
export function field(key: FieldKey): Field {
  return FIELDS.find((f) => f.key === key)!;
}
