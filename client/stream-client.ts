/**
 * Talking to a stream workflow (`stream/<name>`): trigger (update-with-start, so the first
 * trigger starts the stream), operator updates, the state query, and following the run a
 * trigger started.
 */
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import type { Config } from '../core/config.ts';
import { streamWorkflow, streamStateQuery, type StreamInput } from '../workflows/stream.ts';
import { triggerUpdate, type TriggerReply, type TriggerRequest } from '../workflows/shared.ts';
import type { StreamStateData } from '../workflows/stream-state.ts';
import { streamPlan } from './temporal.ts';

/** Workflow id of a stream. */
export function streamWorkflowId(stream: string): string {
  return `stream/${stream}`;
}

/** Handle of a stream workflow (it may not exist yet). */
export function streamHandle(client: Client, stream: string) {
  return client.workflow.getHandle<typeof streamWorkflow>(streamWorkflowId(stream));
}

/** Triggers a run on a stream, starting the stream workflow on first use. */
export async function triggerStream(
  client: Client,
  config: Config,
  stream: string,
  req: Omit<TriggerRequest, 'plan'>,
  extra: Partial<StreamInput> = {},
): Promise<TriggerReply> {
  const plan = streamPlan(config, stream);
  // Used only when this trigger starts the stream: run numbers (and audit tags) continue from earlier runs.
  const previousRuns = (
    await client.workflow
      .count(`WorkflowType = 'pipelineRunWorkflow' AND KzStream = '${stream}'`)
      .catch(() => ({ count: 0 }))
  ).count;
  const op = new WithStartWorkflowOperation(streamWorkflow, {
    workflowId: streamWorkflowId(stream),
    taskQueue: config.temporal.taskQueues.control,
    workflowIdConflictPolicy: 'USE_EXISTING',
    args: [
      { stream, taskQueues: config.temporal.taskQueues, approvers: plan.promotion.approvers, previousRuns, ...extra },
    ],
    staticSummary: `kinoite-zfs stream ${stream}: the only writer of its stable tags`,
  });
  return client.workflow.executeUpdateWithStart(triggerUpdate, {
    args: [{ ...req, plan, taskQueues: config.temporal.taskQueues }],
    startWorkflowOperation: op,
  });
}

/** The stream's state, or undefined when the stream has never run. */
export async function streamState(client: Client, stream: string): Promise<StreamStateData | undefined> {
  try {
    return await streamHandle(client, stream).query(streamStateQuery);
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError' || /not found/i.test((err as Error).message)) return undefined;
    throw err;
  }
}

/** Waits until a queued or coalesced trigger has a run, printing nothing; returns the run's workflow id. */
export async function waitForRun(
  client: Client,
  stream: string,
  requestId: string,
  onWait?: (s: StreamStateData) => void,
): Promise<string> {
  for (;;) {
    const s = await streamState(client, stream);
    const t = s?.triggers.find((x) => x.requestId === requestId);
    if (t?.runWorkflowId) return t.runWorkflowId;
    if (s) onWait?.(s);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
