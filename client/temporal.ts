/**
 * The Temporal client the CLI uses, and the start of pipeline runs.
 */
import { Client, Connection, WorkflowIdReusePolicy, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Config } from '../core/config.ts';
import { streamPlanOf, type PipelineInput, type StreamPlan } from '../core/pipeline.ts';
import { SearchAttr } from '../workflows/shared.ts';
import type { pipelineRunWorkflow } from '../workflows/pipeline-run.ts';
import { connectionOptions } from './connection.ts';
import { checkNamespace } from '../services/namespace.ts';

/**
 * Connects to Temporal with the config's settings (a connection error maps to exit code 3) and
 * checks that the namespace is set up for the project (services/namespace.ts), so a missing search
 * attribute fails here with the command to run instead of inside a run.
 */
export async function connectClient(config: Config): Promise<Client> {
  const connection = await Connection.connect({ ...connectionOptions(config.temporal), connectTimeout: '10s' });
  try {
    await checkNamespace(connection, config.temporal.namespace, config.temporal.address);
  } catch (err) {
    await connection.close();
    throw err;
  }
  return new Client({ connection, namespace: config.temporal.namespace });
}

/** The public part of a stream's settings in this config (no signing references, no schedule). */
export function streamPlan(config: Config, stream: string): StreamPlan {
  const plan = streamPlanOf(config, stream);
  if (!plan) throw new Error(`unknown stream "${stream}"`);
  return plan;
}

/** The Web UI address of a workflow, when the config names the UI. */
export function runUrl(config: Config, workflowId: string, runId?: string): string | undefined {
  if (!config.temporal.webUrl) return undefined;
  const base = config.temporal.webUrl.replace(/\/$/, '');
  return `${base}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${runId}` : ''}`;
}

/** A UTC timestamp usable in ids and tags: 20261125T210501Z → 20261125210501. */
export function runStamp(now = new Date()): string {
  return now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * Starts one pipeline run outside the stream (branch and PR builds, tests); returns its handle.
 * With a `workflowId` (e.g. one derived from the commit), starting the same run again attaches to
 * the first while it runs or after it succeeded; after it failed (or was terminated, cancelled,
 * timed out) a new run starts under the same id: re-running a failed commit builds it again.
 */
export async function startPipelineRun(
  client: Client,
  config: Config,
  input: Omit<PipelineInput, 'plan' | 'runNumber'> & { runNumber?: number; workflowId?: string },
) {
  const now = new Date();
  const stamp = runStamp(now);
  const runNumber = input.runNumber ?? Number(stamp);
  const plan = streamPlan(config, input.stream);
  const { workflowId: wanted, ...rest } = input;
  const workflowId = wanted ?? `run/${input.stream}/${stamp}-${String(now.getUTCMilliseconds()).padStart(3, '0')}`;
  try {
    return await startRun(client, config, { ...rest, runNumber, workflowId }, plan);
  } catch (err) {
    if (wanted && err instanceof WorkflowExecutionAlreadyStartedError)
      return client.workflow.getHandle<typeof pipelineRunWorkflow>(workflowId);
    throw err;
  }
}

/** Starts the run; `plan` (this config's view of the stream) only describes it in the Web UI: the run reads the workers' own. */
function startRun(
  client: Client,
  config: Config,
  input: Omit<PipelineInput, 'runNumber' | 'plan'> & { runNumber: number; workflowId: string },
  plan: StreamPlan,
) {
  const { runNumber, workflowId } = input;
  return client.workflow.start<typeof pipelineRunWorkflow>('pipelineRunWorkflow', {
    workflowId,
    taskQueue: config.temporal.taskQueues.control,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    args: [
      {
        stream: input.stream,
        runNumber,
        trigger: input.trigger,
        options: input.options,
        mode: input.mode,
        branch: input.branch,
        pr: input.pr,
        lock: input.lock,
        taskQueues: config.temporal.taskQueues,
      },
    ],
    typedSearchAttributes: [
      { key: SearchAttr.stream, value: input.stream },
      { key: SearchAttr.trigger, value: input.trigger.source },
      ...(input.trigger.commit ? [{ key: SearchAttr.commit, value: input.trigger.commit }] : []),
      ...(input.trigger.github ? [{ key: SearchAttr.repository, value: input.trigger.github.repository }] : []),
    ],
    staticSummary: `kinoite-zfs ${input.stream}: ${input.mode && input.mode !== 'main' ? `${input.mode} build${input.branch ? ` of ${input.branch}` : ''}${input.pr ? ` #${input.pr}` : ''}` : `pipeline run #${runNumber}`} (${input.trigger.source})`,
    staticDetails: [
      `**Stream** ${input.stream}`,
      `**Base** \`${plan.baseImage}\` · **ZFS line** ${plan.zfs.line}`,
      `**Stable** \`${plan.images.stable}\` (${plan.images.stableTags.join(', ')}) · **policy** ${plan.promotion.policy}`,
      `**Trigger** ${input.trigger.source}${input.trigger.by ? ` by ${input.trigger.by}` : ''}`,
    ].join('\n\n'),
    memo: { stream: input.stream, trigger: input.trigger },
  });
}
