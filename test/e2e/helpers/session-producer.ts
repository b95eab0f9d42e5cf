/**
 * Session producers for the Jaeger end-to-end test. A producer runs one CAO session through
 * cao-events with the spans going over OTLP to the endpoint it is given and the CloudEvents to a
 * receiver it starts itself, and reports what the receiver got. The test then checks Jaeger
 * against that; it does not care what drove the session.
 *
 * `demoSession` drives it with the project's own `cao-events demo` as a user runs it (the CAO
 * simulator, the real gateway and poller, a real process). A real-CAO producer (real cao-server,
 * stand-in agent CLI, `cao-events gateway` in front with OTEL_EXPORTER_OTLP_* set) has the same
 * type and can be passed to the same checks.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { CloudEventV1 } from 'cloudevents';
import type { DemoSummary } from '../../../src/demo/demo-command.ts';
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
    return {
      sessionName: 'cao-demo',
      serviceName: 'cao-events',
      events: receiver.received.map((r) => r.event as CloudEventV1<Record<string, unknown>>),
      expected: {
        eventTypes: ['session_created', 'terminal_created', 'message_sent', 'terminal_killed', 'session_killed'],
        orchestrationTypes: ['assign', 'handoff', 'send_message'],
        // what the demo's workers report back with send_message (src/demo/scenario.ts)
        messages: [
          'Parser done: streaming, RFC 4180 quoting, 38 tests green.',
          'Property tests added (quoting, newlines, BOM); found and fixed an off-by-one in the tokenizer.',
        ],
      },
    };
  } finally {
    await receiver.close();
  }
};
