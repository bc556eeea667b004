/**
 * Reliability: the worker killed (SIGKILL) mid-build and mid-promotion, the registry stopped for
 * 20 s during compose, and stopped during promotion for more failed attempts than the old fixed
 * retry policy allowed. Each run must still end with the right stable state and exactly one
 * promotion, checked in the registry.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Client, WorkflowHandle } from '@temporalio/client';
import {
  bringUpWorld,
  worldSpec,
  client,
  startRun,
  spawnWorker,
  killWorker,
  digestOf,
  tagsOf,
  inspect,
  cosignVerifies,
  maxAttempt,
  tearDownWorld,
  type TestWorld,
} from '../support/harness.ts';
import { ensureRegistry, stopRegistry } from '../../world/services.ts';
import { progressQuery } from '../../workflows/shared.ts';
import type { PipelineResult, RunProgress } from '../../core/pipeline.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const K2 = '6.18.5-200.fc43.x86_64';

let world: TestWorld;
let c: Client;
let worker: ChildProcess | undefined;
const log = () => join(world.dir, 'worker', 'resilience-worker.log');

async function until(
  handle: WorkflowHandle,
  what: string,
  check: (p: RunProgress) => boolean,
  timeoutMs = 600_000,
): Promise<RunProgress> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const p = (await handle.query(progressQuery).catch(() => undefined)) as RunProgress | undefined;
    if (p && check(p)) return p;
    if (p?.outcome) throw new Error(`run ended (${p.outcome}) before ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Highest attempt number the history recorded for an activity type. */
const attempts = (handle: WorkflowHandle, activityType: string) =>
  maxAttempt(handle, (a) => a.activityType === activityType);

type PendingActivity = NonNullable<Awaited<ReturnType<WorkflowHandle['describe']>>['raw']['pendingActivities']>[number];

/**
 * Stops the world's registry until one of the run's pending activities matches `failed` (and at
 * least `minMs` passed), or `maxMs` ran out; starts it again in any case. Returns whether one matched.
 */
async function registryDownUntil(
  handle: WorkflowHandle,
  failed: (a: PendingActivity) => boolean,
  { minMs = 0, maxMs }: { minMs?: number; maxMs: number },
): Promise<boolean> {
  await stopRegistry({ dir: world.dir });
  const t0 = Date.now();
  let matched = false;
  try {
    while ((!matched || Date.now() - t0 < minMs) && Date.now() - t0 < maxMs) {
      const { raw } = await handle.describe();
      matched ||= !!raw.pendingActivities?.some(failed);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await ensureRegistry({ dir: world.dir });
  }
  return matched;
}

async function signatureCount(repo: string, digest: string): Promise<number> {
  const sig = await inspect(`${repo}:${digest.replace(':', '-')}.sig`);
  return sig?.Layers.length ?? 0;
}

async function checkPromoted(r: PipelineResult, auditTagsBefore: string[]): Promise<void> {
  const s = world.info.stream;
  assert.equal(r.outcome, 'promoted', r.message);
  assert.equal(await digestOf(`${s.stable}:latest`), r.candidate!.digest);
  assert.equal(await digestOf(`${s.akmodsStable}:main-43`), r.akmods!.digest);
  const audit = (await tagsOf(s.stable)).filter((t) => t.startsWith('stable-'));
  assert.deepEqual(
    audit.filter((t) => !auditTagsBefore.includes(t)),
    [r.promotion!.auditTag],
    'exactly one new audit tag: one promotion',
  );
  assert.equal(await signatureCount(s.stable, r.candidate!.digest), 1, 'signed exactly once');
  assert.ok(await cosignVerifies(`${s.stable}@${r.candidate!.digest}`, world.info.signing.publicKeyFile));
}

before(async () => {
  world = await bringUpWorld('resilience', worldSpec({ versions: [[K1]] }), { fresh: true });
  c = await client(world);
});

after(async () => {
  if (worker) killWorker(worker);
  await c?.connection.close();
  await tearDownWorld(world);
});

test('a worker killed during the akmods build is replaced and the run completes with one promotion', async () => {
  worker = await spawnWorker(world.configFile, log());
  const handle = await startRun(world, c, { rebuildAkmods: true });
  await until(handle, 'the akmods build', (p) => p.akmods.some((a) => a.status === 'building'));
  killWorker(worker);
  worker = await spawnWorker(world.configFile, log());
  const r = (await handle.result()) as PipelineResult;
  await checkPromoted(r, []);
  assert.deepEqual(r.akmods!.built, [K1]);
  assert.ok((await attempts(handle, 'buildKernelAkmods')) >= 2, 'the build ran again after the kill');
});

test('a worker killed during promotion is replaced and the run completes with exactly one promotion', async () => {
  world = await bringUpWorld('resilience', worldSpec({ versions: [[K1], [K1, K2]] }));
  const before = (await tagsOf(world.info.stream.stable)).filter((t) => t.startsWith('stable-'));
  const handle = await startRun(world, c);
  await until(handle, 'the promotion', (p) => p.stage === 'promote');
  killWorker(worker!);
  worker = await spawnWorker(world.configFile, log());
  const r = (await handle.result()) as PipelineResult;
  await checkPromoted(r, before);
  assert.deepEqual(r.inputs!.kernels, [K1, K2]);
});

test('the registry stopped during compose until compose has failed for it: the run completes after retries', async () => {
  // A new recipe commit makes compose do real work, so the outage lands inside it.
  world = await bringUpWorld(
    'resilience',
    worldSpec({
      versions: [[K1], [K1, K2]],
      append: { 'os/Containerfile': 'RUN echo outage-test > /usr/share/kinoite-zfs-outage-test\n' },
    }),
  );
  const before = (await tagsOf(world.info.stream.stable)).filter((t) => t.startsWith('stable-'));
  const handle = await startRun(world, c);
  await until(handle, 'compose', (p) => p.stage === 'compose');
  // Down until compose has failed for it at least once (a fixed outage can end before a slow build
  // reaches its push, on a busy machine), and at least 20 s.
  const retried = await registryDownUntil(
    handle,
    (a) => a.activityType?.name === 'composeCandidate' && (a.attempt ?? 0) >= 2,
    { minMs: 20_000, maxMs: 300_000 },
  );
  assert.ok(retried, 'compose failed while the registry was down and was scheduled again');
  const r = (await handle.result()) as PipelineResult;
  await checkPromoted(r, before);
  assert.ok((await attempts(handle, 'composeCandidate')) >= 2, 'compose completed on a later attempt');
});

test('a registry outage during promotion that outlasts the old retry policy (8 attempts) is ridden out within the stream retry budget', async () => {
  // Waits of 1 s keep the wall time small: the outage spans more failed attempts than the old policy's 8.
  world = await bringUpWorld(
    'resilience',
    worldSpec({
      versions: [[K1], [K1, K2]],
      append: { 'os/Containerfile': 'RUN echo budget-test > /usr/share/kinoite-zfs-budget-test\n' },
      retry: { budget: '5m', maxBackoff: '1s' },
    }),
  );
  const before = (await tagsOf(world.info.stream.stable)).filter((t) => t.startsWith('stable-'));
  worker ??= await spawnWorker(world.configFile, log());
  const handle = await startRun(world, c);
  await until(handle, 'the promotion', (p) => p.stage === 'promote', 600_000);
  const failing = await registryDownUntil(handle, (a) => (a.attempt ?? 0) > 8, { maxMs: 120_000 });
  assert.ok(failing, 'a promotion activity failed more than 8 times while the registry was down, and the run went on');
  const r = (await handle.result()) as PipelineResult;
  await checkPromoted(r, before);
});
