/**
 * Activity proxies for workflow code: light activities on the control queue, podman work on the
 * build queue. Timeouts are short enough that a killed worker is noticed in seconds (heartbeats)
 * and retries back off long enough to ride out a registry restart.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { TaskQueues } from './shared.ts';

const retry = { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 8 };

/** Proxies for both queues. */
export function activitiesFor(queues: TaskQueues) {
  const control = proxyActivities<Activities>({
    taskQueue: queues.control,
    startToCloseTimeout: '30m',
    heartbeatTimeout: '30s',
    retry,
  });
  const build = proxyActivities<Activities>({
    taskQueue: queues.build,
    startToCloseTimeout: '3h',
    heartbeatTimeout: '30s',
    retry: { ...retry, initialInterval: '5s', maximumAttempts: 6 },
  });
  // Webhooks: a receiver that is down is tried again for about half an hour, one that refuses (4xx) is not.
  const notify = proxyActivities<Activities>({
    taskQueue: queues.control,
    startToCloseTimeout: '1m',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '60s', maximumAttempts: 35 },
  });
  return { control, build, notify };
}

/** The proxies' type. */
export type Acts = ReturnType<typeof activitiesFor>;
