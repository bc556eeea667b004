/**
 * The stream's races, with every activity mocked: approval expiry, supersede, approve and hold,
 * rollback during a promotion, veto during a run, continue-as-new with a run waiting for approval.
 * Driven through the client helpers and Updates the CLI uses; each takes seconds (durations come
 * from the stream's config and input). A test marked todo would show a known bug of the stream (it
 * asserts the correct behaviour, runs and reports, but does not fail the suite); none is today.
 * Needs the dev server of this checkout (node bin/kinoite-zfs.js services up).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { streamHandle, streamState, triggerStream } from '../../client/stream-client.ts';
import { streamWorkflow, type StreamInput } from '../../workflows/stream.ts';
import type { StreamStateData } from '../../workflows/stream-state.ts';
import {
  approveUpdate,
  holdUpdate,
  releaseUpdate,
  rollbackUpdate,
  triggerUpdate,
  vetoUpdate,
  type TriggerReply,
} from '../../workflows/shared.ts';
import { streamPlanOf, type PipelineResult } from '../../core/pipeline.ts';
import {
  PUBLIC_TAGS,
  REPOS,
  digestOf,
  eventually,
  mockConfig,
  startMockEnv,
  streamName,
  type MockEnv,
} from '../support/mock-activities.ts';

let m: MockEnv;
before(async () => {
  m = await startMockEnv('stream');
});
after(async () => {
  await m?.close();
});

const PREVIOUS: Record<string, string> = {
  [PUBLIC_TAGS[0]]: digestOf('previous-stable'),
  [PUBLIC_TAGS[1]]: digestOf('previous-stable'),
  [PUBLIC_TAGS[2]]: digestOf('previous-akmods'),
};
const TIMEOUT = { timeout: 90_000 };
let commits = 0;

/** A fresh stream over a fresh registry (the previous digests on every public tag) and new inputs. */
function fresh(what: string, opts: { policy: 'auto' | 'approval'; timeout?: string }) {
  const stream = streamName(what);
  const config = m.world.configure(mockConfig({ stream, address: m.address, queue: m.queue, ...opts }));
  m.world.tags.clear();
  for (const [ref, digest] of Object.entries(PREVIOUS)) m.world.tags.set(ref, digest);
  m.world.fault = undefined;
  const s = {
    stream,
    handle: streamHandle(m.client, stream),
    /** New inputs for the next run (a new recipe commit: a new inputs hash, a new candidate). */
    newInputs: () => void (m.world.recipeCommit = (++commits).toString(16).padStart(40, 'c')),
    trigger: (extra: Partial<StreamInput> = {}): Promise<TriggerReply> =>
      triggerStream(m.client, config, stream, { trigger: { source: 'test', by: 'tester' } }, extra),
    state: async () => (await streamState(m.client, stream))!,
    until: (what: string, check: (st: StreamStateData) => boolean) =>
      eventually(what, async () => {
        const st = await streamState(m.client, stream);
        return st && check(st) ? st : undefined;
      }),
    result: (runId: string) => m.client.workflow.getHandle(runId).result() as Promise<PipelineResult>,
    approve: (st: StreamStateData, by = 'alice') =>
      s.handle.executeUpdate(approveUpdate, {
        args: [{ by, digest: st.parked!.digest, inputsHash: st.parked!.inputsHash }],
      }),
  };
  s.newInputs();
  return s;
}

/** What an Update's refusal says (the validator's message). */
async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => assert.fail('the update was accepted'),
    (e: Error & { cause?: Error }) => e,
  );
  return err.cause?.message ?? err.message;
}

const stableOn = (digest: string) => ({
  [PUBLIC_TAGS[0]]: digest,
  [PUBLIC_TAGS[1]]: digest,
  [PUBLIC_TAGS[2]]: m.world.akmodsDigest,
});
/** A run's promotion calls (the candidate's own signature, made right after compose, is none). */
const sagaCalls = (runId: string) =>
  m.world
    .callsOf(runId)
    .filter(
      (c) =>
        ['readTagDigests', 'signImage', 'copyImageByDigest'].includes(c.name) &&
        !`${c.input.ref}`.startsWith(`${REPOS.candidate}@`),
    );

test('a candidate nobody approves in time ends its run expired and leaves stable untouched', TIMEOUT, async () => {
  const s = fresh('expiry', { policy: 'approval', timeout: '2s' });
  const reply = await s.trigger();
  assert.equal(reply.status, 'started');
  const run = reply.runWorkflowId!;
  assert.equal(run, `stream/${s.stream}/run-1`);
  const waiting = await s.until('the candidate to wait for approval', (st) => st.parked?.runWorkflowId === run);
  const result = await s.result(run);
  assert.equal(result.outcome, 'expired');
  assert.match(result.message, /Nobody approved within 2s/);
  const st = await s.until('the stream to record the expiry', (x) => !x.parked && x.counters.expired === 1);
  assert.equal(st.lastGood, undefined);
  assert.deepEqual(st.releases, []);
  assert.deepEqual(m.world.snapshot(PUBLIC_TAGS), PREVIOUS);
  assert.deepEqual(sagaCalls(run), [], 'nothing was read, signed or copied for a promotion');
  assert.match(await refusal(s.approve(waiting)), /No candidate is waiting for approval/);
});

test(
  'a newer candidate supersedes the one waiting for approval; only the newer one can be approved',
  TIMEOUT,
  async () => {
    const s = fresh('supersede', { policy: 'approval' });
    const first = (await s.trigger()).runWorkflowId!;
    const older = await s.until('run 1 to wait for approval', (st) => st.parked?.runWorkflowId === first);
    s.newInputs();
    const reply = await s.trigger();
    assert.equal(reply.status, 'started', 'a waiting run does not block the stream');
    const second = reply.runWorkflowId!;
    const firstResult = await s.result(first);
    assert.equal(firstResult.outcome, 'superseded');
    const newer = await s.until('run 2 to wait for approval', (st) => st.parked?.runWorkflowId === second);
    assert.notEqual(newer.parked!.digest, older.parked!.digest);
    assert.match(await refusal(s.approve(older)), /The pending candidate is sha256:/);
    assert.deepEqual(await s.approve(newer), { approved: second });
    const result = await s.result(second);
    assert.equal(result.outcome, 'promoted');
    assert.deepEqual(m.world.snapshot(PUBLIC_TAGS), stableOn(newer.parked!.digest));
    assert.deepEqual(sagaCalls(first), [], 'the superseded run promoted nothing');
    const st = await s.until('the release to be recorded', (x) => x.lastGood?.runWorkflowId === second);
    assert.equal(st.releases.length, 1);
  },
);

test('a hold that arrives before the approval refuses it; after release the approval promotes', TIMEOUT, async () => {
  const s = fresh('hold-first', { policy: 'approval' });
  const run = (await s.trigger()).runWorkflowId!;
  const waiting = await s.until('the candidate to wait', (st) => st.parked?.runWorkflowId === run);
  assert.deepEqual(await s.handle.executeUpdate(holdUpdate, { args: [{ by: 'bob', reason: 'incident' }] }), {
    held: true,
  });
  assert.match(await refusal(s.approve(waiting)), /The stream is held \(incident, by bob\)/);
  const held = await s.state();
  assert.equal(held.parked?.runWorkflowId, run, 'the candidate still waits');
  assert.deepEqual(sagaCalls(run), []);
  assert.deepEqual(m.world.snapshot(PUBLIC_TAGS), PREVIOUS);
  await s.handle.executeUpdate(releaseUpdate, { args: [{ by: 'bob' }] });
  assert.deepEqual(await s.approve(waiting), { approved: run });
  assert.equal((await s.result(run)).outcome, 'promoted');
  assert.deepEqual(m.world.snapshot(PUBLIC_TAGS), stableOn(waiting.parked!.digest));
});

test(
  'a hold that arrives after the approval lets that promotion finish and is still in force afterwards',
  TIMEOUT,
  async () => {
    const s = fresh('hold-after', { policy: 'approval' });
    const run = (await s.trigger()).runWorkflowId!;
    const waiting = await s.until('the candidate to wait', (st) => st.parked?.runWorkflowId === run);
    const promoting = m.world.pause((c) => c.workflowId === run && c.name === 'readTagDigests');
    await s.approve(waiting);
    await promoting.reached;
    await s.handle.executeUpdate(holdUpdate, { args: [{ by: 'bob', reason: 'incident' }] });
    promoting.release();
    assert.equal((await s.result(run)).outcome, 'promoted', 'an approved promotion is not stopped half-way');
    assert.deepEqual(m.world.snapshot(PUBLIC_TAGS), stableOn(waiting.parked!.digest));
    const st = await s.until('the release to be recorded', (x) => x.lastGood?.runWorkflowId === run);
    assert.equal(st.hold?.by, 'bob', 'the hold sent during the promotion still holds the stream');
  },
);

test('a rollback requested during a promotion waits for it, then moves stable back and holds', TIMEOUT, async () => {
  const s = fresh('rollback', { policy: 'auto' });
  const promoted: string[] = [];
  for (const n of [1, 2]) {
    if (n > 1) s.newInputs();
    const run = (await s.trigger()).runWorkflowId!;
    const r = await s.result(run);
    assert.equal(r.outcome, 'promoted');
    promoted.push(r.candidate!.digest);
    await s.until(`run ${n} recorded`, (st) => st.lastGood?.runWorkflowId === run);
  }
  const target = (await s.state()).releases[0]!;
  s.newInputs();
  const run3 = `stream/${s.stream}/run-3`;
  const moving = m.world.pause(
    (c) => c.workflowId === run3 && c.name === 'copyImageByDigest' && c.input.to === PUBLIC_TAGS[0],
  );
  await s.trigger();
  await moving.reached;
  const rollback = s.handle.executeUpdate(rollbackUpdate, {
    args: [{ by: 'alice', to: target.auditTag, reason: 'bad build' }],
  });
  // Give a rollback that does not wait the time to write (it would verify, then copy, in about a second).
  await new Promise((r) => setTimeout(r, 2000));
  moving.release();
  const [rolledBack, run3Result] = await Promise.all([rollback, s.result(run3)]);
  assert.equal(run3Result.outcome, 'promoted');
  assert.equal(rolledBack.digest, target.digest);
  assert.deepEqual(
    m.world.snapshot(PUBLIC_TAGS),
    stableOn(target.digest),
    'stable is where the operator rolled it back to',
  );
  // One writer: every tag write of run 3 comes before the rollback's first step.
  const calls = m.world.calls;
  const rollbackStart = calls.findIndex(
    (c) => c.name === 'verifyImageSignature' && c.workflowId === `stream/${s.stream}`,
  );
  const run3Writes = calls.flatMap((c, i) => (c.workflowId === run3 && c.name === 'copyImageByDigest' ? [i] : []));
  assert.ok(rollbackStart > Math.max(...run3Writes), 'the rollback starts only after the promotion wrote its last tag');
  const st = await s.state();
  assert.equal(st.lastGood?.kind, 'rollback');
  assert.equal(st.lastGood?.digest, target.digest);
  assert.equal(st.hold?.by, 'alice');
  assert.notEqual(promoted[0], promoted[1]);
});

test(
  'a rollback requested while a run builds holds the stream at once: that run does not promote, the rollback applies after it',
  TIMEOUT,
  async () => {
    const s = fresh('rollback-building', { policy: 'auto' });
    for (const n of [1, 2]) {
      if (n > 1) s.newInputs();
      const run = (await s.trigger()).runWorkflowId!;
      assert.equal((await s.result(run)).outcome, 'promoted');
      await s.until(`run ${n} recorded`, (st) => st.lastGood?.runWorkflowId === run);
    }
    const target = (await s.state()).releases[0]!;
    s.newInputs();
    const run3 = `stream/${s.stream}/run-3`;
    const testing = m.world.pause((c) => c.workflowId === run3 && c.name === 'smokeTestCandidate');
    await s.trigger();
    await testing.reached;
    const rollback = s.handle.executeUpdate(rollbackUpdate, {
      args: [{ by: 'alice', to: target.auditTag, reason: 'bad build' }],
    });
    const waiting = await s.until('the stream to be held', (st) => !!st.hold);
    assert.match(waiting.hold!.reason, /^rollback to stable-1-\w+ requested: bad build$/);
    const streamWrites = () => m.world.callsOf(`stream/${s.stream}`).filter((c) => c.name !== 'loadStreamPlan');
    assert.deepEqual(streamWrites(), [], 'the rollback waits for the run in progress');
    testing.release();
    const [rolledBack, run3Result] = await Promise.all([rollback, s.result(run3)]);
    // The hold reaches the run by signal, which can land after the run's last look at it (seen once
    // in CI): then the run promotes, and the rollback still applies after its last write.
    assert.ok(['candidate-only', 'promoted'].includes(run3Result.outcome), run3Result.outcome);
    if (run3Result.outcome === 'candidate-only') assert.deepEqual(sagaCalls(run3), []);
    const calls = m.world.calls;
    const rollbackStart = calls.findIndex((c) => c.workflowId === `stream/${s.stream}` && c.name !== 'loadStreamPlan');
    const run3Writes = calls.flatMap((c, i) => (c.workflowId === run3 && c.name === 'copyImageByDigest' ? [i] : []));
    assert.ok(rollbackStart > Math.max(-1, ...run3Writes), 'the rollback starts only after the run wrote its last tag');
    assert.equal(rolledBack.digest, target.digest);
    assert.deepEqual(m.world.snapshot(PUBLIC_TAGS), stableOn(target.digest));
    const st = await s.state();
    assert.equal(st.lastGood?.kind, 'rollback');
    assert.match(st.hold!.reason, /^rolled back to /);
  },
);

test('a veto during a run does not touch that run; the next run with those inputs ends vetoed', TIMEOUT, async () => {
  const s = fresh('veto', { policy: 'auto' });
  const run1 = `stream/${s.stream}/run-1`;
  const testing = m.world.pause((c) => c.workflowId === run1 && c.name === 'smokeTestCandidate');
  await s.trigger();
  await testing.reached;
  const veto = await s.handle.executeUpdate(vetoUpdate, {
    args: [{ by: 'alice', kind: 'zfs', value: m.world.zfsVersion, reason: 'regression' }],
  });
  assert.equal(veto.value, '2.4.4');
  testing.release();
  const r1 = await s.result(run1);
  assert.equal(r1.outcome, 'promoted', 'documented: a veto does not touch a run already past resolve');
  await s.until('run 1 recorded', (st) => st.lastGood?.runWorkflowId === run1);
  s.newInputs();
  const run2 = (await s.trigger()).runWorkflowId!;
  const r2 = await s.result(run2);
  assert.equal(r2.outcome, 'vetoed');
  assert.match(r2.message, /Vetoed zfs 2\.4\.4 by alice: regression/);
  assert.deepEqual(
    m.world
      .callsOf(run2)
      .map((c) => c.name)
      .sort(),
    [
      'inspectBaseImage',
      'listBaseKernels',
      'loadStreamPlan',
      'resolveImageDigest',
      'resolveRecipeCommit',
      'resolveZfsRelease',
    ],
    'a vetoed run resolves and stops: nothing built, nothing promoted',
  );
  assert.deepEqual(m.world.snapshot(PUBLIC_TAGS), stableOn(r1.candidate!.digest));
  assert.equal((await s.state()).counters.vetoed, 1);
});

/** Starts a stream that continues-as-new early, and a run that waits for approval across it. */
async function parkedAcrossContinueAsNew(what: string) {
  const s = fresh(what, { policy: 'approval' });
  const reply = await s.trigger({ maxHistoryEvents: 12, carriedRunCheckEvery: '1s' });
  const run = reply.runWorkflowId!;
  const firstRun = (await s.handle.describe()).runId;
  const waiting = await s.until('the candidate to wait for approval', (st) => st.parked?.runWorkflowId === run);
  await eventually('the stream to continue as new', async () => (await s.handle.describe()).runId !== firstRun);
  return { s, run, waiting };
}

test(
  'after continue-as-new the stream still knows the waiting run: it can be approved, and run numbers go on',
  TIMEOUT,
  async () => {
    const { s, run, waiting } = await parkedAcrossContinueAsNew('can');
    const st = await s.state();
    assert.deepEqual(st.parked, waiting.parked, 'the pending approval survived continue-as-new');
    assert.deepEqual(await s.approve(st), { approved: run });
    assert.equal((await s.result(run)).outcome, 'promoted');
    await s.until('the release to be recorded', (x) => x.lastGood?.runWorkflowId === run);
    assert.deepEqual(m.world.snapshot(PUBLIC_TAGS), stableOn(waiting.parked!.digest));
    s.newInputs();
    const next = await s.trigger();
    assert.equal(next.runWorkflowId, `stream/${s.stream}/run-2`, 'run numbers continue after continue-as-new');
  },
);

test('after continue-as-new the stream still notices a waiting run that was terminated', TIMEOUT, async () => {
  const { s, run } = await parkedAcrossContinueAsNew('can-lost');
  await m.client.workflow.getHandle(run).terminate('operator ended it');
  const st = await eventually(
    'the stream to drop the terminated run',
    async () => {
      const x = await s.state();
      return !x.parked ? x : undefined;
    },
    5_000,
  );
  assert.equal(st.counters.failed, 1);
});

test(
  'a stream whose run numbers start over does not overwrite an earlier audit tag: that run fails naming it',
  TIMEOUT,
  async () => {
    const s = fresh('audit-collision', { policy: 'auto' });
    // An earlier life of this stream promoted run 1 of the same recipe commit to another digest.
    const auditRef = `${REPOS.stable}:stable-1-${m.world.recipeCommit.slice(0, 7)}`;
    const earlier = digestOf('an earlier life of the stream');
    m.world.tags.set(auditRef, earlier);
    const run = (await s.trigger({ previousRuns: 0 })).runWorkflowId!;
    assert.equal(run, `stream/${s.stream}/run-1`);
    await assert.rejects(s.result(run), (err: Error & { cause?: Error & { type?: string } }) => {
      assert.equal(err.cause?.type, 'PolicyViolation');
      assert.match(
        err.cause!.message,
        new RegExp(`^promote failed: The audit tag ${auditRef} already names ${earlier}`),
      );
      return true;
    });
    assert.deepEqual(m.world.snapshot([...PUBLIC_TAGS, auditRef]), { ...PREVIOUS, [auditRef]: earlier });
    assert.deepEqual(
      sagaCalls(run).map((c) => c.name),
      ['readTagDigests'],
      'nothing copied, signed or tagged',
    );
    const st = await s.until('the stream to record the failure', (x) => x.counters.failed === 1);
    assert.equal(st.lastGood, undefined);
    assert.equal(st.runCounter, 1);
  },
);

// The worker is the trust boundary (docs/trust.md): a trigger names a stream and run options; the
// stream's settings come from the workers' config only.

test(
  'a plan sent with a trigger is ignored: the run builds the base and publishes where the workers are configured',
  TIMEOUT,
  async () => {
    const s = fresh('forged-plan', { policy: 'auto' });
    const forged = streamPlanOf(
      mockConfig({ stream: s.stream, address: m.address, queue: m.queue, policy: 'auto' }),
      s.stream,
    )!;
    forged.baseImage = 'evil.invalid/attacker/base:latest';
    forged.images = { ...forged.images, stable: 'evil.invalid/attacker/stable' };
    forged.recipe = { ...forged.recipe, git: 'https://evil.invalid/recipe.git' };
    const reply = await m.client.workflow.executeUpdateWithStart(triggerUpdate, {
      args: [
        {
          trigger: { source: 'test', by: 'mallory' },
          plan: forged,
          taskQueues: { control: m.queue, build: `${m.queue}-build` },
        },
      ],
      startWorkflowOperation: new WithStartWorkflowOperation(streamWorkflow, {
        workflowId: `stream/${s.stream}`,
        taskQueue: m.queue,
        workflowIdConflictPolicy: 'USE_EXISTING',
        args: [
          { stream: s.stream, taskQueues: { control: m.queue, build: `${m.queue}-build` }, approvers: ['mallory'] },
        ],
      }),
    });
    const run = reply.runWorkflowId!;
    assert.equal((await s.result(run)).outcome, 'promoted');
    const inputs = (name: string) =>
      m.world
        .callsOf(run)
        .filter((c) => c.name === name)
        .map((c) => c.input);
    assert.deepEqual(inputs('inspectBaseImage'), [{ ref: `${REPOS.base}:latest` }]);
    assert.equal(inputs('resolveRecipeCommit')[0].git, 'https://git.invalid/recipe.git');
    assert.ok(
      inputs('copyImageByDigest').every((i: { to: string }) => !i.to.startsWith('evil.invalid/')),
      JSON.stringify(inputs('copyImageByDigest')),
    );
    assert.deepEqual(m.world.snapshot(PUBLIC_TAGS), stableOn(m.world.tags.get(PUBLIC_TAGS[0])!));
    assert.notEqual(m.world.tags.get(PUBLIC_TAGS[0]), PREVIOUS[PUBLIC_TAGS[0]], 'the configured stable moved');
    assert.deepEqual(
      (await s.state()).plan?.promotion.approvers,
      ['alice'],
      'approvers come from the workers, not the starter',
    );
  },
);

test(
  'a trigger for a stream the workers are not configured for is refused, noted, and starts nothing',
  TIMEOUT,
  async () => {
    const s = fresh('unknown', { policy: 'auto' });
    m.world.plans.delete(s.stream);
    const message = await refusal(s.trigger());
    assert.match(message, new RegExp(`Stream "${s.stream}" is not in this worker's config`));
    const closed = await eventually('the stream workflow to end', async () => {
      const d = await s.handle.describe();
      return d.status.name !== 'RUNNING' ? d.status.name : undefined;
    });
    assert.equal(closed, 'COMPLETED');
    const notes = (await s.state()).notes.map((n) => n.text);
    assert.ok(
      notes.some((t) => t.startsWith('refused a trigger from test (tester): Stream ')),
      JSON.stringify(notes),
    );
    const pipelineCalls = m.world.calls.filter((c) => c.workflowId.startsWith(`stream/${s.stream}/`));
    assert.deepEqual(pipelineCalls, [], 'no run was started');
  },
);

test("a change of the workers' config reaches the stream at its next trigger", TIMEOUT, async () => {
  const s = fresh('config-change', { policy: 'auto' });
  const run1 = (await s.trigger()).runWorkflowId!;
  assert.equal((await s.result(run1)).outcome, 'promoted');
  // A deploy: the workers' config now asks for approval; the client's copy still says auto.
  m.world.configure(mockConfig({ stream: s.stream, address: m.address, queue: m.queue, policy: 'approval' }));
  s.newInputs();
  const run2 = (await s.trigger()).runWorkflowId!;
  const st = await s.until('run 2 to wait for approval', (x) => x.parked?.runWorkflowId === run2);
  assert.equal(st.plan?.promotion.policy, 'approval');
  assert.deepEqual(await s.approve(st), { approved: run2 });
  assert.equal((await s.result(run2)).outcome, 'promoted');
});

test(
  'the same commit triggered again after its run failed starts a new run; while that run goes on, the same trigger joins it',
  TIMEOUT,
  async () => {
    const s = fresh('rerun-failed', { policy: 'auto' });
    const config = m.world.configure(mockConfig({ stream: s.stream, address: m.address, queue: m.queue }));
    const again = (attempt: number) =>
      triggerStream(m.client, config, s.stream, {
        trigger: { source: 'github', by: 'octocat', commit: 'e'.repeat(40), requestId: `attempt-${attempt}` },
      });
    m.world.fault = (c) => (c.name === 'composeCandidate' ? 'before' : undefined);
    const first = await again(1);
    await assert.rejects(s.result(first.runWorkflowId!), (e: Error & { cause?: Error }) =>
      /compose failed/.test(e.cause?.message ?? ''),
    );
    await s.until('the stream to hear of the failure', (st) => !st.current);
    m.world.fault = undefined;
    const pause = m.world.pause((c) => c.name === 'composeCandidate');
    const second = await again(2);
    assert.equal(second.status, 'started');
    assert.notEqual(second.runWorkflowId, first.runWorkflowId, 'a new run, not the failed one');
    await pause.reached;
    const joined = await again(3);
    assert.deepEqual([joined.status, joined.runWorkflowId], ['duplicate', second.runWorkflowId]);
    pause.release();
    assert.equal((await s.result(second.runWorkflowId!)).outcome, 'promoted');
  },
);
