/**
 * Retry budgets by kind of work, with every activity mocked and second-scale durations from the
 * stream's settings: a build no build host takes is shown in the run's progress and scheduled
 * again (or fails the run when the stream says so); a registry call failing for more attempts than
 * the old fixed policy allowed (8) is ridden out within the stream's budget, and the budget bounds it.
 * Needs the dev server of this checkout (node bin/kinoite-zfs.js services up).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { startPipelineRun } from '../../client/temporal.ts';
import { progressQuery } from '../../workflows/shared.ts';
import { networkRetryPolicy } from '../../core/retry-budget.ts';
import { eventually, mockConfig, startMockEnv, streamName, type MockEnv } from '../support/mock-activities.ts';

let m: MockEnv;
before(async () => {
  // No build host at first: the first tests are about waiting for one.
  m = await startMockEnv('budgets', { buildWorker: false });
});
after(async () => {
  await m?.close();
});

let runs = 0;
function start(retry: Record<string, string>) {
  runs += 1;
  const stream = streamName('budgets');
  const config = m.world.configure(mockConfig({ stream, address: m.address, queue: m.queue, policy: 'auto', retry }));
  return startPipelineRun(m.client, config, {
    stream,
    trigger: { source: 'test' },
    runNumber: 700 + runs,
    workflowId: `run/${stream}/${runs}`,
  });
}

async function scheduled(handle: WorkflowHandle, activity: string): Promise<number> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity)
    .length;
}

async function currentDetails(handle: WorkflowHandle): Promise<string> {
  const meta = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
  return meta.currentDetails ?? '';
}

test('with retry.onNoBuildHost: fail, a build no build host takes within retry.buildHostWait fails the run saying so', async () => {
  const handle = await start({ buildHostWait: '1s', onNoBuildHost: 'fail' });
  const err = await handle.result().then(
    () => assert.fail('the run must fail without a build host'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError);
  assert.match(
    String(err.cause?.message),
    /^compose failed: no build host has taken this for 1 second: compose .* \(task queue .*-build; start a worker with --queues build\); the stream says retry.onNoBuildHost: fail$/,
  );
  assert.equal(await scheduled(handle, 'composeCandidate'), 1, 'scheduled once, not again');
});

test('a build no build host takes within retry.buildHostWait is shown in the progress and the Web UI, scheduled again, and runs once a build host comes', async () => {
  const handle = await start({ buildHostWait: '1s' });
  const waiting = await eventually(
    'the run to say that no build host has taken the compose twice',
    async () => {
      const p = await handle.query(progressQuery);
      return (await scheduled(handle, 'composeCandidate')) >= 2 && p.waiting?.length ? p : undefined;
    },
    30_000,
  );
  assert.equal(waiting.stage, 'compose');
  assert.equal(waiting.waiting!.length, 1);
  assert.match(waiting.waiting![0]!, /^no build host has taken this for \d+ seconds?: compose /);
  assert.match(await currentDetails(handle), /\*\*Waiting\*\* no build host has taken this for \d+ seconds?: compose /);

  await m.startBuildWorker();
  const result = await handle.result();
  assert.equal(result.outcome, 'promoted');
  const done = await handle.query(progressQuery);
  assert.deepEqual(done.waiting, [], 'the waiting line is gone once the build ran');
  assert.doesNotMatch(await currentDetails(handle), /Waiting/);
});

test('a registry call failing for more attempts than the old fixed policy (8) is retried within the stream budget and the run promotes', async () => {
  const retry = { budget: '3s', maxBackoff: '100ms' };
  assert.ok(networkRetryPolicy(retry).maximumAttempts > 13, 'the budget allows more than the 13 calls below');
  let failures = 0;
  m.world.fault = (c) => (c.name === 'resolveImageDigest' && ++failures <= 12 ? 'transient' : undefined);
  const handle = await start(retry);
  const result = await handle.result();
  assert.equal(result.outcome, 'promoted');
  assert.equal(m.world.callsOf(handle.workflowId).filter((c) => c.name === 'resolveImageDigest').length, 13);
});

test('the budget bounds the retries: a call that keeps failing fails the run after the attempts the budget allows', async () => {
  const retry = { budget: '1s', maxBackoff: '100ms' };
  m.world.fault = (c) => (c.name === 'resolveImageDigest' ? 'transient' : undefined);
  const handle = await start(retry);
  const err = await handle.result().then(
    () => assert.fail('the run must fail once the budget is spent'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError);
  assert.match(String(err.cause?.message), /^resolve failed: mock resolveImageDigest failed/);
  assert.equal(
    m.world.callsOf(handle.workflowId).filter((c) => c.name === 'resolveImageDigest').length,
    networkRetryPolicy(retry).maximumAttempts,
  );
  m.world.fault = undefined;
});
