/**
 * `kinoite-zfs worker [--config FILE] [--queues control,build]`.
 */
import { parseArgs } from 'node:util';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';

/** Runs a worker until SIGINT/SIGTERM. */
export async function workerCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string' }, queues: { type: 'string', default: 'control,build' } },
  });
  const queues = values
    .queues!.split(',')
    .map((q) => q.trim())
    .filter(Boolean);
  for (const q of queues)
    if (q !== 'control' && q !== 'build')
      throw new UsageError(`unknown queue "${q}": use control, build or control,build`);
  const configFile = values.config ?? defaultConfigPath();
  const config = await loadConfig(configFile);
  const { runWorker, MissingToolError, MetricsListenError } = await import('../../worker/main.ts');
  try {
    await runWorker({ config, configFile, queues: queues as ('control' | 'build')[] });
  } catch (err) {
    if (err instanceof MissingToolError || err instanceof MetricsListenError) {
      console.error(`kinoite-zfs worker: ${err.message}`);
      return ExitCode.ConfigError;
    }
    throw err;
  }
  return ExitCode.Ok;
}
