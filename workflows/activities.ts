/**
 * Activity proxies for workflow code, one per task queue and typed by it: the control queue's
 * activities (registry HTTP, cosign, git, release source) and the build queue's (podman work), so
 * scheduling an activity on the wrong queue is a type error. Options come from the stream's retry
 * budgets in the run's input (core/retry-budget.ts): registry and network calls retry with backoff
 * for at least `retry.budget`; a build waits `retry.buildHostWait` for a build host per scheduling
 * (see build-host.ts); a killed worker is noticed by its missed heartbeat within 30 s.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { BuildActivities, ControlActivities } from '../activities/index.ts';
import { buildHostWaitMs, networkRetryPolicy, RETRY_DEFAULTS, type RetryBudget } from '../core/retry-budget.ts';
import type { TaskQueues } from './shared.ts';

/**
 * Proxies for both queues, from the queues, the stream's retry budgets and the stream's own build
 * queue (stream setting buildQueue: its builds go to the build hosts serving that queue).
 */
export function activitiesFor(shared: TaskQueues, retry: RetryBudget = {}, buildQueue?: string) {
  const queues = { ...shared, build: buildQueue ?? shared.build };
  const network = networkRetryPolicy(retry);
  const control = proxyActivities<ControlActivities>({
    taskQueue: queues.control,
    startToCloseTimeout: '30m',
    heartbeatTimeout: '30s',
    retry: network,
  });
  const build = proxyActivities<BuildActivities>({
    taskQueue: queues.build,
    startToCloseTimeout: '3h',
    // Expiry is not retried by the server: the workflow says so in the run's progress and schedules again.
    scheduleToStartTimeout: buildHostWaitMs(retry),
    heartbeatTimeout: '30s',
    retry: network,
  });
  // Webhooks: a receiver that is down is tried again for about half an hour, one that refuses (4xx) is not.
  const notify = proxyActivities<Pick<ControlActivities, 'deliverNotification'>>({
    taskQueue: queues.control,
    startToCloseTimeout: '1m',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '60s', maximumAttempts: 35 },
  });
  return { control, build, notify, queues, onNoBuildHost: retry.onNoBuildHost ?? RETRY_DEFAULTS.onNoBuildHost };
}

/** The proxies' type. */
export type Acts = ReturnType<typeof activitiesFor>;
