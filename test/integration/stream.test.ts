/**
 * The stream workflow on the hermetic world and a real dev server: coalescing, de-duplication,
 * human approval (Update and Web-UI-style Signal), reject, supersede, expiry, skip-if-unchanged,
 * rollback with veto, continue-as-new and the Schedule. Stable state is read from the registry.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import {
  bringUpWorld,
  worldSpec,
  startWorker,
  client,
  waitStreamState,
  digestOf,
  cosignVerifies,
  registryRequests,
  registryLogMark,
  writes,
  tearDownWorld,
  type TestWorld,
} from '../support/harness.ts';
import { triggerStream, streamHandle, streamState } from '../../client/stream-client.ts';
import { streamWorkflow, streamStateQuery } from '../../workflows/stream.ts';
import {
  approveSignal,
  approveUpdate,
  rejectUpdate,
  rollbackUpdate,
  vetoUpdate,
  unvetoUpdate,
  holdUpdate,
  releaseUpdate,
  triggerUpdate,
} from '../../workflows/shared.ts';
import { applySchedule, scheduleId } from '../../client/commands/schedule.ts';
import { streamPlan } from '../../client/temporal.ts';
import type { StreamStateData } from '../../workflows/stream-state.ts';
import type { PipelineResult } from '../../core/pipeline.ts';
import type { Config } from '../../core/config.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const K2 = '6.18.5-200.fc43.x86_64';
const versions: string[][] = [[K1]];

let world: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> };

const spec = () => worldSpec({ versions, promotion: 'approval' });
const approvalSpec = () => ({
  ...spec(),
  stream: { zfsLine: '2.4', owner: 'kinoite', promotion: 'approval', approvers: ['alice'] },
});

/** Adds a base version (same kernels or more) so the next run has new inputs. */
async function newBaseVersion(kernels: string[] = versions.at(-1)!): Promise<void> {
  versions.push(kernels);
  world = await bringUpWorld('stream', approvalSpec());
}

async function trigger(opts: { config?: Config; commit?: string; source?: string } = {}) {
  return triggerStream(c, opts.config ?? world.config, world.stream, {
    trigger: {
      source: opts.source ?? 'test',
      requestId: randomUUID(),
      ...(opts.commit ? { commit: opts.commit } : {}),
    },
  });
}

const waitState = (what: string, check: (s: StreamStateData) => boolean, timeoutMs?: number) =>
  waitStreamState(c, world.stream, what, check, timeoutMs);

async function runResult(runWorkflowId: string): Promise<PipelineResult> {
  return (await c.workflow.getHandle(runWorkflowId).result()) as PipelineResult;
}

async function stable() {
  const s = world.info.stream;
  return {
    latest: await digestOf(`${s.stable}:latest`),
    fedora: await digestOf(`${s.stable}:43`),
    akmods: await digestOf(`${s.akmodsStable}:main-43`),
  };
}

/**
 * Deploys changed settings of the world's stream: rewrites the workers' config file, which the
 * worker reads again at the stream's next trigger (a trigger itself carries no settings). Returns
 * the undo.
 */
async function deploy(change: (stream: Record<string, any>) => void): Promise<() => Promise<void>> {
  const original = await readFile(world.configFile, 'utf8');
  const raw = parse(original) as { streams: Record<string, Record<string, any>> };
  change(raw.streams[world.stream]!);
  await writeFile(world.configFile, stringify(raw));
  return () => writeFile(world.configFile, original);
}

/** Deploys promotion policy `never` (build and test only). */
const deployNever = () => deploy((s) => (s.promotion = { ...s.promotion, policy: 'never' }));

async function refused(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(
    p,
    (err: unknown) => err instanceof WorkflowUpdateFailedError && message.test(String((err.cause as Error)?.message)),
  );
}

before(async () => {
  world = await bringUpWorld('stream', approvalSpec(), { fresh: true });
  c = await client(world);
  await c.workflow
    .getHandle(`stream/${world.stream}`)
    .terminate('fresh test world')
    .catch(() => undefined);
  worker = await startWorker(world);
});

after(async () => {
  await c?.workflow
    .getHandle(`stream/${world.stream}`)
    .terminate('test file done')
    .catch(() => undefined);
  await worker?.stop();
  await c?.connection.close();
  await tearDownWorld(world);
});

test('approval: a wrong digest, a wrong inputs hash or an unlisted approver is refused and nothing moves; a Signal sent as the Web UI sends it approves', async () => {
  const reply = await trigger();
  assert.equal(reply.status, 'started');
  const s = await waitState('a pending approval', (x) => !!x.parked);
  const pending = s.parked!;
  const h = streamHandle(c, world.stream);
  await refused(
    h.executeUpdate(approveUpdate, {
      args: [{ by: 'alice', digest: `sha256:${'0'.repeat(64)}`, inputsHash: pending.inputsHash }],
    }),
    /The pending candidate is sha256:/,
  );
  await refused(
    h.executeUpdate(approveUpdate, { args: [{ by: 'alice', digest: pending.digest, inputsHash: 'f'.repeat(64) }] }),
    /inputs hash is/,
  );
  await refused(
    h.executeUpdate(approveUpdate, {
      args: [{ by: 'mallory', digest: pending.digest, inputsHash: pending.inputsHash }],
    }),
    /"mallory" may not approve/,
  );
  await h.signal(approveSignal, { by: 'mallory', digest: pending.digest, inputsHash: pending.inputsHash });
  const after = await waitState('the invalid signal noted', (x) =>
    x.notes.some((n) => /ignored approve signal from "mallory"/.test(n.text)),
  );
  assert.equal(after.parked?.digest, pending.digest, 'an invalid signal changes nothing');
  assert.deepEqual(await stable(), { latest: undefined, fedora: undefined, akmods: undefined }, 'nothing moved');
  await h.signal(approveSignal, { by: 'alice', digest: pending.digest, inputsHash: pending.inputsHash });
  const r = await runResult(reply.runWorkflowId!);
  assert.equal(r.outcome, 'promoted', r.message);
  assert.equal((await stable()).latest, pending.digest);
  assert.equal(r.release?.approvedBy, 'alice');
});

test('an unchanged second run ends as unchanged in seconds with zero registry writes', async () => {
  const mark = await registryLogMark(world);
  const t0 = Date.now();
  const reply = await trigger();
  const r = await runResult(reply.runWorkflowId!);
  assert.equal(r.outcome, 'unchanged', r.message);
  assert.deepEqual(writes(await registryRequests(world, mark)), [], 'the registry saw no write');
  assert.ok(Date.now() - t0 < 30_000);
});

test('reject leaves stable unchanged; a newer candidate supersedes a pending one; a correct Update promotes', async () => {
  const before = await stable();
  await newBaseVersion([K1, K2]);
  const first = await trigger();
  const p1 = (await waitState('candidate 1 pending', (x) => x.parked?.runWorkflowId === first.runWorkflowId)).parked!;
  const h = streamHandle(c, world.stream);
  await refused(
    h.executeUpdate(rejectUpdate, { args: [{ by: 'alice', digest: p1.digest, inputsHash: p1.inputsHash }] }),
    /needs a reason/,
  );
  await h.executeUpdate(rejectUpdate, {
    args: [{ by: 'alice', digest: p1.digest, inputsHash: p1.inputsHash, reason: 'kernel 6.18 not soaked yet' }],
  });
  assert.equal((await runResult(first.runWorkflowId!)).outcome, 'rejected');
  assert.deepEqual(await stable(), before, 'reject moved nothing');

  const second = await trigger();
  await waitState('candidate 2 pending', (x) => x.parked?.runWorkflowId === second.runWorkflowId);
  await newBaseVersion();
  const third = await trigger();
  const p3 = (await waitState('candidate 3 pending', (x) => x.parked?.runWorkflowId === third.runWorkflowId)).parked!;
  assert.equal((await runResult(second.runWorkflowId!)).outcome, 'superseded');
  assert.deepEqual(await stable(), before, 'supersede moved nothing');
  await h.executeUpdate(approveUpdate, { args: [{ by: 'alice', digest: p3.digest, inputsHash: p3.inputsHash }] });
  assert.equal((await runResult(third.runWorkflowId!)).outcome, 'promoted');
  assert.equal((await stable()).latest, p3.digest);
});

test('rollback restores the previous digest on every stable tag, its signature verifies, and a vetoed release is not promoted again', async () => {
  await waitState('idle', (x) => !x.current && !x.next && !x.parked);
  const h = streamHandle(c, world.stream);
  const state = (await streamState(c, world.stream))!;
  const releases = state.releases.filter((r) => r.kind === 'promotion');
  assert.ok(releases.length >= 2, 'two promotions happened earlier');
  const [older, newer] = [releases.at(-2)!, releases.at(-1)!];
  await refused(
    h.executeUpdate(rollbackUpdate, { args: [{ by: 'alice', to: 'stable-999-nothing' }] }),
    /No release with audit tag or digest/,
  );
  const rb = await h.executeUpdate(rollbackUpdate, {
    args: [{ by: 'alice', to: older.auditTag, reason: 'users report pool import errors' }],
  });
  assert.equal(rb.kind, 'rollback');
  const st = await stable();
  assert.equal(st.latest, older.digest);
  assert.equal(st.fedora, older.digest);
  assert.equal(st.akmods, older.akmodsDigest);
  assert.ok(await cosignVerifies(`${world.info.stream.stable}@${older.digest}`, world.info.signing.publicKeyFile));
  assert.ok((await streamState(c, world.stream))!.hold, 'the stream holds after a rollback');

  await h.executeUpdate(vetoUpdate, {
    args: [{ by: 'alice', kind: 'inputs', value: newer.inputsHash, reason: 'bad release' }],
  });
  await h.executeUpdate(releaseUpdate, { args: [{ by: 'alice' }] });
  const reply = await trigger({ source: 'schedule' });
  const r = await runResult(reply.runWorkflowId!);
  assert.equal(r.inputsHash, newer.inputsHash, 'the world still resolves to the vetoed inputs');
  assert.equal(r.outcome, 'vetoed', r.message);
  assert.equal((await stable()).latest, older.digest, 'stable stays rolled back');
  await refused(
    h.executeUpdate(unvetoUpdate, { args: [{ by: 'alice', kind: 'inputs', value: 'not-vetoed' }] }),
    /No inputs veto for "not-vetoed"/,
  );
  await h.executeUpdate(unvetoUpdate, { args: [{ by: 'alice', kind: 'inputs', value: newer.inputsHash }] });
  assert.ok(
    !(await streamState(c, world.stream))!.vetoes.some((v) => v.value === newer.inputsHash),
    'the veto is lifted',
  );
});

test('an approval that nobody gives in time expires and stable does not move', async () => {
  const before = await stable();
  await newBaseVersion();
  const undo = await deploy((s) => (s.promotion = { ...s.promotion, timeout: '3s' }));
  const reply = await trigger();
  const r = await runResult(reply.runWorkflowId!);
  await undo();
  assert.equal(r.outcome, 'expired', r.message);
  assert.deepEqual(await stable(), before);
});

test('a hold stops a candidate that waits for approval: approve is refused until the stream is released', async () => {
  await newBaseVersion();
  const reply = await trigger();
  const p = (await waitState('a pending candidate', (x) => x.parked?.runWorkflowId === reply.runWorkflowId)).parked!;
  const h = streamHandle(c, world.stream);
  const before = await stable();
  await h.executeUpdate(holdUpdate, { args: [{ by: 'alice', reason: 'release freeze' }] });
  await refused(
    h.executeUpdate(approveUpdate, { args: [{ by: 'alice', digest: p.digest, inputsHash: p.inputsHash }] }),
    /The stream is held \(release freeze/,
  );
  assert.deepEqual(await stable(), before);
  await h.executeUpdate(releaseUpdate, { args: [{ by: 'alice' }] });
  await h.executeUpdate(approveUpdate, { args: [{ by: 'alice', digest: p.digest, inputsHash: p.inputsHash }] });
  assert.equal((await runResult(reply.runWorkflowId!)).outcome, 'promoted');
  assert.equal((await stable()).latest, p.digest);
});

test('three triggers during a running run produce exactly one follow-up run; the same source and commit twice yields one run', async () => {
  const s0 = (await streamState(c, world.stream))!;
  // Build-and-test only, so the runs end on their own instead of waiting for approval.
  const undo = await deployNever();
  const config = world.config;
  const first = await trigger({ config });
  assert.equal(first.status, 'started');
  const replies = [first, ...(await Promise.all([trigger({ config }), trigger({ config }), trigger({ config })]))];
  assert.deepEqual(
    replies
      .slice(1)
      .map((r) => r.status)
      .sort(),
    ['coalesced', 'coalesced', 'queued'],
  );
  const s = await waitState('all four triggers to have runs', (x) =>
    replies.every((r) => x.triggers.find((t) => t.requestId === r.requestId)?.runWorkflowId),
  );
  const runs = new Set(replies.map((r) => s.triggers.find((t) => t.requestId === r.requestId)!.runWorkflowId));
  assert.equal(runs.size, 2, 'one run plus one follow-up');
  assert.equal(s.runCounter, s0.runCounter + 2);
  for (const id of runs) await runResult(id!).catch(() => undefined);
  await waitState('idle', (x) => !x.current && !x.next);

  const a = await trigger({ source: 'github', commit: 'a'.repeat(40), config });
  const b = await trigger({ source: 'github', commit: 'a'.repeat(40), config });
  assert.equal(b.status, 'duplicate');
  assert.equal(b.runWorkflowId, a.runWorkflowId);
  await runResult(a.runWorkflowId!).catch(() => undefined);
  await undo();
});

test('continue-as-new keeps the whole state', async () => {
  const id = `stream/${world.stream}-can`;
  const plan = streamPlan(world.config, world.stream);
  await c.workflow
    .getHandle(id)
    .terminate('leftover from an earlier test run')
    .catch(() => undefined);
  const handle = await c.workflow.start(streamWorkflow, {
    workflowId: id,
    taskQueue: world.config.temporal.taskQueues.control,
    args: [{ stream: world.stream, taskQueues: world.config.temporal.taskQueues, maxHistoryEvents: 10 }],
  });
  await handle.executeUpdate(vetoUpdate, {
    args: [{ by: 'alice', kind: 'kernel', value: '9.9.9-1.fc99.x86_64', reason: 'test' }],
  });
  await handle.executeUpdate(holdUpdate, { args: [{ by: 'alice', reason: 'keep it' }] });
  const reply = await handle.executeUpdate(triggerUpdate, {
    args: [{ trigger: { source: 'test', requestId: randomUUID() }, plan }],
  });
  await runResult(reply.runWorkflowId!);
  const firstRun = handle.firstExecutionRunId;
  const deadline = Date.now() + 60_000;
  while ((await handle.describe()).runId === firstRun) {
    if (Date.now() > deadline) throw new Error('the stream did not continue as new');
    await new Promise((r) => setTimeout(r, 300));
  }
  const s = await handle.query(streamStateQuery);
  assert.equal(s.runCounter, 1);
  assert.equal(s.vetoes[0]?.value, '9.9.9-1.fc99.x86_64');
  assert.equal(s.hold?.reason, 'keep it');
  assert.equal(s.triggers.length, 1);
  assert.ok(s.notes.some((n) => n.text.includes(reply.runWorkflowId!)));
  await handle.terminate('test done');
});

test('schedule apply twice leaves one schedule per stream, and schedule trigger starts a run through the stream workflow', async () => {
  const s0 = (await streamState(c, world.stream))!;
  const undo = await deployNever();
  const config = world.config;
  assert.equal(
    await applySchedule(c, config, world.stream).then(() => applySchedule(c, config, world.stream)),
    'updated',
  );
  const ids: string[] = [];
  for await (const s of c.schedule.list()) if (s.scheduleId === scheduleId(world.stream)) ids.push(s.scheduleId);
  assert.deepEqual(ids, [scheduleId(world.stream)]);
  await c.schedule.getHandle(scheduleId(world.stream)).trigger();
  const s = await waitState('a scheduled trigger', (x) =>
    x.triggers.some((t) => t.source === 'schedule' && t.at > (s0.triggers.at(-1)?.at ?? '')),
  );
  const t = s.triggers.filter((x) => x.source === 'schedule').at(-1)!;
  const run =
    t.runWorkflowId ??
    (
      await waitState('its run', (x) => !!x.triggers.find((y) => y.requestId === t.requestId)?.runWorkflowId)
    ).triggers.find((y) => y.requestId === t.requestId)!.runWorkflowId!;
  assert.match(run, new RegExp(`^stream/${world.stream}/run-\\d+$`));
  await runResult(run).catch(() => undefined);
  await c.schedule.getHandle(scheduleId(world.stream)).delete();
  await undo();
});

test("a client whose config names another base and other repositories cannot redirect the workers: the run builds the workers' base, writes only their repositories and waits for their approval policy", async () => {
  const before = await stable();
  await newBaseVersion();
  const s = world.config.streams[world.stream]!;
  const reg = world.info.registry.host;
  const forged: Config = {
    ...world.config,
    streams: {
      [world.stream]: {
        ...s,
        baseImage: `${reg}/evil/base:latest`,
        images: {
          ...s.images,
          candidate: `${reg}/evil/candidate`,
          stable: `${reg}/evil/stable`,
          akmodsCandidate: `${reg}/evil/akmods-candidate`,
          akmodsStable: `${reg}/evil/akmods`,
        },
        promotion: { ...s.promotion, policy: 'auto' },
      },
    },
  };
  const mark = await registryLogMark(world);
  const reply = await trigger({ config: forged });
  const parked = await waitState(
    'the candidate to wait for the approval the workers ask for',
    (x) => x.parked?.runWorkflowId === reply.runWorkflowId,
  );
  const written = writes(await registryRequests(world, mark)).map((r) => r.uri);
  assert.ok(written.length > 0, 'the run pushed its candidate');
  assert.deepEqual(
    written.filter((u) => u.includes('/evil/')),
    [],
    'nothing was written where the client config pointed',
  );
  const candidatePath = new URL(`http://${world.info.stream.candidate}`).pathname;
  assert.ok(
    written.some((u) => u.startsWith(`/v2${candidatePath}/`)),
    written.join('\n'),
  );
  await streamHandle(c, world.stream).executeUpdate(rejectUpdate, {
    args: [
      {
        by: 'alice',
        digest: parked.parked!.digest,
        inputsHash: parked.parked!.inputsHash,
        reason: 'trust test done',
      },
    ],
  });
  assert.equal((await runResult(reply.runWorkflowId!)).outcome, 'rejected');
  assert.deepEqual(await stable(), before);
});
