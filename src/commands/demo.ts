/** `cao-events demo`: options and help; the demo itself (src/demo/) is loaded when it runs. */
import type { CommandModule, OptionValues } from './command.ts';

export const DEMO_OPTIONS = {
  'cao-version': { type: 'string' },
  'callback-url': { type: 'string' },
  config: { type: 'string' },
  'otlp-endpoint': { type: 'string' },
  'otlp-protocol': { type: 'string' },
  mode: { type: 'string' },
  'trace-file': { type: 'string' },
  'summary-json': { type: 'boolean' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
} as const;

export const DEMO_USAGE = `Usage: cao-events demo [options]      (also: npm run demo -- [options])

Runs the whole pipeline on this machine: a CAO API simulator (a stand-in for cao-server), the real
gateway and poller in front of it, and the built-in CloudEvents receiver. Drives a scripted session
(a supervisor assigns work to two workers, hands off to a reviewer, the workers report back, one
worker is deleted, the session is shut down), prints the CloudEvents as they are delivered, then a
summary. Exits 0 when every event type arrived and nothing failed.

Options:
  --cao-version <v>       which real CAO release the simulator behaves as: 2.5.4 (default, newest),
                          2.4.1 or 2.1.1 (each verified against the real release)
  --callback-url <url>    deliver to your own receiver instead of the built-in one
  --config <file>         also deliver to the sinks of this config file (Slack, Discord, your
                          transforms; its outbox.dir keeps their state), and wait for them
  --mode <m>              structured (default), binary or batch
  --otlp-endpoint <url>   export the spans over OTLP (else the standard OTEL_* variables; else a file)
  --otlp-protocol <p>     http/protobuf (default), http/json or grpc
  --trace-file <path>     where to write the spans as OTLP JSON lines when no OTLP endpoint is set
  --summary-json          also print the summary as one JSON line (for scripts)
  --log-level <level>     log level on stderr (default warn) [env CAO_EVENTS_LOG_LEVEL, LOG_LEVEL]
  --log-format <f>        auto (readable on a terminal, else JSON lines), json or pretty
  --help                  show this help`;

export const command: CommandModule = {
  usage: () => DEMO_USAGE,
  options: DEMO_OPTIONS,
  run: async (values: OptionValues) => (await import('../demo/demo-command.ts')).runDemoCommand(values),
};
