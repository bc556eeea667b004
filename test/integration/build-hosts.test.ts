/**
 * Many build hosts: a control worker and two build workers, each its own process as the systemd
 * units in deploy/ run them. The build worker that took an akmods build is SIGKILLed in the middle
 * of it; its heartbeats stop, Temporal hands the build to the other worker, and the run promotes.
 * Then the stream is pinned to a build queue of its own (buildQueue): only the build worker started
 * with `--build-queue` for it runs its builds, compose and booted check.
 *
 * Lane: side
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
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
  repoRoot,
  tearDownWorld,
  type TestWorld,
} from '../support/harness.ts';
import { progressQuery } from '../../workflows/shared.ts';
import { BUILD_QUEUE_ACTIVITIES } from '../../activities/index.ts';
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

test('a stream pinned to its own build queue has its build work done only by the build host serving that queue', async () => {
  const queue = `kinoite-zfs-build-pinned-${process.pid}`;
  // The stream's settings come from the workers' config file, which the control worker reads again at a trigger.
  const raw = parse(await readFile(world.configFile, 'utf8')) as { streams: Record<string, Record<string, unknown>> };
  raw.streams[world.stream]!.buildQueue = queue;
  await writeFile(world.configFile, stringify(raw));
  const pinned = await spawnWorker(world.configFile, log('build-pinned'), {
    command: [
      join(repoRoot, 'bin', 'kinoite-zfs.js'),
      'worker',
      '--config',
      world.configFile,
      '--queues',
      'build',
      '--build-queue',
      queue,
    ],
  });
  workers.push(pinned);
  assert.match(await readFile(log('build-pinned'), 'utf8'), new RegExp(`serving build \\(${queue}\\)`));

  const handle = await startRun(world, c, { rebuildAkmods: true });
  const r = (await handle.result()) as PipelineResult;
  assert.equal(r.outcome, 'promoted', r.message);
  const events = (await handle.fetchHistory()).events ?? [];
  const buildTypes = new Set<string>(BUILD_QUEUE_ACTIVITIES);
  const scheduled = events.filter((e) =>
    buildTypes.has(e.activityTaskScheduledEventAttributes?.activityType?.name ?? ''),
  );
  assert.deepEqual(
    [...new Set(scheduled.map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name))].sort(),
    ['buildKernelAkmods', 'composeCandidate'],
    'the run built and composed (the world has no booted check)',
  );
  for (const e of scheduled)
    assert.equal(e.activityTaskScheduledEventAttributes!.taskQueue?.name, queue, 'scheduled on the pinned queue');
  const ids = new Set(scheduled.map((e) => String(e.eventId)));
  const started = events.filter(
    (e) =>
      e.activityTaskStartedEventAttributes && ids.has(String(e.activityTaskStartedEventAttributes.scheduledEventId)),
  );
  assert.equal(started.length, scheduled.length);
  for (const e of started)
    assert.equal(
      await workerOf(e.activityTaskStartedEventAttributes!.identity ?? ''),
      pinned,
      'run by the pinned build host',
    );
  // The control queue's work stays on the control worker.
  const controlStarted = events.filter(
    (e) =>
      e.activityTaskStartedEventAttributes && !ids.has(String(e.activityTaskStartedEventAttributes.scheduledEventId)),
  );
  assert.ok(controlStarted.length > 0);
  for (const e of controlStarted)
    assert.equal(await workerOf(e.activityTaskStartedEventAttributes!.identity ?? ''), workers[0]);
});
