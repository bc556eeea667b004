/**
 * Many build hosts: a control worker and two build workers, each its own process as the systemd
 * units in deploy/ run them. The build worker that took an akmods build is SIGKILLed in the middle
 * of it; its heartbeats stop, Temporal hands the build to the other worker, and the run promotes.
 *
 * Lane: side
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
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
  tearDownWorld,
  type TestWorld,
} from '../support/harness.ts';
import { progressQuery } from '../../workflows/shared.ts';
import type { PipelineResult, RunProgress } from '../../core/pipeline.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const K2 = '6.18.5-200.fc43.x86_64';

let world: TestWorld;
let c: Client;
const workers: ChildProcess[] = [];
const log = (name: string) => join(world.dir, 'worker', `${name}.log`);

/** The process group (= the spawned worker) a worker identity `pid@host` belongs to. */
async function workerOf(identity: string): Promise<ChildProcess | undefined> {
  const pid = Number(identity.split('@')[0]);
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command's closing parenthesis: state, ppid, pgrp, …
  const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  return workers.find((w) => w.pid === pid || w.pid === pgid);
}

async function pendingBuild(handle: WorkflowHandle, timeoutMs = 300_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const p = (await handle.query(progressQuery).catch(() => undefined)) as RunProgress | undefined;
    if (p?.outcome) throw new Error(`run ended (${p.outcome}: ${p.message}) before an akmods build was running`);
    const { raw } = await handle.describe();
    const build = raw.pendingActivities?.find(
      (a) => a.activityType?.name === 'buildKernelAkmods' && a.lastWorkerIdentity && a.lastStartedTime,
    );
    if (build) return build;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('no akmods build started');
}

before(async () => {
  world = await bringUpWorld('build-hosts', worldSpec({ versions: [[K1, K2]] }), { fresh: true });
  c = await client(world);
  workers.push(await spawnWorker(world.configFile, log('control'), { queues: ['control'] }));
  workers.push(await spawnWorker(world.configFile, log('build-1'), { queues: ['build'] }));
  workers.push(await spawnWorker(world.configFile, log('build-2'), { queues: ['build'] }));
});

after(async () => {
  for (const w of workers) killWorker(w);
  await c?.connection.close();
  await tearDownWorld(world);
});

test('a build host killed in the middle of an akmods build: the other build host finishes it and the run promotes', async () => {
  const handle = await startRun(world, c, { rebuildAkmods: true });
  const build = await pendingBuild(handle);
  const victim = await workerOf(build.lastWorkerIdentity!);
  assert.ok(victim, `the build runs on one of this test's build workers (${build.lastWorkerIdentity})`);
  assert.notEqual(victim, workers[0], 'builds never run on the control-only worker');
  killWorker(victim!);

  const r = (await handle.result()) as PipelineResult;
  assert.equal(r.outcome, 'promoted', r.message);
  assert.equal(await digestOf(`${world.info.stream.stable}:latest`), r.candidate!.digest);

  // The killed build was started again, and completed, by the surviving build worker.
  const survivor = workers.find((w) => w !== victim && w !== workers[0])!;
  const history = await handle.fetchHistory();
  const builds = new Set(
    (history.events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'buildKernelAkmods')
      .map((e) => String(e.eventId)),
  );
  // History records the started event of an activity's last attempt only.
  const started = (history.events ?? []).filter(
    (e) =>
      e.activityTaskStartedEventAttributes && builds.has(String(e.activityTaskStartedEventAttributes.scheduledEventId)),
  );
  const retried = started.filter((e) => (e.activityTaskStartedEventAttributes!.attempt ?? 1) > 1);
  assert.ok(
    retried.length >= 1,
    `the killed build was attempted again (attempts: ${started.map((e) => e.activityTaskStartedEventAttributes!.attempt).join(', ')})`,
  );
  for (const e of retried) {
    const w = await workerOf(e.activityTaskStartedEventAttributes!.identity ?? '');
    assert.equal(
      w,
      survivor,
      `attempt ${e.activityTaskStartedEventAttributes!.attempt} ran on the surviving build worker`,
    );
  }
});
