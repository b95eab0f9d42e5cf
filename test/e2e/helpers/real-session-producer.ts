/**
 * A session producer for the Jaeger end-to-end test whose session comes from a REAL cao-server
 * (installed by test/e2e/install.sh, with the cao-events plugin), observed by a real
 * `cao-events gateway` process whose spans go over OTLP to the endpoint the test gives and whose
 * CloudEvents go to a receiver started here. The session is driven as CAO's own clients do
 * (helpers/cao-client.ts: that release's MCP requests): launch a supervisor, assign a worker,
 * hand off, the worker reports back with send_message, the worker is deleted, the session is
 * shut down. The gateway is stopped before returning, so its spans are flushed.
 */
import type { CloudEventV1 } from 'cloudevents';
import { startReceiver } from '../../../src/receiver.ts';
import { freePort } from '../../helpers/free-port.ts';
import { CaoClient, mcpTools } from './cao-client.ts';
import { startCaoEvents } from './cao-events-process.ts';
import { type CaoVersion, startRealCao } from './real-cao.ts';
import type { SessionProducer } from './session-producer.ts';

export const REAL_SESSION = 'cao-jaeger';
const TASK = 'Write the parser';
const REPORT = 'Parser done';
const HANDOFF = 'Summarise the plan';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function realCaoSession(version: CaoVersion): SessionProducer {
  return async (otlp) => {
    const receiver = await startReceiver();
    const [serverPort, gatewayPort, ingestPort] = [await freePort(), await freePort(), await freePort()];
    const upstream = `http://127.0.0.1:${serverPort}`;
    const gateway = await startCaoEvents({
      command: 'gateway', upstream, port: gatewayPort, ingestPort, callbackUrl: receiver.url, pollIntervalMs: 1000, otlp,
    });
    let cao: Awaited<ReturnType<typeof startRealCao>> | undefined;
    try {
      cao = await startRealCao({ version, plugin: true, port: serverPort, apiPort: gatewayPort, ingestUrl: gateway.ingestUrl! });
      const client = new CaoClient(gateway.url!, upstream);
      const tools = mcpTools(version.version, client);
      const created = await client.call('POST', '/sessions', [
        ['provider', version.provider], ['agent_profile', 'code_supervisor'], ['session_name', REAL_SESSION.slice(4)], ['working_directory', cao.workDir],
      ]);
      if (created.status !== 201) throw new Error(`POST /sessions → ${created.status} ${JSON.stringify(created.json)}`);
      cao.sessions.add(REAL_SESSION);
      const sup = created.json.id as string;
      const a = await tools.assign(sup, 'developer', TASK);
      if (!a.ok || !a.terminalId) throw new Error(`assign failed: ${JSON.stringify(a)}`);
      const worker = a.terminalId;
      await client.until(`${worker} did its task`, () => client.statusOf(worker), (s) => s === 'completed', 60_000);
      const h = await tools.handoff(sup, 'developer', HANDOFF, 60);
      if (!h.ok) throw new Error(`handoff failed: ${JSON.stringify(h)}`);
      await client.until('supervisor ready', () => client.statusOf(sup), (s) => s === 'idle' || s === 'completed');
      await tools.sendMessage(worker, sup, REPORT);
      await client.until('report delivered', () => client.inbox(sup), (m) => m.length === 1 && m[0]!.status === 'delivered');
      await sleep(2000); // a poller cycle or two
      await client.call('DELETE', `/terminals/${worker}`);
      await sleep(2000);
      const deleted = await client.call('DELETE', `/sessions/${REAL_SESSION}`);
      if (deleted.status !== 200) throw new Error(`DELETE /sessions/${REAL_SESSION} → ${deleted.status}`);
      cao.sessions.delete(REAL_SESSION);
      // every source has reported the end (the poller needs two cycles)
      for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
        if (receiver.received.some((r) => String(r.event.type).endsWith('.session_killed') && r.event.subject === REAL_SESSION)) break;
        await sleep(200);
      }
      await sleep(3000);
    } finally {
      await cao?.stop();
      await gateway.stop(); // SIGTERM: flushes the spans
      await receiver.close();
    }
    const events = receiver.received.map((r) => r.event as CloudEventV1<Record<string, unknown>>).filter((e) => e.subject === REAL_SESSION);
    const family = Number(version.version.split('.')[1]) >= 3 ? 'server-side' : 'client-side';
    const suffix = (from: string) => (family === 'server-side' ? `\n\n[Message from terminal ${from}. Use send_message MCP tool for any follow-up work.]` : '');
    const worker = String(events.find((e) => e.data?.event_type === 'message_sent' && e.data.orchestration_type === 'send_message')?.data?.sender ?? '');
    return {
      sessionName: REAL_SESSION,
      serviceName: 'cao-events',
      events,
      expected: {
        eventTypes: ['session_created', 'terminal_created', 'message_sent', 'terminal_killed', 'session_killed'],
        orchestrationTypes: ['assign', 'handoff', 'send_message'],
        messages: [`${REPORT}${suffix(worker)}`, HANDOFF],
      },
    };
  };
}
