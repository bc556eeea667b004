import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildHostWaitMs,
  networkRetryPolicy,
  noBuildHostMessage,
  totalBackoffMs,
  waitedText,
} from '../../core/retry-budget.ts';
import type { Acts } from '../../workflows/activities.ts';

test('the default network policy retries with backoff for at least 30 minutes, far beyond the old 8 attempts (~2 min)', () => {
  const p = networkRetryPolicy();
  assert.deepEqual(
    { initial: p.initialInterval, coefficient: p.backoffCoefficient, max: p.maximumInterval },
    { initial: 2_000, coefficient: 2, max: 30_000 },
  );
  assert.ok(totalBackoffMs(p) >= 30 * 60_000, `waits add up to ${totalBackoffMs(p)} ms`);
  // Just enough attempts: one fewer would not cover the budget.
  assert.ok(totalBackoffMs({ ...p, maximumAttempts: p.maximumAttempts - 1 }) < 30 * 60_000);
  assert.equal(p.maximumAttempts, 64);
});

test('the budget and the longest wait come from the stream settings, in any duration unit', () => {
  for (const retry of [
    { budget: '3s', maxBackoff: '100ms' },
    { budget: '10m', maxBackoff: '1m' },
    { budget: '2h', maxBackoff: '5m' },
  ]) {
    const p = networkRetryPolicy(retry);
    const budget = { '3s': 3_000, '10m': 600_000, '2h': 7_200_000 }[retry.budget]!;
    assert.ok(totalBackoffMs(p) >= budget, `${retry.budget}: ${totalBackoffMs(p)} ms`);
    assert.ok(totalBackoffMs({ ...p, maximumAttempts: p.maximumAttempts - 1 }) < budget);
  }
  assert.equal(
    networkRetryPolicy({ maxBackoff: '100ms' }).initialInterval,
    100,
    'the first wait is never longer than the longest',
  );
});

test('a zero budget is refused by the duration rule (config check refuses it the same way)', () => {
  assert.throws(() => networkRetryPolicy({ budget: '0s' }), /"0s" is zero/);
});

test('a build waits 15 minutes for a build host by default, else what the stream says', () => {
  assert.equal(buildHostWaitMs(), 15 * 60_000);
  assert.equal(buildHostWaitMs({ buildHostWait: '2s' }), 2_000);
});

test('waiting times read as whole minutes from one minute on, else seconds', () => {
  assert.equal(waitedText(1_000), '1 second');
  assert.equal(waitedText(42_400), '42 seconds');
  assert.equal(waitedText(60_000), '1 minute');
  assert.equal(waitedText(31 * 60_000 + 59_000), '31 minutes');
  assert.equal(
    noBuildHostMessage('compose r/c:t', 15 * 60_000, 'kz-build'),
    'no build host has taken this for 15 minutes: compose r/c:t (task queue kz-build; start a worker with --queues build)',
  );
});

// Compile-time checks (tsc --noEmit runs over test/): one typed proxy per queue.
export function queueTyping(acts: Acts): void {
  void acts.build.composeCandidate;
  void acts.control.smokeTestCandidate;
  // @ts-expect-error a build activity cannot be scheduled on the control queue
  void acts.control.composeCandidate;
  // @ts-expect-error a control activity cannot be scheduled on the build queue
  void acts.build.copyImageByDigest;
}
