/**
 * Retry budgets by kind of work, as pure functions the workflows call to build their activity
 * options: registry and network calls retry with backoff for at least `retry.budget`; build
 * activities wait `retry.buildHostWait` for a build host per scheduling, and a run says so in its
 * progress when none has taken the work.
 */
import { durationMs } from './stream-rules.ts';

/** A stream's retry settings as the workflow receives them (every field optional: older inputs lack them). */
export interface RetryBudget {
  /** How long registry and network calls keep being retried, counted as the sum of the waits between attempts. @default 30m */
  budget?: string;
  /** The longest wait between two attempts; the first wait is 2 s or this, whichever is shorter. @default 30s */
  maxBackoff?: string;
  /** Schedule-to-start timeout of build activities: how long a build waits for a build host before the run says so. @default 15m */
  buildHostWait?: string;
  /** What a run does when no build host has taken a build for `buildHostWait`. @default wait */
  onNoBuildHost?: 'wait' | 'fail';
}

/** The defaults of {@link RetryBudget} (also the config schema's). */
export const RETRY_DEFAULTS = {
  budget: '30m',
  maxBackoff: '30s',
  buildHostWait: '15m',
  onNoBuildHost: 'wait',
} as const satisfies Required<RetryBudget>;

/** The doubling of the wait after every failed attempt. */
export const BACKOFF_COEFFICIENT = 2;
const FIRST_WAIT_MS = 2_000;

/** A Temporal retry policy, in milliseconds (what `proxyActivities` takes). */
export interface RetryPolicyMs {
  initialInterval: number;
  backoffCoefficient: number;
  maximumInterval: number;
  maximumAttempts: number;
}

/**
 * The retry policy whose waits between attempts add up to at least the budget: the first wait is
 * 2 s (or `maxBackoff` when shorter), each next one doubles up to `maxBackoff`, and there are just
 * enough attempts for the waits to cover the budget. Attempt durations add to the waits, so a call
 * is retried for at least the budget, never less.
 */
export function networkRetryPolicy(retry: RetryBudget = {}): RetryPolicyMs {
  const budget = durationMs(retry.budget ?? RETRY_DEFAULTS.budget);
  const maximumInterval = Math.max(1, durationMs(retry.maxBackoff ?? RETRY_DEFAULTS.maxBackoff));
  const initialInterval = Math.min(FIRST_WAIT_MS, maximumInterval);
  let waited = 0;
  let attempts = 1;
  for (let wait = initialInterval; waited < budget; wait = Math.min(wait * BACKOFF_COEFFICIENT, maximumInterval)) {
    waited += wait;
    attempts += 1;
  }
  return { initialInterval, backoffCoefficient: BACKOFF_COEFFICIENT, maximumInterval, maximumAttempts: attempts };
}

/** The sum of the waits a retry policy makes between its attempts (what {@link networkRetryPolicy} sizes). */
export function totalBackoffMs(p: RetryPolicyMs): number {
  let total = 0;
  for (let i = 1, wait = p.initialInterval; i < p.maximumAttempts; i++) {
    total += wait;
    wait = Math.min(wait * p.backoffCoefficient, p.maximumInterval);
  }
  return total;
}

/** The schedule-to-start timeout of build activities, in milliseconds. */
export function buildHostWaitMs(retry: RetryBudget = {}): number {
  return durationMs(retry.buildHostWait ?? RETRY_DEFAULTS.buildHostWait);
}

/** A waiting time as an operator reads it: whole minutes from one minute on, else seconds. */
export function waitedText(ms: number): string {
  if (ms >= 60_000) {
    const minutes = Math.floor(ms / 60_000);
    return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  }
  const seconds = Math.round(ms / 1000);
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}

/** What a run's progress says about a build no build host has taken yet. */
export function noBuildHostMessage(what: string, waitedMs: number, queue: string): string {
  return `no build host has taken this for ${waitedText(waitedMs)}: ${what} (task queue ${queue}; start a worker with --queues build)`;
}
