/**
 * The long-running commands that read the full configuration (gateway, watch, ingest): their
 * flags and help come from the configuration keys (config.ts); the configuration, including the
 * OTLP settings, is checked before anything starts; what runs is loaded then.
 */
import { type Config, KEYS, envNames, loadConfig } from '../config.ts';
import { checkOtlpConfig } from '../otlp.ts';
import type { CommandModule, OptionSpec, OptionValues } from './command.ts';

/** Flags of every configuration key, shared by the service commands. */
export const CONFIG_OPTIONS: Record<string, OptionSpec> = Object.fromEntries([
  ['config', { type: 'string' }],
  ...Object.values(KEYS)
    .filter((k) => k.flag)
    .map((k) => [k.flag!, { type: k.kind.t === 'bool' ? 'boolean' : 'string' }]),
]);

export function configHelp(only?: (key: string) => boolean): string {
  const rows = Object.entries(KEYS)
    .filter(([key, spec]) => spec.flag && (!only || only(key)))
    .map(([key, spec]) => {
      const flag = spec.kind.t === 'bool' ? `--[no-]${spec.flag}` : `--${spec.flag} <value>`;
      const names = envNames(spec.env);
      const env = names.length > 0 ? ` [env ${names.join(', ')}]` : '';
      return `  ${flag.padEnd(32)} ${spec.help}${env} (key ${key})`;
    });
  return [
    `  ${'--config <file>'.padEnd(32)} YAML or JSON config file [env CAO_EVENTS_CONFIG]`,
    ...rows,
    `  ${'--help'.padEnd(32)} show this help`,
    '',
    'Precedence: flags > environment > config file > defaults. Standard OTEL_* variables',
    '(OTEL_EXPORTER_OTLP_ENDPOINT, _PROTOCOL, _HEADERS, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,',
    'OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER, OTEL_TRACES_SAMPLER, _ARG) configure OTLP export.',
  ].join('\n');
}

/** OTLP options as the runtime takes them (undefined: the OTEL_* variables decide). */
export function otlpOptions(config: Config): Config['otlp'] | undefined {
  return config.otlp.endpoint || config.otlp.protocol ? config.otlp : undefined;
}

/** Loads and checks the whole configuration (ConfigError / OtlpConfigError naming the key). */
export function checkedConfig(values: OptionValues, env: Record<string, string | undefined> = process.env): Config {
  const config = loadConfig({ flags: values, env, configPath: values.config as string | undefined });
  checkOtlpConfig(otlpOptions(config), env);
  return config;
}

type Runner = 'runGatewayCommand' | 'runWatchCommand' | 'runIngestCommand';

function serviceCommand(synopsis: string, only: (key: string) => boolean, runner: Runner): CommandModule {
  return {
    usage: (summary) => `${synopsis}\n\n${summary}\n\nOptions:\n${configHelp(only)}`,
    options: CONFIG_OPTIONS,
    run: async (values) => {
      const config = checkedConfig(values);
      const { createLogger } = await import('../logger.ts');
      const logger = createLogger(config.logLevel, { format: config.logFormat });
      const services = await import('./services.ts');
      return services[runner](config, logger);
    },
  };
}

const noGateway = (k: string) => !k.startsWith('gateway.');

export const gateway = serviceCommand('Usage: cao-events gateway [options]', () => true, 'runGatewayCommand');
export const watch = serviceCommand(
  'Usage: cao-events watch [--upstream URL] [options]',
  (k) => (noGateway(k) || k === 'gateway.upstream') && !k.startsWith('ingest.'),
  'runWatchCommand',
);
export const ingest = serviceCommand(
  'Usage: cao-events ingest [--ingest-port N] [options]',
  (k) => noGateway(k) && !k.startsWith('poller.'),
  'runIngestCommand',
);
