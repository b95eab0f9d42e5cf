/**
 * One real run: a real cao-server of one version, the cao-events processes observing it, the
 * scripted scenario driven through the gateway, and what each observer's callback received.
 *
 * - `plugin` run: venv with the cao-events plugin; `cao-events gateway` (proxy + poller + ingest)
 *   in front; the plugin posts to the gateway's ingest. Observer `gateway+poller+plugin`.
 * - `plain` run: venv without the plugin; `cao-events gateway` (proxy + poller) in front, observer
 *   `gateway+poller`; and `cao-events watch` polling the server directly, observer `watch`.
 * Everything is torn down also on failure.
 */
import type { CloudEventV1 } from 'cloudevents';
import type { CaoEventData } from '../../../exporters/transform.ts';
import { startReceiver, type Receiver } from '../../../src/receiver.ts';
import { freePort } from '../../helpers/free-port.ts';
import { CaoClient, type Exchange } from './cao-client.ts';
import { type CaoEventsProcess, startCaoEvents } from './cao-events-process.ts';
import { type CaoVersion, startRealCao } from './real-cao.ts';
import { FAIL_SESSION, SESSION, type ScenarioIds, runScenario } from './scenario.ts';

export type ObserverName = 'gateway+poller+plugin' | 'gateway+poller' | 'watch';

export interface RunResult {
  version: CaoVersion;
  ids: ScenarioIds;
  /** CloudEvents each observer's callback received, in arrival order. */
  events: Partial<Record<ObserverName, Array<CloudEventV1<CaoEventData>>>>;
  exchanges: Exchange[];
  /** The run's temp root (for sanitising fixtures). */
  root: string;
  /** cao-events' stderr per observer, and cao-server's log: for diagnosing a failure. */
  logs: Record<string, string>;
}

/** Poller interval used by the suite (the default is 3000 ms). */
export const POLL_INTERVAL_MS = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until every receiver has both sessions' session_killed and then nothing new for `quietMs`. */
async function settle(receivers: Receiver[], quietMs: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const killed = (r: Receiver) => [SESSION, FAIL_SESSION].every((s) =>
    r.received.some((e) => e.event.subject === s && String(e.event.type).endsWith('.session_killed')));
  while (Date.now() < deadline && !receivers.every(killed)) await sleep(200);
  let count = -1;
  let since = Date.now();
  while (Date.now() < deadline) {
    const now = receivers.reduce((n, r) => n + r.received.length, 0);
    if (now !== count) {
      count = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
    await sleep(200);
  }
}

export async function realRun(version: CaoVersion, plugin: boolean): Promise<RunResult> {
  const names: ObserverName[] = plugin ? ['gateway+poller+plugin'] : ['gateway+poller', 'watch'];
  const receivers = new Map<ObserverName, Receiver>();
  const processes: CaoEventsProcess[] = [];
  const logs: Record<string, string> = {};
  let cao: Awaited<ReturnType<typeof startRealCao>> | undefined;
  try {
    for (const n of names) receivers.set(n, await startReceiver());
    const [serverPort, gatewayPort, ingestPort] = [await freePort(), await freePort(), await freePort()];
    const upstream = `http://127.0.0.1:${serverPort}`;
    const gateway = await startCaoEvents({
      command: 'gateway', upstream, port: gatewayPort, ingestPort,
      callbackUrl: receivers.get(names[0]!)!.url, pollIntervalMs: POLL_INTERVAL_MS,
    });
    processes.push(gateway);
    if (!plugin) {
      processes.push(await startCaoEvents({ command: 'watch', upstream, callbackUrl: receivers.get('watch')!.url, pollIntervalMs: POLL_INTERVAL_MS }));
    }
    cao = await startRealCao({
      version, plugin, port: serverPort, apiPort: gatewayPort, ...(plugin ? { ingestUrl: gateway.ingestUrl! } : {}),
    });
    const client = new CaoClient(gateway.url!, upstream);
    const ids = await runScenario(cao, client);
    await settle([...receivers.values()], 4 * POLL_INTERVAL_MS, 60_000);
    const events: RunResult['events'] = {};
    for (const [n, r] of receivers) events[n] = r.received.map((x) => x.event as CloudEventV1<CaoEventData>);
    return { version, ids, events, exchanges: client.exchanges, logs, root: cao.root };
  } finally {
    if (cao) logs['cao-server'] = cao.log();
    processes.forEach((p, i) => (logs[names[i] ?? 'watch'] = p.logs()));
    await cao?.stop();
    await Promise.all(processes.map((p) => p.stop()));
    await Promise.all([...receivers.values()].map((r) => r.close()));
  }
}
