/**
 * `kinoite-zfs lock export --run WORKFLOW_ID [--out FILE] [--format kinoite-zfs|original]`: the
 * inputs of a finished run as a replay lock (`kinoite-zfs run --lock FILE` replays either format);
 * `--format original` writes the original's `ci/inputs.lock.json` fields only.
 */
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../artifacts.ts';
import { artifactJson } from '../../core/artifacts.ts';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { connectClient } from '../temporal.ts';
import { lockFromInputs, originalLockFromInputs } from '../../core/lock.ts';
import { prettyJson, type PipelineResult } from '../../core/pipeline.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';

/** Writes a lock for a finished run. */
export async function lockCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'export')
    throw new UsageError(
      'usage: kinoite-zfs lock export --run WORKFLOW_ID [--out FILE] [--format kinoite-zfs|original] [--config FILE]',
    );
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string' },
      run: { type: 'string' },
      out: { type: 'string' },
      format: { type: 'string', default: 'kinoite-zfs' },
    },
  });
  if (!values.run) throw new UsageError('--run WORKFLOW_ID is required (see kinoite-zfs status)');
  if (values.format !== 'kinoite-zfs' && values.format !== 'original')
    throw new UsageError(
      `--format must be kinoite-zfs (this project's lock) or original (the original's ci/inputs.lock.json), not ${values.format}`,
    );
  const config = await loadConfig(values.config ?? defaultConfigPath());
  const client = await connectClient(config);
  const handle = client.workflow.getHandle(values.run);
  const desc = await handle.describe();
  if (desc.status.name !== 'COMPLETED') {
    console.error(
      `kinoite-zfs lock export: ${values.run} is ${desc.status.name}; only a completed run has a full set of pinned inputs.`,
    );
    return ExitCode.RunFailed;
  }
  const result = (await handle.result()) as PipelineResult;
  if (!result.inputs || !result.inputsHash) {
    console.error(`kinoite-zfs lock export: ${values.run} ended before its inputs were resolved.`);
    return ExitCode.RunFailed;
  }
  const description = `inputs of ${values.run} (${result.outcome})`;
  // The original's file keeps the original's field order; this project's is canonical (sorted).
  const text =
    values.format === 'original'
      ? artifactJson(originalLockFromInputs(result.inputs, description))
      : prettyJson(lockFromInputs(result.inputs, result.inputsHash, description));
  if (values.out) {
    await writeFileAtomic(values.out, text);
    console.error(`wrote ${values.out} (inputs hash ${result.inputsHash})`);
  } else process.stdout.write(text);
  return ExitCode.Ok;
}
