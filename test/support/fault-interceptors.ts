/**
 * Workflow interceptors of the fault suite's worker (test/support/fault-worker.ts), bundled into its
 * workflow code: when an activity's result reaches a workflow, the `fault` sink hears of it. Sinks run
 * in the worker once the workflow task is processed and before its completion is sent to Temporal,
 * so a worker that dies there dies just after Temporal recorded the activity as completed.
 */
import { proxySinks, type Sinks, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

/** The sink the fault worker provides. */
export interface FaultSinks extends Sinks {
  fault: {
    /** An activity of this workflow completed (its id, as in the history, and its type). */
    activityCompleted(activityId: string, activityType: string): void;
  };
}

const { fault } = proxySinks<FaultSinks>();

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      async scheduleActivity(input, next) {
        const result = await next(input);
        fault.activityCompleted(input.options.activityId ?? String(input.seq), input.activityType);
        return result;
      },
    },
  ],
});
