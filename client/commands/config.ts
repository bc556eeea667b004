/**
 * `kinoite-zfs config check [--config FILE | FILE]` and `kinoite-zfs config schema`: validation without side effects.
 */
import { parseArgs } from 'node:util';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { configJsonSchema } from '../config-docs.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';

/** Runs `config check` or `config schema`. Spawns no process. */
export async function configCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'schema') {
    console.log(JSON.stringify(configJsonSchema(), null, 2));
    return ExitCode.Ok;
  }
  if (sub !== 'check') throw new UsageError('usage: kinoite-zfs config check [--config FILE | FILE] | config schema');
  // --config as every other command takes it, or the file as the one positional.
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { config: { type: 'string' } },
  });
  if (values.config && positionals.length) throw new UsageError('give the config file once: --config FILE or FILE');
  const file = values.config ?? positionals[0] ?? defaultConfigPath();
  const config = await loadConfig(file); // throws ConfigError → exit 2 with every problem
  const streams = Object.keys(config.streams);
  console.log(
    `${file}: valid. ${streams.length} stream(s): ${streams.join(', ')}; Temporal ${config.temporal.address} (namespace ${config.temporal.namespace}).`,
  );
  return ExitCode.Ok;
}
