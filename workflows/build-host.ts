/**
 * Build activities wait for a build host: each scheduling has a schedule-to-start timeout
 * (`retry.buildHostWait`). When it expires, the run's progress says "no build host has taken this
 * for N minutes" and the build is scheduled again, or the run fails when the stream says
 * `retry.onNoBuildHost: fail`.
 */
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import { noBuildHostMessage } from '../core/retry-budget.ts';
import type { Acts } from './activities.ts';
import type { RunState } from './run-state.ts';

/** True when an activity failed because no worker took it within its schedule-to-start timeout. */
export function noWorkerTookIt(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START
  );
}

/**
 * Runs one build activity (`schedule` schedules it on `acts.build` with the options given),
 * waiting for a build host as the stream says.
 */
export async function onBuildHost<T>(
  acts: Acts,
  state: RunState,
  summary: string,
  schedule: (options: { summary: string }) => Promise<T>,
): Promise<T> {
  const since = Date.now();
  try {
    for (;;) {
      try {
        return await schedule({ summary });
      } catch (err) {
        if (!noWorkerTookIt(err)) throw err;
        const message = noBuildHostMessage(summary, Date.now() - since, acts.queues.build);
        if (acts.onNoBuildHost === 'fail')
          throw ApplicationFailure.create({
            type: 'NoBuildHost',
            message: `${message}; the stream says retry.onNoBuildHost: fail`,
            nonRetryable: true,
          });
        state.waiting(summary, message);
      }
    }
  } finally {
    state.waiting(summary, undefined);
  }
}
