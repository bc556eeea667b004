/**
 * `kinoite-zfs worker [--config FILE] [--queues control,build] [--build-queue NAME]`.
 *
 * --build-queue (or KINOITE_ZFS_BUILD_QUEUE) names the build queue this worker serves instead of the
 * config's temporal.taskQueues.build: a build host pinned to the streams whose buildQueue names it
 * (one queue per architecture, say), with the same config file as every other host.
 */
import { parseArgs } from 'node:util';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';
import { refusal } from '../../core/validate.ts';

/** Runs a worker until SIGINT/SIGTERM. */
export async function workerCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      queues: { type: 'string', default: 'control,build' },
      'build-queue': { type: 'string' },
    },
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
  const buildQueue = values['build-queue'] ?? (process.env.KINOITE_ZFS_BUILD_QUEUE || undefined);
  const refused = buildQueue === undefined ? undefined : refusal('taskQueue', buildQueue);
  if (refused) throw new UsageError(`--build-queue: ${refused}`);
  if (buildQueue !== undefined && !queues.includes('build'))
    throw new UsageError('--build-queue names the build queue this worker serves: add build to --queues');
  const { runWorker, MissingToolError, MetricsListenError } = await import('../../worker/main.ts');
  try {
    await runWorker({ config, configFile, queues: queues as ('control' | 'build')[], buildQueue });
  } catch (err) {
    if (err instanceof MissingToolError || err instanceof MetricsListenError) {
      console.error(`kinoite-zfs worker: ${err.message}`);
      return ExitCode.ConfigError;
    }
    throw err;
  }
  return ExitCode.Ok;
}
