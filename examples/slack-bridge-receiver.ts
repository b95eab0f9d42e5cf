/**
 * A Slack-bridge style receiver: consumes cao-events CloudEvents (any content mode) and prints
 * each CAO session as a chat transcript, the way a bridge would post it to a channel thread.
 *
 *   ./node_modules/.bin/node examples/slack-bridge-receiver.ts 8090
 *   CAO_EVENT_CALLBACK_URL=http://127.0.0.1:8090/ npx cao-events gateway   (or: npm run demo -- --callback-url http://127.0.0.1:8090/)
 */
import { createServer } from 'node:http';
import { decodeRequest } from '../exporters/cloudevents/decode.ts';
import type { CaoEventData } from '../src/core/fields.ts';

const port = Number(process.argv[2] ?? 8090);

/** `developer (e5f6a7b8)`: each event names its agents, no terminal table needed. */
function who(id: string | undefined, agent: string | undefined): string {
  if (agent && id) return `${agent} (${id})`;
  return agent ?? id ?? 'someone';
}

function line(d: CaoEventData): string {
  switch (d.event_type) {
    case 'session_created': return `── ${d.session_name} started ──`;
    case 'session_killed': return `── ${d.session_name} ended ──`;
    case 'terminal_created': return `* ${who(d.terminal_id, d.agent_name)} joined`;
    case 'terminal_killed': return `* ${who(d.terminal_id, d.agent_name)} left`;
    case 'message_sent':
      // CAO's MCP tools append a line to each message ([Message from terminal …]): keep it, indented
      return `${who(d.sender, d.sender_agent)} → ${who(d.receiver, d.receiver_agent)} [${d.orchestration_type} ${d.phase}]: ${(d.message ?? '').replace(/\n+/g, '\n    ')}`;
  }
}

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      const { events } = decodeRequest(req.headers, Buffer.concat(chunks).toString('utf8'));
      for (const event of events) console.log(`[${event.subject}] ${line(event.data as CaoEventData)}`);
      res.writeHead(204).end();
    } catch (err) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message }));
    }
  });
}).listen(port, '127.0.0.1', () => console.error(`slack-bridge receiver on http://127.0.0.1:${port}/`));
