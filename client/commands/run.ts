/**
 * `kinoite-zfs run`: main runs trigger the stream workflow (starting it on first use); branch and
 * PR builds run on their own, never touching stable; `--lock` replays pinned inputs. With --wait
 * it follows the run and exits 0 only when the run succeeded; `--artifacts DIR` then writes the
 * original's build-inputs.json and build-provenance.json there (docs/artifacts.md). In GitHub
 * Actions it records the repository, commit, ref, actor and run on the run and writes the step
 * summary and outputs.
 */
import { parseArgs } from 'node:util';
import { userInfo } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { connectClient, runUrl, startPipelineRun } from '../temporal.ts';
import { triggerStream, waitForRun } from '../stream-client.ts';
import { followRun, formatSummary, exitCodeFor, verifySettingsOf, finishedResult } from '../follow.ts';
import { writeRunArtifacts } from '../artifacts.ts';
import { DEFAULT_LOCK_FILE } from '../../core/artifacts.ts';
import {
  githubContext,
  githubPromotionBlock,
  readGithubEvent,
  triggerFromGithub,
  writeGithubFiles,
} from '../github.ts';
import { readLock } from '../lock-file.ts';
import { branchPrefix } from '../../core/tags.ts';
import { checkValue } from '../../core/validate.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';
import type { Config } from '../../core/config.ts';
import type { Trigger } from '../../core/pipeline.ts';

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

/** Starts (or attaches to) a run and, with --wait, follows it to its end. */
export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      stream: { type: 'string' },
      wait: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'no-promote': { type: 'boolean', default: false },
      promote: { type: 'boolean', default: false },
      'rebuild-akmods': { type: 'boolean', default: false },
      commit: { type: 'string' },
      source: { type: 'string' },
      mode: { type: 'string', default: 'main' },
      branch: { type: 'string' },
      pr: { type: 'string' },
      lock: { type: 'string' },
      artifacts: { type: 'string' },
    },
  });
  const mode = values.mode as 'main' | 'branch' | 'pr';
  if (!['main', 'branch', 'pr'].includes(mode))
    throw new UsageError(`--mode must be main, branch or pr, not ${values.mode}`);
  if (mode === 'branch' && !values.branch) throw new UsageError('--mode branch needs --branch NAME');
  if (mode === 'pr' && !/^[1-9]\d*$/.test(values.pr ?? '')) throw new UsageError('--mode pr needs --pr NUMBER');
  if (values.lock && mode !== 'main')
    throw new UsageError('--lock replays a main run; it cannot be combined with --mode branch or pr');
  if (values.commit) checkValue('gitRef', values.commit, '--commit');
  if (mode !== 'main' && values.commit && !/^[0-9a-f]{40}$/.test(values.commit))
    throw new UsageError(
      `--commit ${values.commit}: a ${mode} build builds this commit, so give its full 40-character id (git rev-parse HEAD)`,
    );
  if (values.artifacts !== undefined && (!values.wait || !values.artifacts))
    throw new UsageError('--artifacts DIR needs --wait and a folder: the files describe the finished run');
  if (values.promote && values['no-promote']) throw new UsageError('--promote and --no-promote contradict each other');
  const config = await loadConfig(values.config ?? defaultConfigPath());
  const stream = pickStream(config, values.stream);
  // Replay refuses placeholders, mismatches, other images and digests the registry lost before anything starts.
  const read = values.lock ? await readLock(values.lock, config, stream) : undefined;
  const lock = read?.lock;
  const gh = githubContext(process.env, readGithubEvent(process.env));
  const trigger: Trigger & { requestId: string } = {
    ...(gh ? triggerFromGithub(gh) : { source: values.source ?? (lock ? 'replay' : 'cli'), by: whoami() }),
    ...(values.commit ? { commit: values.commit } : {}),
    requestId: randomUUID(),
  };
  const say = (line: string) => (values.json ? undefined : process.stderr.write(`${line}\n`));
  if (read)
    say(
      `replaying ${values.lock} (${read.format === 'original' ? "the original's ci/inputs.lock.json format" : 'a kinoite-zfs lock'})${values.promote ? '' : '; it will not promote (add --promote)'}`,
    );
  const blocked = gh && mode === 'main' ? githubPromotionBlock(gh) : undefined;
  if (blocked) say(blocked);
  const options = {
    promote: !blocked && (lock ? values.promote : !values['no-promote']),
    rebuildAkmods: values['rebuild-akmods'],
  };
  const client = await connectClient(config);

  let handle: WorkflowHandle | undefined;
  let triggerStatus: string;
  if (mode === 'main') {
    const reply = await triggerStream(client, config, stream, { trigger, options, ...(lock ? { lock } : {}) });
    triggerStatus = reply.status;
    say(
      `stream/${stream}: ${reply.status}${reply.runWorkflowId ? ` ${reply.runWorkflowId}` : ' (a run is in progress; this trigger runs next)'}`,
    );
    if (!values.wait) {
      const url = reply.runWorkflowId ? runUrl(config, reply.runWorkflowId) : undefined;
      if (values.json) console.log(JSON.stringify({ ...reply, url }));
      if (gh)
        await writeGithubFiles(
          {
            workflowId: reply.runWorkflowId ?? '',
            runId: '',
            outcome: reply.status,
            message: `trigger ${reply.status}`,
            kernels: [],
            stages: [],
            url,
          },
          process.env,
        );
      return ExitCode.Ok;
    }
    handle = client.workflow.getHandle(reply.runWorkflowId ?? (await waitForRun(client, stream, reply.requestId)));
  } else {
    // One run per branch (or PR) and commit: starting the same one twice attaches to the first.
    const sha7 = (trigger.commit ?? '').slice(0, 12) || `t${Date.now()}`;
    const workflowId =
      mode === 'branch'
        ? `branch/${stream}/${branchPrefix(values.branch!)}/${sha7}`
        : `pr/${stream}/${values.pr}/${sha7}`;
    handle = await startPipelineRun(client, config, {
      stream,
      trigger,
      options: { ...options, promote: false },
      mode,
      branch: values.branch,
      pr: values.pr ? Number(values.pr) : undefined,
      workflowId,
    });
    triggerStatus = 'started';
    say(`${mode} build ${handle.workflowId}`);
    if (!values.wait) {
      const url = runUrl(config, handle.workflowId);
      if (values.json) console.log(JSON.stringify({ status: 'started', runWorkflowId: handle.workflowId, url }));
      if (gh)
        await writeGithubFiles(
          {
            workflowId: handle.workflowId,
            runId: '',
            outcome: 'started',
            message: `${mode} build started`,
            kernels: [],
            stages: [],
            url,
          },
          process.env,
        );
      return ExitCode.Ok;
    }
  }
  const { runId } = await handle.describe();
  const url = runUrl(config, handle.workflowId, runId);
  say(`following ${handle.workflowId}${url ? ` (${url})` : ''}`);
  const summary = {
    ...(await followRun(handle, {
      quiet: values.json,
      tty: !!process.stderr.isTTY,
      url,
      verify: verifySettingsOf(config, stream),
      runId,
    })),
    trigger: triggerStatus,
  };
  console.log(values.json ? JSON.stringify(summary) : formatSummary(summary));
  if (gh) await writeGithubFiles(summary, process.env);
  if (values.artifacts) {
    const written = await writeRunArtifacts(
      values.artifacts,
      {
        workflowId: handle.workflowId,
        result: await finishedResult(handle),
        by: trigger.by ?? whoami(),
        lock: { useInputLock: !!lock, lockFilePath: values.lock ?? DEFAULT_LOCK_FILE },
      },
      process.env,
    );
    say(
      written.length
        ? `wrote ${written.join(', ')}`
        : `wrote no artifacts: the run ended before its inputs were resolved`,
    );
  }
  return exitCodeFor(summary.outcome);
}
