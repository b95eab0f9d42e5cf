/**
 * What a `cao-events` command module provides. Command modules import only light modules at
 * their top (configuration, usage text); what a command runs is imported when it runs, so
 * `--help` and `--version` load neither OpenTelemetry nor undici.
 */
export type OptionSpec = { type: 'string' | 'boolean'; short?: string };
export type OptionValues = Record<string, string | boolean | undefined>;

export interface CommandModule {
  /** The full help text; `summary` is the one-line description shown in the command list. */
  usage(summary: string): string;
  options: Record<string, OptionSpec>;
  run(values: OptionValues): Promise<number>;
}
