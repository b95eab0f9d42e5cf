/**
 * A worked example of a user transform: CAO messages as Microsoft Teams Adaptive Cards, in the
 * shape a Teams channel's "When a Teams webhook request is received" workflow (Power Automate)
 * accepts. Lifecycle events are skipped (return null): this channel only shows who said what.
 *
 * Use it from the config file (the path is resolved against the config file's directory):
 *
 *   sinks:
 *     - name: teams
 *       url: ${TEAMS_WORKFLOW_URL}
 *       transform: ./examples/transforms/teams-card.mjs
 *       options: { title: CAO agents }
 *       filter: { types: [message_sent], phases: [dispatched] }
 *
 * The contract: the default export gets one CloudEvent (its `data` is the flat CAO event:
 * event_type, session_name, sender, sender_agent, receiver, receiver_agent, message,
 * orchestration_type, phase, …: each message names its agents) and a context ({sink, url,
 * options}), and returns {body, headers?, url?} —
 * a body that is not a string is sent as JSON — or null to send nothing. It may be async. It is
 * loaded once at start-up; if it fails to load, cao-events does not start.
 */

/** Teams renders Markdown in TextBlocks; keep agent text from turning into links or mentions. */
function plain(text) {
  return String(text).replace(/[<>]/g, (c) => (c === '<' ? '&lt;' : '&gt;'));
}

/** An agent by its profile name (`developer`), else its terminal id. */
function who(agent, terminalId) {
  return agent || terminalId || 'someone';
}

export default function teamsCard(event, context) {
  const data = event.data ?? {};
  if (data.event_type !== 'message_sent') return null;
  const facts = [
    { title: 'Session', value: data.session_name ?? '' },
    { title: 'Type', value: `${data.orchestration_type ?? 'message'}${data.phase ? ` (${data.phase})` : ''}` },
  ];
  const card = {
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    type: 'AdaptiveCard',
    version: '1.4',
    body: [
      { type: 'TextBlock', size: 'Small', isSubtle: true, text: plain(context.options.title ?? 'CAO') },
      { type: 'TextBlock', weight: 'Bolder', wrap: true, text: `${plain(who(data.sender_agent, data.sender))} → ${plain(who(data.receiver_agent, data.receiver))}` },
      ...(data.message !== undefined ? [{ type: 'TextBlock', wrap: true, text: plain(data.message) }] : []),
      { type: 'FactSet', facts },
    ],
  };
  return {
    body: {
      type: 'message',
      attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null, content: card }],
    },
  };
}
