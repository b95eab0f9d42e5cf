/**
 * Who is who, for transforms that show agents by name: a bounded map from terminal id to agent
 * profile, learned from every event a sink is offered (before its filter, so a Slack channel
 * that only shows messages still knows the names from terminal_created events).
 */
import type { CloudEventV1 } from 'cloudevents';

export class TerminalDirectory {
  readonly #names = new Map<string, string>();
  readonly #limit: number;

  constructor(limit = 10_000) {
    this.#limit = limit;
  }

  learn(event: CloudEventV1<unknown>): void {
    const data = event.data as { terminal_id?: unknown; agent_name?: unknown } | undefined;
    if (!data || typeof data.terminal_id !== 'string' || typeof data.agent_name !== 'string') return;
    this.#names.delete(data.terminal_id);
    this.#names.set(data.terminal_id, data.agent_name);
    if (this.#names.size > this.#limit) {
      const oldest = this.#names.keys().next();
      if (!oldest.done) this.#names.delete(oldest.value);
    }
  }

  agentName(terminalId: string | undefined): string | undefined {
    return terminalId === undefined ? undefined : this.#names.get(terminalId);
  }
}
