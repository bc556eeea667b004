/**
 * `kinoite-zfs lock export --run WORKFLOW_ID [--out FILE]`: the inputs of a finished run as a
 * replay lock (`kinoite-zfs run --lock FILE` replays them).
 */
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { connectClient } from '../temporal.ts';
import { lockFromInputs } from '../../core/lock.ts';
import { prettyJson, type PipelineResult } from '../../core/pipeline.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';

/** Writes a lock for a finished run. */
export async function lockCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'export')
    throw new UsageError('usage: kinoite-zfs lock export --run WORKFLOW_ID [--out FILE] [--config FILE]');
  const { values } = parseArgs({
    args: rest,
    options: { config: { type: 'string' }, run: { type: 'string' }, out: { type: 'string' } },
  });
  if (!values.run) throw new UsageError('--run WORKFLOW_ID is required (see kinoite-zfs status)');
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
  const text = prettyJson(
    lockFromInputs(result.inputs, result.inputsHash, `inputs of ${values.run} (${result.outcome})`),
  );
  if (values.out) {
    await writeFile(values.out, text);
    console.error(`wrote ${values.out} (inputs hash ${result.inputsHash})`);
  } else process.stdout.write(text);
  return ExitCode.Ok;
}
