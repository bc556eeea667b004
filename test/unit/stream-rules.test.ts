/**
 * Pure stream rules and the stream state machine: gate (unchanged, vetoed), approval checks,
 * trigger coalescing and de-duplication, rollback targets, bounded lists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  approvalProblem,
  approvalVerdict,
  bounded,
  durationMs,
  findRelease,
  heldProblem,
  lockTriggerKey,
  pendingApproval,
  promotionGate,
  promotionRelease,
  rollbackRelease,
  rollbackRequestedHold,
  runGate,
  stableWriter,
  taskQueueProblem,
  triggerKey,
  unvetoProblem,
  vetoFor,
  vetoRequestProblem,
  watchedRuns,
  type PendingApproval,
  type Release,
  type Veto,
} from '../../core/stream-rules.ts';
import { StreamState, LIMITS } from '../../workflows/stream-state.ts';

const inputs = {
  kernels: ['6.17.7-300.fc43.x86_64', '6.18.5-200.fc43.x86_64'],
  zfs: { line: '2.4', tag: 'zfs-2.4.4', version: '2.4.4' },
};
const veto = (kind: Veto['kind'], value: string): Veto => ({ kind, value, by: 'alice', reason: 'bad', at: 't' });
const pending: PendingApproval = {
  runWorkflowId: 'stream/s/run-1',
  digest: `sha256:${'a'.repeat(64)}`,
  inputsHash: 'h1',
  kernels: [],
  zfsVersion: '2.4.4',
  since: 't',
  deadline: 't2',
};
const release = (n: number, digest = `sha256:${String(n).repeat(64)}`): Release => ({
  kind: 'promotion',
  digest,
  inputsHash: `h${n}`,
  kernels: [],
  zfsVersion: '2.4.4',
  auditTag: `stable-${n}-abcdef0`,
  akmodsDigest: 'sha256:x',
  akmodsTag: 'main-43',
  stableTags: ['latest'],
  at: 't',
  approvedBy: 'a',
  runWorkflowId: `r${n}`,
});

test('runGate says unchanged when the inputs hash equals the last good release', () => {
  assert.deepEqual(runGate({ lastGoodInputsHash: 'h', vetoes: [], held: false }, inputs, 'h').go, false);
  assert.equal(
    (runGate({ lastGoodInputsHash: 'h', vetoes: [], held: false }, inputs, 'h') as { outcome: string }).outcome,
    'unchanged',
  );
  assert.deepEqual(runGate({ lastGoodInputsHash: 'other', vetoes: [], held: false }, inputs, 'h'), { go: true });
});

test('runGate says vetoed for a vetoed inputs hash, kernel or ZFS release, and names the veto', () => {
  for (const v of [veto('inputs', 'h'), veto('kernel', '6.18.5-200.fc43.x86_64'), veto('zfs', '2.4.4')]) {
    const g = runGate({ vetoes: [v], held: false }, inputs, 'h');
    assert.equal(g.go, false);
    assert.match(
      (g as { message: string }).message,
      new RegExp(`Vetoed ${v.kind} ${v.value.replace(/\./g, '\\.')} by alice`),
    );
  }
  assert.equal(
    vetoFor([veto('kernel', '6.18.5'), veto('zfs', '2.4.3')], inputs, 'h'),
    undefined,
    'partial kernel names and other releases do not match',
  );
});

test('approvalProblem refuses no pending candidate, an unlisted approver, a wrong digest or hash, and a reject without reason', () => {
  const req = { by: 'alice', digest: pending.digest, inputsHash: 'h1' };
  assert.equal(approvalProblem({ pending, approvers: ['alice'], request: req }), undefined);
  assert.match(approvalProblem({ approvers: ['alice'], request: req })!, /No candidate is waiting/);
  assert.match(approvalProblem({ pending, approvers: ['bob'], request: req })!, /"alice" may not approve/);
  assert.match(
    approvalProblem({ pending, approvers: ['alice'], request: { ...req, digest: 'sha256:b' } })!,
    /not sha256:b/,
  );
  assert.match(approvalProblem({ pending, approvers: ['alice'], request: { ...req, inputsHash: 'h2' } })!, /not h2/);
  assert.match(approvalProblem({ pending, approvers: ['alice'], request: req, reject: true })!, /needs a reason/);
  assert.equal(
    approvalProblem({ pending, approvers: ['alice'], request: { ...req, reason: 'no' }, reject: true }),
    undefined,
  );
});

test('triggerKey identifies a trigger by source and commit, else by request id', () => {
  assert.equal(triggerKey({ source: 'github', commit: 'abc' }), 'github@abc');
  assert.equal(triggerKey({ source: 'cli', requestId: 'r1' }), 'request:r1');
  assert.equal(triggerKey({ source: 'schedule' }), undefined);
  assert.equal(
    triggerKey({ source: 'github', commit: 'abc' }, { options: { rebuildAkmods: true, promote: false } }),
    'github@abc+rebuild,no-promote',
    'other options make another trigger',
  );
  assert.notEqual(
    triggerKey({ source: 'github', commit: 'abc' }, { lockHash: 'x' }),
    triggerKey({ source: 'github', commit: 'abc' }),
  );
});

test('a stream state coalesces triggers during a run into one follow-up run, newest plan winning', () => {
  const s = StreamState.empty('s');
  const plan = (tag: string) => ({ baseImage: `r/base:${tag}` }) as never;
  assert.equal(s.trigger({ trigger: { source: 'cli' }, plan: plan('a') }, 't', 'r1').status, 'started');
  const first = s.takeNext()!;
  assert.equal(first.runWorkflowId, 'stream/s/run-1');
  assert.equal(s.trigger({ trigger: { source: 'cli' }, plan: plan('b') }, 't', 'r2').status, 'queued');
  assert.equal(s.trigger({ trigger: { source: 'cli' }, plan: plan('c') }, 't', 'r3').status, 'coalesced');
  assert.equal(s.trigger({ trigger: { source: 'cli' }, plan: plan('d') }, 't', 'r4').status, 'coalesced');
  assert.equal(s.takeNext(), undefined, 'one run at a time');
  s.runFinished({ runWorkflowId: first.runWorkflowId, outcome: 'failed', message: 'x' }, 't');
  const next = s.takeNext()!;
  assert.ok(
    s.data.triggers.every((t) => t.requestId === 'r1' || !t.runWorkflowId),
    'no trigger names a run before it exists',
  );
  s.runStarted(next.runWorkflowId, next.requestIds);
  assert.equal(next.runWorkflowId, 'stream/s/run-2');
  assert.deepEqual(
    s.data.triggers.filter((t) => t.runWorkflowId === 'stream/s/run-2').map((t) => t.requestId),
    ['r2', 'r3', 'r4'],
  );
  assert.equal((s.data.plan as { baseImage: string }).baseImage, 'r/base:d');
  assert.equal(s.takeNext(), undefined);
  assert.equal(s.trigger({ trigger: { source: 'cli' } }, 't', 'r5').status, 'queued');
});

test('triggers that arrive together while the stream is free all join the one run about to start', () => {
  const s = StreamState.empty('s');
  assert.equal(s.trigger({ trigger: { source: 'cli' }, plan: {} as never }, 't', 'r1').status, 'started');
  assert.equal(s.trigger({ trigger: { source: 'cli' } }, 't', 'r2').status, 'coalesced');
  const run = s.takeNext()!;
  s.runStarted(run.runWorkflowId, run.requestIds);
  assert.deepEqual(
    s.data.triggers.map((t) => t.runWorkflowId),
    [run.runWorkflowId, run.runWorkflowId],
  );
});

test('a stream state answers the same source and commit with the first run', () => {
  const s = StreamState.empty('s', 41);
  s.trigger({ trigger: { source: 'github', commit: 'c1' }, plan: {} as never }, 't', 'r1');
  const run = s.takeNext()!;
  s.runStarted(run.runWorkflowId, run.requestIds);
  assert.equal(run.runWorkflowId, 'stream/s/run-42', 'run numbers continue from earlier runs');
  const dup = s.trigger({ trigger: { source: 'github', commit: 'c1' } }, 't', 'r2');
  assert.deepEqual(dup, { status: 'duplicate', runWorkflowId: run.runWorkflowId, requestId: 'r1' });
  assert.equal(s.data.next, undefined);
});

test('a trigger whose run failed starts a new run (with rerunFailed); while its run goes on, or after it succeeded, it joins that run', () => {
  const s = StreamState.empty('s');
  const gh = { source: 'github', commit: 'c1' };
  s.trigger({ trigger: gh, plan: {} as never }, 't', 'r1', { rerunFailed: true });
  const first = s.takeNext()!;
  s.runStarted(first.runWorkflowId, first.requestIds);
  assert.equal(s.trigger({ trigger: gh }, 't', 'r2', { rerunFailed: true }).status, 'duplicate', 'joins while it runs');
  s.runFinished({ runWorkflowId: first.runWorkflowId, outcome: 'failed', message: 'compose failed' }, 't');
  assert.equal(
    s.trigger({ trigger: gh }, 't', 'r3', { rerunFailed: false }).status,
    'duplicate',
    'before the patch: answered with the failed run',
  );
  const rerun = s.trigger({ trigger: gh }, 't', 'r4', { rerunFailed: true });
  assert.deepEqual(rerun, { status: 'started', requestId: 'r4' });
  const second = s.takeNext()!;
  s.runStarted(second.runWorkflowId, second.requestIds);
  assert.notEqual(second.runWorkflowId, first.runWorkflowId);
  const again = s.trigger({ trigger: gh }, 't', 'r5', { rerunFailed: true });
  assert.deepEqual(again, { status: 'duplicate', runWorkflowId: second.runWorkflowId, requestId: 'r4' });
  s.runFinished({ runWorkflowId: second.runWorkflowId, outcome: 'promoted', message: 'ok' }, 't');
  assert.equal(
    s.trigger({ trigger: gh }, 't', 'r6', { rerunFailed: true }).runWorkflowId,
    second.runWorkflowId,
    'a succeeded run is not built again',
  );
});

test('a parked candidate frees the stream, and a newer one supersedes it', () => {
  const s = StreamState.empty('s');
  s.trigger({ trigger: { source: 'cli' }, plan: {} as never }, 't', 'r1');
  const a = s.takeNext()!;
  assert.equal(s.candidateReady({ ...pending, runWorkflowId: a.runWorkflowId }), undefined);
  assert.equal(s.data.current, undefined);
  s.trigger({ trigger: { source: 'cli' } }, 't', 'r2');
  const b = s.takeNext()!;
  assert.equal(s.candidateReady({ ...pending, runWorkflowId: b.runWorkflowId }), a.runWorkflowId);
  assert.equal(s.data.counters.superseded, undefined, 'counted when the superseded run reports its end');
  s.runFinished({ runWorkflowId: a.runWorkflowId, outcome: 'superseded', message: 'superseded' }, 't');
  assert.equal(s.data.counters.superseded, 1, 'once');
});

test('a promotion becomes the last good release and leaves a hold set during it; a rollback target must be a known, different release', () => {
  const s = StreamState.empty('s');
  s.setHold({ by: 'a', reason: 'r', at: 't' });
  s.recordRelease(release(1));
  s.recordRelease(release(2));
  assert.deepEqual(s.data.hold, { by: 'a', reason: 'r', at: 't' });
  assert.equal(s.data.lastGood?.auditTag, 'stable-2-abcdef0');
  assert.equal((s.rollbackTarget('stable-1-abcdef0') as Release).inputsHash, 'h1');
  assert.equal((s.rollbackTarget(release(1).digest) as Release).inputsHash, 'h1');
  assert.match(s.rollbackTarget('stable-2-abcdef0') as string, /already is/);
  assert.match(s.rollbackTarget('nope') as string, /No release with audit tag or digest "nope"/);
});

test('stableWriter names the promoting run, else the building run; a waiting candidate writes nothing', () => {
  const run = (n: number) => ({ runWorkflowId: `r${n}` });
  assert.equal(stableWriter({}), undefined);
  assert.equal(stableWriter({ parked: run(1) }), undefined, 'a candidate waiting for approval does not write');
  assert.equal(stableWriter({ current: run(2), parked: run(1) }), 'r2');
  assert.equal(stableWriter({ current: run(2), promoting: run(1) }), 'r1', 'the approved run writes first');
});

test('watchedRuns lists the building, waiting and promoting runs once each', () => {
  const run = (n: number) => ({ runWorkflowId: `r${n}` });
  assert.deepEqual(watchedRuns({}), []);
  assert.deepEqual(watchedRuns({ current: run(3), parked: run(2), promoting: run(1) }), ['r3', 'r2', 'r1']);
  assert.deepEqual(watchedRuns({ current: run(1), parked: run(1) }), ['r1']);
});

test('an approved candidate is promoting until its run ends; a rejected one is simply no longer waiting', () => {
  const s = StreamState.empty('s');
  s.trigger({ trigger: { source: 'cli' }, plan: {} as never }, 't', 'r1');
  const a = s.takeNext()!;
  s.candidateReady({ ...pending, runWorkflowId: a.runWorkflowId });
  assert.equal(s.decided('approved', 'alice'), a.runWorkflowId);
  assert.deepEqual(s.data.promoting, { runWorkflowId: a.runWorkflowId, by: 'alice' });
  assert.equal(s.data.parked, undefined);
  assert.ok(s.watches(a.runWorkflowId), 'the stream still follows the approved run');
  assert.equal(stableWriter(s.data), a.runWorkflowId, 'a rollback waits for it');
  s.runFinished({ runWorkflowId: a.runWorkflowId, outcome: 'promoted', message: 'ok' }, 't');
  assert.equal(s.data.promoting, undefined);
  assert.ok(!s.watches(a.runWorkflowId));

  s.trigger({ trigger: { source: 'cli' } }, 't', 'r2');
  const b = s.takeNext()!;
  s.candidateReady({ ...pending, runWorkflowId: b.runWorkflowId });
  assert.equal(s.decided('rejected', 'alice'), b.runWorkflowId);
  assert.equal(s.data.promoting, undefined);
  assert.equal(stableWriter(s.data), undefined);
});

test('lists stay bounded', () => {
  let l: number[] = [];
  for (let i = 0; i < 100; i++) l = bounded(l, i, 5);
  assert.deepEqual(l, [95, 96, 97, 98, 99]);
  const s = StreamState.empty('s');
  for (let i = 0; i < 200; i++) s.note('t', `n${i}`);
  assert.equal(s.data.notes.length, LIMITS.notes);
  assert.equal(
    findRelease([release(1), release(2, release(1).digest)], release(1).digest)?.inputsHash,
    'h2',
    'newest release wins',
  );
});

test('durationMs parses the config durations', () => {
  assert.equal(durationMs('3s'), 3000);
  assert.equal(durationMs('72h'), 259_200_000);
  assert.equal(durationMs('7d'), 604_800_000);
  assert.throws(() => durationMs('3 hours'));
});

test('promotionGate promotes only main runs that asked, under auto or approval policy, when not held', () => {
  const base = {
    mode: 'main' as const,
    promoteRequested: true,
    policy: 'auto' as const,
    held: false,
    throughStream: true,
    candidate: 'r/c@sha256:1 (t)',
    akmodsTag: 'main-43',
  };
  assert.deepEqual(promotionGate(base), { promote: true, needsApproval: false });
  assert.deepEqual(promotionGate({ ...base, policy: 'approval' }), { promote: true, needsApproval: true });
  for (const [change, why] of [
    [
      { mode: 'branch' },
      /branch build: published only r\/c@sha256:1 \(t\) and the akmods alias main-43; stable untouched$/,
    ],
    [{ mode: 'pr' }, /PR validation: .*not signed/],
    [{ promoteRequested: false }, /promotion not requested/],
    [{ policy: 'never' }, /policy is never/],
    [{ held: true }, /the stream is held/],
    [{ policy: 'approval', throughStream: false }, /start runs through the stream/],
  ] as const) {
    const g = promotionGate({ ...base, ...(change as object) });
    assert.equal(g.promote, false, JSON.stringify(change));
    assert.match((g as { why: string }).why, why);
  }
});

test('a veto can be lifted by kind and value, and only an existing one', () => {
  const s = StreamState.empty('s');
  s.veto(veto('kernel', 'k1'));
  s.veto(veto('zfs', '2.4.4'));
  assert.equal(s.unveto('kernel', 'nope'), undefined);
  assert.equal(s.unveto('kernel', 'k1')?.value, 'k1');
  assert.deepEqual(
    s.data.vetoes.map((v) => v.kind),
    ['zfs'],
  );
});

test('promotionRelease records the promoted digest, its inputs, the tags it moved, who approved it and when', () => {
  const r = promotionRelease({
    digest: `sha256:${'c'.repeat(64)}`,
    inputsHash: 'h7',
    inputs,
    tags: { audit: 'stable-7-ccccccc', stable: ['latest', '43'] },
    akmods: { digest: `sha256:${'a'.repeat(64)}`, tag: 'main-43' },
    at: '2026-11-25T00:00:00.000Z',
    approvedBy: 'policy:auto',
    runWorkflowId: 'stream/s/run-7',
  });
  assert.deepEqual(r, {
    kind: 'promotion',
    digest: `sha256:${'c'.repeat(64)}`,
    inputsHash: 'h7',
    kernels: inputs.kernels,
    zfsVersion: '2.4.4',
    auditTag: 'stable-7-ccccccc',
    akmodsDigest: `sha256:${'a'.repeat(64)}`,
    akmodsTag: 'main-43',
    stableTags: ['latest', '43'],
    at: '2026-11-25T00:00:00.000Z',
    approvedBy: 'policy:auto',
    runWorkflowId: 'stream/s/run-7',
  });
  // The key order is what the stream's state and a run's result have always shown.
  assert.deepEqual(Object.keys(r), Object.keys(release(1)));
});

test('rollbackRelease records the target again as a rollback by whom and when, and holds the stream', () => {
  const target = release(3);
  const { release: r, hold } = rollbackRelease(target, { by: 'bob', reason: 'boots badly', at: 'T' });
  assert.deepEqual(r, { ...target, kind: 'rollback', at: 'T', approvedBy: 'bob' });
  assert.deepEqual(hold, { by: 'bob', reason: 'rolled back to stable-3-abcdef0: boots badly', at: 'T' });
  assert.equal(rollbackRelease(target, { by: 'bob', at: 'T' }).hold.reason, 'rolled back to stable-3-abcdef0');
});

test('rollbackRequestedHold holds the stream from the request on, naming the target, who and why', () => {
  assert.deepEqual(rollbackRequestedHold(release(1), { by: 'alice', reason: 'bad build', at: 't' }), {
    by: 'alice',
    reason: 'rollback to stable-1-abcdef0 requested: bad build',
    at: 't',
  });
  assert.equal(
    rollbackRequestedHold(release(1), { by: 'alice', at: 't' }).reason,
    'rollback to stable-1-abcdef0 requested',
  );
});

test('pendingApproval waits from now until now plus the timeout', () => {
  const p = pendingApproval(
    { runWorkflowId: 'r', digest: 'd', inputsHash: 'h', kernels: ['k'], zfsVersion: '2.4.4' },
    { nowMs: Date.UTC(2026, 10, 25), timeout: '72h' },
  );
  assert.equal(p.since, '2026-11-25T00:00:00.000Z');
  assert.equal(p.deadline, '2026-11-28T00:00:00.000Z');
  assert.deepEqual(Object.keys(p), Object.keys(pending));
});

test('heldProblem refuses approvals while held and names the way out', () => {
  assert.equal(heldProblem('s', undefined), undefined);
  assert.equal(
    heldProblem('s', { by: 'bob', reason: 'freeze' }),
    'The stream is held (freeze, by bob); release it first: kinoite-zfs release --stream s.',
  );
});

test('taskQueueProblem refuses a trigger from a config with other task queues', () => {
  const ours = { control: 'c', build: 'b' };
  assert.equal(taskQueueProblem('s', ours, undefined), undefined);
  assert.equal(taskQueueProblem('s', ours, { control: 'c', build: 'b' }), undefined);
  assert.match(
    taskQueueProblem('s', ours, { control: 'c', build: 'b2' })!,
    /task queues c\/b, but this trigger's config uses c\/b2/,
  );
  assert.match(taskQueueProblem('s', ours, { control: 'x', build: 'b' })!, /share the stream name "s"/);
});

test('vetoRequestProblem wants a known kind, a value, a reason and who asked; unvetoProblem an existing veto', () => {
  assert.equal(vetoRequestProblem({ kind: 'kernel', value: 'k', reason: 'r', by: 'b' }), undefined);
  assert.match(
    vetoRequestProblem({ kind: 'digest', value: 'k', reason: 'r', by: 'b' })!,
    /inputs, kernel or zfs, not "digest"/,
  );
  for (const missing of ['value', 'reason', 'by'])
    assert.equal(
      vetoRequestProblem({ kind: 'zfs', value: 'v', reason: 'r', by: 'b', [missing]: ' ' }),
      'a veto needs a value, a reason and who asked',
    );
  const vetoes = [veto('kernel', 'k1'), veto('zfs', '2.4.4')];
  assert.equal(unvetoProblem(vetoes, { kind: 'kernel', value: 'k1' }), undefined);
  assert.equal(
    unvetoProblem(vetoes, { kind: 'kernel', value: 'k2' }),
    'No kernel veto for "k2"; vetoes: kernel k1, zfs 2.4.4.',
  );
  assert.equal(unvetoProblem([], { kind: 'zfs', value: 'x' }), 'No zfs veto for "x"; vetoes: none.');
});

test('lockTriggerKey: two replays of locks with the same base, recipe commit and ZFS release are one trigger', () => {
  const base = `r/b@sha256:${'a'.repeat(64)}`;
  const commit = '0123456789abcdef0123456789abcdef01234567';
  assert.equal(
    lockTriggerKey({ base_image: base, recipe_commit: commit, zfs_release: '2.4.4' }),
    `${base}|${commit}|2.4.4`,
  );
  assert.equal(lockTriggerKey({ base_image: base, akmods_upstream_ref: commit }), `${base}|${commit}|`);
  assert.equal(lockTriggerKey({ base_image: base }), `${base}||`);
});

test('approvalVerdict promotes an approved candidate, and otherwise says why stable did not move', () => {
  const t = { timeout: '72h', held: false };
  assert.deepEqual(approvalVerdict({ kind: 'approved', by: 'alice' }, t), { promote: true, approvedBy: 'alice' });
  assert.deepEqual(approvalVerdict({ kind: 'rejected', by: 'bob', reason: 'no' }, t), {
    promote: false,
    outcome: 'rejected',
    message: 'Rejected by bob: no. Stable did not move.',
  });
  assert.deepEqual(approvalVerdict({ kind: 'superseded', by: 'stream/s/run-9' }, t), {
    promote: false,
    outcome: 'superseded',
    message: 'Superseded by a newer candidate. Stable did not move.',
  });
  assert.deepEqual(approvalVerdict({ kind: 'expired' }, t), {
    promote: false,
    outcome: 'expired',
    message: 'Nobody approved within 72h. Stable did not move.',
  });
  assert.deepEqual(approvalVerdict({ kind: 'approved', by: 'alice' }, { ...t, held: true }), {
    promote: false,
    outcome: 'candidate-only',
    message: 'Approved by alice, but the stream was held meanwhile; stable did not move.',
  });
});
