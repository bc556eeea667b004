/**
 * What a stream's Temporal Schedule starts: a tiny workflow that triggers the stream workflow
 * (starting it first when it does not exist yet), so a scheduled run goes through the stream
 * like every other trigger.
 */
import { getExternalWorkflowHandle, startChild, ParentClosePolicy, workflowInfo } from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { StreamPlan } from '../core/pipeline.ts';
import { triggerSignal, type TaskQueues } from './shared.ts';
import type { streamWorkflow } from './stream.ts';

/** Input the schedule's action carries. */
export interface ScheduledTriggerInput {
  stream: string;
  /** Sent by schedules made before the workers read stream settings from their own config; ignored by streams since then. */
  plan?: StreamPlan;
  taskQueues: TaskQueues;
}

/** Sends one `trigger` signal (source `schedule`) to `stream/<name>`. */
export async function scheduledTriggerWorkflow(input: ScheduledTriggerInput): Promise<string> {
  const streamId = `stream/${input.stream}`;
  try {
    await startChild<typeof streamWorkflow>('streamWorkflow', {
      workflowId: streamId,
      taskQueue: input.taskQueues.control,
      parentClosePolicy: ParentClosePolicy.ABANDON,
      args: [{ stream: input.stream, taskQueues: input.taskQueues }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  await getExternalWorkflowHandle(streamId).signal(triggerSignal, {
    trigger: { source: 'schedule', by: workflowInfo().workflowId, requestId: workflowInfo().workflowId },
    plan: input.plan,
    taskQueues: input.taskQueues,
  });
  return streamId;
}
