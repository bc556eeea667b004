/**
 * `kinoite-zfs run --stream S [--wait] [--json] [--no-promote] [--rebuild-akmods] [--config FILE]`.
 */
import { parseArgs } from 'node:util';
import { userInfo } from 'node:os';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { connectClient, runUrl, startPipelineRun } from '../temporal.ts';
import { followRun, formatSummary, exitCodeFor } from '../follow.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';

/** Starts a pipeline run and, with --wait, follows it to its end. */
export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      stream: { type: 'string' },
      wait: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'no-promote': { type: 'boolean', default: false },
      'rebuild-akmods': { type: 'boolean', default: false },
    },
  });
  const config = await loadConfig(values.config ?? defaultConfigPath());
  const streams = Object.keys(config.streams);
  const stream = values.stream ?? (streams.length === 1 ? streams[0]! : undefined);
  if (!stream) throw new UsageError(`--stream is required: one of ${streams.join(', ')}`);
  if (!config.streams[stream]) throw new UsageError(`unknown stream "${stream}": the config has ${streams.join(', ')}`);
  const client = await connectClient(config);
  const handle = await startPipelineRun(client, config, {
    stream,
    trigger: { source: 'cli', by: safeUser() },
    options: { promote: !values['no-promote'], rebuildAkmods: values['rebuild-akmods'] },
  });
  const url = runUrl(config, handle.workflowId, handle.firstExecutionRunId);
  if (!values.wait) {
    if (values.json) console.log(JSON.stringify({ workflowId: handle.workflowId, runId: handle.firstExecutionRunId, url }));
    else console.log(`started ${handle.workflowId}${url ? `\n  Web UI: ${url}` : ''}\n  follow: kinoite-zfs status --stream ${stream}`);
    return ExitCode.Ok;
  }
  if (!values.json) process.stderr.write(`started ${handle.workflowId}${url ? ` (${url})` : ''}\n`);
  const summary = await followRun(handle, { quiet: values.json, tty: !!process.stderr.isTTY, url, verifyKey: config.streams[stream]!.signing.publicKeyFile });
  console.log(values.json ? JSON.stringify(summary) : formatSummary(summary));
  return exitCodeFor(summary.outcome);
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
