/**
 * Session producers for the Jaeger end-to-end test. A producer runs one CAO session through
 * cao-events with the spans going over OTLP to the endpoint it is given and the CloudEvents to a
 * receiver it starts itself, and reports what the receiver got. The test then checks Jaeger
 * against that; it does not care what drove the session.
 *
 * `demoSession` drives it with the project's own `cao-events demo` as a user runs it (the CAO
 * simulator, the real gateway and poller, a real process); `realCaoSession`
 * (real-session-producer.ts) with a real cao-server, stand-in agent CLI and `cao-events gateway`
 * in front with OTEL_EXPORTER_OTLP_* set. Both go through the same checks.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { CloudEventV1 } from 'cloudevents';
import type { DemoSummary } from '../../../src/demo/demo-command.ts';
import { DEMO_REPORTS } from '../../../src/demo/scenario.ts';
import type { CaoEventType } from '../../../src/core/events.ts';
import type { OtlpProtocol } from '../../../src/otlp.ts';
import { startReceiver } from '../../../src/receiver.ts';

const run = promisify(execFile);
const CLI = new URL('../../../src/cli.ts', import.meta.url).pathname;

export interface OtlpTarget {
  /** As OTEL_EXPORTER_OTLP_ENDPOINT: the base URL (`/v1/traces` is appended for HTTP). */
  endpoint: string;
  protocol: OtlpProtocol;
}

export interface ProducedSession {
  sessionName: string;
  /** service.name the spans carry. */
  serviceName: string;
  /** The CloudEvents the callback receiver accepted, in arrival order. */
  events: Array<CloudEventV1<Record<string, unknown>>>;
  /** What the session must show beyond those events. */
  expected: {
    eventTypes: CaoEventType[];
    orchestrationTypes: string[];
    /** Message texts the session sent; each must be the content of some `cao.message_sent`. */
    messages: string[];
  };
}

export type SessionProducer = (otlp: OtlpTarget) => Promise<ProducedSession>;

/** The environment without the caller's CAO_EVENT* and OTEL_* settings. */
function cleanEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('CAO_EVENT') && !e[0].startsWith('OTEL_'),
    ),
  );
}

/** `cao-events demo --otlp-endpoint … --otlp-protocol … --callback-url <our receiver>`. */
export const demoSession: SessionProducer = async (otlp) => {
  const receiver = await startReceiver();
  try {
    const { stdout } = await run(
      process.execPath,
      [CLI, 'demo', '--callback-url', receiver.url, '--otlp-endpoint', otlp.endpoint, '--otlp-protocol', otlp.protocol, '--summary-json'],
      { env: cleanEnv(), timeout: 120_000 },
    );
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as DemoSummary;
    if (summary.failures.failed + summary.failures.dropped > 0) {
      throw new Error(`the demo's deliveries failed: ${JSON.stringify(summary.failures)}`);
    }
    const events = receiver.received.map((r) => r.event as CloudEventV1<Record<string, unknown>>);
    // what the demo's workers report back with send_message (src/demo/scenario.ts), as the newest
    // release's MCP server sends it: with the sender's suffix
    const sent = events.map((e) => e.data ?? {}).filter((d) => d.orchestration_type === 'send_message' && d.phase === 'dispatched');
    const messages = DEMO_REPORTS.map((text) => {
      const sender = sent.find((d) => String(d.message).startsWith(text))?.sender;
      return `${text}\n\n[Message from terminal ${String(sender)}. Use send_message MCP tool for any follow-up work.]`;
    });
    return {
      sessionName: 'cao-demo',
      serviceName: 'cao-events',
      events,
      expected: {
        eventTypes: ['session_created', 'terminal_created', 'message_sent', 'terminal_killed', 'session_killed'],
        orchestrationTypes: ['assign', 'handoff', 'send_message'],
        messages,
      },
    };
  } finally {
    await receiver.close();
  }
};
