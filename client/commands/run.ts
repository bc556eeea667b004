/**
 * `kinoite-zfs run --stream S [--wait] [--json] [--no-promote] [--rebuild-akmods] [--config FILE]`:
 * triggers the stream workflow (starting it on first use) and, with --wait, follows the run.
 */
import { parseArgs } from 'node:util';
import { userInfo } from 'node:os';
import { randomUUID } from 'node:crypto';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { connectClient, runUrl } from '../temporal.ts';
import { triggerStream, waitForRun } from '../stream-client.ts';
import { followRun, formatSummary, exitCodeFor } from '../follow.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';
import type { Config } from '../../core/config.ts';

/** Resolves --stream (optional when the config has exactly one). */
export function pickStream(config: Config, name: string | undefined): string {
  const streams = Object.keys(config.streams);
  const stream = name ?? (streams.length === 1 ? streams[0]! : undefined);
  if (!stream) throw new UsageError(`--stream is required: one of ${streams.join(', ')}`);
  if (!config.streams[stream]) throw new UsageError(`unknown stream "${stream}": the config has ${streams.join(', ')}`);
  return stream;
}

/** Who runs the command (recorded as the trigger's author). */
export function whoami(): string {
  try {
    return process.env.KINOITE_ZFS_USER ?? userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** Triggers a pipeline run and, with --wait, follows it to its end. */
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
      commit: { type: 'string' },
      source: { type: 'string', default: 'cli' },
    },
  });
  const config = await loadConfig(values.config ?? defaultConfigPath());
  const stream = pickStream(config, values.stream);
  const client = await connectClient(config);
  const requestId = randomUUID();
  const reply = await triggerStream(client, config, stream, {
    trigger: { source: values.source!, by: whoami(), requestId, ...(values.commit ? { commit: values.commit } : {}) },
    options: { promote: !values['no-promote'], rebuildAkmods: values['rebuild-akmods'] },
  });
  const say = (line: string) => (values.json ? undefined : process.stderr.write(`${line}\n`));
  say(`stream/${stream}: ${reply.status}${reply.runWorkflowId ? ` ${reply.runWorkflowId}` : ' (a run is in progress; this trigger runs next)'}`);
  if (!values.wait) {
    const url = reply.runWorkflowId ? runUrl(config, reply.runWorkflowId) : undefined;
    if (values.json) console.log(JSON.stringify({ ...reply, url }));
    else if (url) console.log(`  Web UI: ${url}\n  follow: kinoite-zfs status --stream ${stream}`);
    return ExitCode.Ok;
  }
  const runId = reply.runWorkflowId ?? (await waitForRun(client, stream, reply.requestId));
  const handle = client.workflow.getHandle(runId);
  const url = runUrl(config, runId, (await handle.describe()).runId);
  say(`following ${runId}${url ? ` (${url})` : ''}`);
  const summary = await followRun(handle, { quiet: values.json, tty: !!process.stderr.isTTY, url, verifyKey: config.streams[stream]!.signing.publicKeyFile });
  console.log(values.json ? JSON.stringify({ ...summary, trigger: reply.status }) : formatSummary(summary));
  return exitCodeFor(summary.outcome);
}
