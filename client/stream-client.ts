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
import { streamPlanOf } from '../core/pipeline.ts';

/** Workflow id of a stream. */
export function streamWorkflowId(stream: string): string {
  return `stream/${stream}`;
}

/** Handle of a stream workflow (it may not exist yet). */
export function streamHandle(client: Client, stream: string) {
  return client.workflow.getHandle<typeof streamWorkflow>(streamWorkflowId(stream));
}

/**
 * Triggers a run on a stream, starting the stream workflow on first use. The trigger names the
 * stream and run options only: the workers read the stream's settings from their own config
 * (docs/trust.md). The stream must be in this config too, so a mistyped name fails here at once.
 */
export async function triggerStream(
  client: Client,
  config: Config,
  stream: string,
  req: Omit<TriggerRequest, 'plan'>,
  extra: Partial<StreamInput> = {},
): Promise<TriggerReply> {
  if (!streamPlanOf(config, stream)) throw new Error(`unknown stream "${stream}"`);
  const previousRuns = await previousRunsOf(client, stream);
  const op = new WithStartWorkflowOperation(streamWorkflow, {
    workflowId: streamWorkflowId(stream),
    taskQueue: config.temporal.taskQueues.control,
    workflowIdConflictPolicy: 'USE_EXISTING',
    args: [{ stream, taskQueues: config.temporal.taskQueues, previousRuns, ...extra }],
    staticSummary: `kinoite-zfs stream ${stream}: the only writer of its stable tags`,
  });
  return client.workflow.executeUpdateWithStart(triggerUpdate, {
    args: [{ ...req, taskQueues: config.temporal.taskQueues }],
    startWorkflowOperation: op,
  });
}

/**
 * How many runs the stream had before, for a stream workflow this trigger starts: its run numbers
 * (and audit tags) continue from there. When they cannot be counted, a running stream is fine (it
 * keeps its own count and ignores this one); a stream that would start now is refused, because
 * starting from 0 repeats run numbers.
 */
export async function previousRunsOf(client: Client, stream: string): Promise<number> {
  try {
    return (await client.workflow.count(`WorkflowType = 'pipelineRunWorkflow' AND KzStream = '${stream}'`)).count;
  } catch (err) {
    const running = await streamHandle(client, stream)
      .describe()
      .then(
        (d) => d.status.name === 'RUNNING',
        () => false,
      );
    if (running) return 0;
    throw new Error(
      `Cannot count the earlier runs of stream ${stream} (${(err as Error).message.split('\n')[0]}), and stream/${stream} is not running: starting it without that count would number its runs from 1 again. Check that the Temporal server's visibility answers (temporal workflow count), then try again.`,
    );
  }
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
