/**
 * See the demo session as a Slack reader would, without a Slack workspace: starts the local
 * Slack stand-in the tests use (it follows Slack's documented Web API; see
 * test/helpers/slack-fake.ts), runs `cao-events demo --config <file>` against it in the layout
 * you pick, and prints the channel top to bottom.
 *
 *   ./node_modules/.bin/node examples/slack-demo.ts            # thread layout
 *   ./node_modules/.bin/node examples/slack-demo.ts channel    # a channel per session
 *
 * Against your real workspace, write the same config with your bot token and channel (README,
 * "Slack: setting the app up") and run `npm run demo -- --config cao-events.yaml`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runDemo } from '../src/demo/demo-command.ts';
import { startSlackFake } from '../test/helpers/slack-fake.ts';

const layout = process.argv[2] ?? 'thread';
if (layout !== 'thread' && layout !== 'channel') {
  process.stderr.write('usage: slack-demo.ts [thread|channel]\n');
  process.exit(2);
}
const token = 'xoxb-local-stand-in';
const slack = await startSlackFake({ token });
const dir = mkdtempSync(join(tmpdir(), 'cao-events-slack-demo-'));
const config = join(dir, 'cao-events.yaml');
const settings = layout === 'thread' ? 'channel: C0CAOEVENTS' : 'layout: channel, invite: [U0ALICE001]';
writeFileSync(
  config,
  `outbox: { dir: ${join(dir, 'outbox')} }   # the Slack session map lives next to the outbox
sinks:
  - name: slack
    url: ${slack.apiBase}                   # omit for the real Slack (https://slack.com/api/)
    transform: slack
    slack: { token: ${token}, ${settings} }
`,
);
process.stderr.write(`Slack stand-in at ${slack.url}; running the demo (${layout} layout)…\n`);
const quiet = new Writable({ write: (_c, _e, cb) => cb() });
const summary = await runDemo({ config, 'trace-file': join(dir, 'spans.otlp.jsonl') }, quiet);
const sink = summary.sinks[0]!;
process.stderr.write(`${sink.delivered + sink.skipped} events: ${sink.delivered} delivered, ${sink.skipped} needed no post, ${sink.failed} failed\n\n`);
for (const channel of slack.channels.values()) {
  const lines = slack.transcript(channel.id);
  if (lines.length === 0) continue;
  console.log(`#${channel.name}${channel.topic ? `  (topic: ${channel.topic})` : ''}`);
  for (const line of lines) console.log(`  ${line}`);
}
await slack.close();
rmSync(dir, { recursive: true, force: true }); // scratch: the config, the outbox, the session map, the spans
