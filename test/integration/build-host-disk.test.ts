/**
 * Build hosts don't fill up: the build worker here runs with its own containers storage (a
 * storage.conf of this test, so other tests' images never count), two full runs leave it with
 * the same images, and a host below worker.minFreeSpace fails the build at once, naming the path
 * and the numbers, without building or pushing anything.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import {
  bringUpWorld,
  worldSpec,
  startWorker,
  client,
  startRun,
  registryRequests,
  registryLogMark,
  writes,
  tearDownWorld,
  type TestWorld,
} from '../support/harness.ts';
import type { PipelineResult } from '../../core/pipeline.ts';

const K1 = '6.17.7-300.fc43.x86_64';

let world: TestWorld;
let c: Client;
let scratch: string;
let storageEnv: Record<string, string>;
const savedStorageConf = process.env.CONTAINERS_STORAGE_CONF;

/** podman's storage flags for this test's storage, explicit so that no command here can touch the host's. */
function root(): string[] {
  return ['--root', join(scratch, 'storage'), '--runroot', join(scratch, 'run')];
}

/** Every image (intermediate ones too) and container in this test's containers storage. */
async function storageContents(): Promise<{ images: string[]; containers: string[] }> {
  const env = { ...storageEnv, CONTAINERS_CONF: world.info.containersConf };
  const images = await execa('podman', [...root(), 'images', '--all', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'], {
    env,
  });
  const containers = await execa('podman', [...root(), 'ps', '--all', '--format', '{{.ID}} {{.Image}}'], { env });
  const lines = (s: string) =>
    s
      .split('\n')
      .filter((l) => l.trim() !== '')
      .sort();
  return { images: lines(images.stdout), containers: lines(containers.stdout) };
}

async function runWith(worker: Partial<TestWorld['config']['worker']>, options?: Parameters<typeof startRun>[2]) {
  const config = { ...world.config, worker: { ...world.config.worker, ...worker } };
  const w = await startWorker(config);
  try {
    return await (await startRun(world, c, options)).result().then(
      (r) => r as PipelineResult,
      (err: unknown) => err,
    );
  } finally {
    await w.stop();
  }
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kz-build-host-disk-'));
  await mkdir(join(scratch, 'storage'));
  const conf = join(scratch, 'storage.conf');
  await writeFile(
    conf,
    `[storage]\ndriver = "overlay"\ngraphroot = "${join(scratch, 'storage')}"\nrunroot = "${join(scratch, 'run')}"\n`,
  );
  // podman and buildah read it in the worker's children (runTool passes the worker's environment on).
  storageEnv = { CONTAINERS_STORAGE_CONF: conf };
  // The world builds its images in the host's storage as usual; only the worker gets this one.
  world = await bringUpWorld('build-host-disk', worldSpec({ versions: [[K1]] }), { fresh: true });
  process.env.CONTAINERS_STORAGE_CONF = conf;
  c = await client(world);
});

after(async () => {
  await c?.connection.close();
  await tearDownWorld(world);
  if (scratch) {
    await execa('podman', [...root(), 'rmi', '--all', '--force'], { reject: false });
    await rm(scratch, { recursive: true, force: true });
  }
  if (savedStorageConf === undefined) delete process.env.CONTAINERS_STORAGE_CONF;
  else process.env.CONTAINERS_STORAGE_CONF = savedStorageConf;
});

test('a host below worker.minFreeSpace fails akmods at once naming the storage path and the numbers; nothing is pushed', async () => {
  const mark = await registryLogMark(world);
  const err = await runWith({ minFreeSpace: '5000GB' });
  assert.ok(err instanceof WorkflowFailedError, String(err));
  const messages: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) messages.push(e.message);
  const text = messages.join(' | ');
  assert.match(
    text,
    new RegExp(
      `Not enough free disk space for building akmods for kernel ${K1.replace(/\./g, '\\.')} on this build host: containers storage ${join(scratch, 'storage').replace(/\./g, '\\.')} has [0-9.]+ [KMG]?B free; work dir .* has [0-9.]+ [KMG]?B free; worker\\.minFreeSpace is 5000 GB`,
    ),
  );
  assert.deepEqual(writes(await registryRequests(world, mark)), [], 'nothing was written to the registry');
  assert.deepEqual((await storageContents()).images, [], 'nothing was pulled or built');
});

// With a layer cache (--layers=true) each compose that brought a new akmods image left one dangling
// image behind (the RUN step that installs the RPMs): 4 images after run 1, 6 after run 2.
test('two runs leave the containers storage with the same images: the candidate build is removed after its push', async () => {
  const first = await runWith({});
  assert.equal((first as PipelineResult).outcome, 'promoted', String((first as PipelineResult).message ?? first));
  const after1 = await storageContents();
  const second = await runWith({}, { rebuildAkmods: true });
  assert.equal((second as PipelineResult).outcome, 'promoted', String((second as PipelineResult).message ?? second));
  const after2 = await storageContents();
  assert.deepEqual(after2, after1, 'the second run left the storage as the first did');
  assert.ok(!after2.images.some((l) => l.includes('kinoite-zfs-candidate-build')), after2.images.join('\n'));
  assert.ok(!after2.images.some((l) => l.includes('kinoite-zfs-akmods-build')), after2.images.join('\n'));
});
