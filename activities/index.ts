/**
 * The activity factory: every activity the worker registers, built from its dependencies.
 * Each activity is wrapped so that it heartbeats with its progress while it makes some (a killed
 * worker is noticed in seconds, a hung call once it has made no progress for a while: see
 * progress.ts), logs one line with stream, stage and workflow id, and turns a PermanentError into a
 * non-retryable ApplicationFailure of the same type.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { FailureType, isPermanentError } from '../core/errors.ts';
import { UnrecognisedToolFailure } from './run-tool.ts';
import { resolveActivities } from './resolve.ts';
import { akmodsActivities } from './akmods.ts';
import { composeActivities } from './compose.ts';
import { smokeTestActivities } from './smoke-test.ts';
import { bootTestActivities } from './boot-test.ts';
import { notifyActivities } from './notify.ts';
import { promotionActivities } from './promotion.ts';
import { streamConfigActivities } from './stream-config.ts';
import type { ActivityDeps } from './deps.ts';
import { heartbeatDue, HEARTBEAT_EVERY_MS, ProgressTracker, STALL_AFTER_MS, withProgress } from './progress.ts';

/** When the wrapper heartbeats (tests shorten them). */
export interface HeartbeatTiming {
  /** @default 5 s */
  everyMs?: number;
  /** No heartbeat once the activity has made no progress for this long. @default 5 min */
  stallAfterMs?: number;
}

/** Creates every activity; the worker registers the result. */
export function createActivities(deps: ActivityDeps, timing: HeartbeatTiming = {}) {
  const all = {
    ...resolveActivities(deps),
    ...akmodsActivities(deps),
    ...composeActivities(deps),
    ...smokeTestActivities(deps),
    ...bootTestActivities(deps),
    ...notifyActivities(deps),
    ...promotionActivities(deps),
    ...streamConfigActivities(deps),
  };
  return Object.fromEntries(
    Object.entries(all).map(([name, fn]) => [name, wrap(name, fn as (input: unknown) => Promise<unknown>, timing)]),
  ) as typeof all;
}

/** The activities' type, for `proxyActivities<Activities>()` in workflow code. */
export type Activities = ReturnType<typeof createActivities>;

/** Activities that run on the build task queue (podman work); the rest run on the control queue. */
export const BUILD_QUEUE_ACTIVITIES = ['buildKernelAkmods', 'composeCandidate', 'bootTestCandidate'] as const;

/** The build queue's activities, for `proxyActivities<BuildActivities>()` on the build queue. */
export type BuildActivities = Pick<Activities, (typeof BUILD_QUEUE_ACTIVITIES)[number]>;

/** The control queue's activities (every other one), for `proxyActivities<ControlActivities>()` on the control queue. */
export type ControlActivities = Omit<Activities, (typeof BUILD_QUEUE_ACTIVITIES)[number]>;

/**
 * Attempts a tool failing in an unrecognised way gets (the old fixed policy's 6 for builds); a
 * network fault is retried for the stream's whole budget instead.
 */
export const UNRECOGNISED_TOOL_ATTEMPTS = 6;

/** One activity as the worker runs it: heartbeats from progress, one log line, failures classified. */
export function wrap(name: string, fn: (input: unknown) => Promise<unknown>, timing: HeartbeatTiming = {}) {
  const stallAfterMs = timing.stallAfterMs ?? STALL_AFTER_MS;
  return async function (this: unknown, input: unknown) {
    const ctx = Context.current();
    const { attempt } = ctx.info;
    const workflowId = ctx.info.workflowExecution?.workflowId;
    const t0 = Date.now();
    const tracker = new ProgressTracker(t0);
    let stalled = false;
    const ticker = setInterval(() => {
      const details = heartbeatDue(tracker, stallAfterMs);
      if (details) ctx.heartbeat(details);
      else if (!stalled)
        ctx.log.warn(
          `${name} made no progress for ${stallAfterMs / 1000}s; it stops heartbeating, so Temporal times this attempt out and retries it`,
          { workflowId, attempt, progress: tracker.progress },
        );
      stalled = !details;
    }, timing.everyMs ?? HEARTBEAT_EVERY_MS);
    ctx.log.info(`${name} started`, { workflowId, attempt });
    try {
      const result = await withProgress(tracker, () => fn.call(this, input));
      ctx.log.info(`${name} finished in ${((Date.now() - t0) / 1000).toFixed(1)}s`, { workflowId });
      return result;
    } catch (err) {
      ctx.log.warn(`${name} failed: ${(err as Error).message.split('\n')[0]}`, { workflowId, attempt });
      if (isPermanentError(err))
        throw ApplicationFailure.create({ type: err.type, message: err.message, nonRetryable: true });
      if (err instanceof UnrecognisedToolFailure && attempt >= UNRECOGNISED_TOOL_ATTEMPTS)
        throw ApplicationFailure.create({
          type: FailureType.ToolFailed,
          message: `${err.message.replace(/; will be retried\)$/, ')')}\nFailed the same unrecognised way ${attempt} times; not retried further.`,
          nonRetryable: true,
        });
      throw err;
    } finally {
      clearInterval(ticker);
    }
  };
}
