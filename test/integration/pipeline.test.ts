/**
 * The pipeline run on the hermetic world with a real Temporal dev server, registry, podman,
 * buildah and cosign. Everything is checked through the registry (skopeo, cosign, the registry's
 * own log), not through the project's code.
 */
import { test, before, after } from 'node:test';
import { readFile, writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import assert from 'node:assert/strict';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import {
  bringUpWorld,
  worldSpec,
  startWorker,
  client,
  startRun,
  inspect,
  digestOf,
  tagsOf,
  cosignVerifies,
  registryRequests,
  registryLogMark,
  writes,
  tearDownWorld,
  type TestWorld,
} from '../support/harness.ts';
import type { PipelineResult } from '../../core/pipeline.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const K2 = '6.18.5-200.fc43.x86_64';

let world: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> };

async function runToEnd(options?: Parameters<typeof startRun>[2]): Promise<PipelineResult> {
  const handle = await startRun(world, c, options);
  return (await handle.result()) as PipelineResult;
}

async function stableState(w: TestWorld) {
  const s = w.info.stream;
  return {
    latest: await digestOf(`${s.stable}:latest`),
    fedora: await digestOf(`${s.stable}:43`),
    akmods: await digestOf(`${s.akmodsStable}:main-43`),
  };
}

before(async () => {
  world = await bringUpWorld('pipeline', worldSpec({ versions: [[K1]] }), { fresh: true });
  c = await client(world);
  worker = await startWorker(world);
});

after(async () => {
  await worker?.stop();
  await c?.connection.close();
  await tearDownWorld(world);
});

test('a one-kernel world reaches a signed stable image whose digest is the smoke-tested candidate digest', async () => {
  const r = await runToEnd();
  assert.equal(r.outcome, 'promoted', r.message);
  const s = world.info.stream;
  const candidate = r.candidate!.digest;
  assert.equal(
    await digestOf(`${s.candidate}:${r.candidate!.tag}`),
    candidate,
    'the candidate tag holds the tested digest',
  );
  assert.equal(await digestOf(`${s.stable}:latest`), candidate, 'latest is the tested candidate digest');
  assert.equal(await digestOf(`${s.stable}:43`), candidate, 'the Fedora tag is the tested candidate digest');
  assert.ok(
    await cosignVerifies(`${s.stable}@${candidate}`, world.info.signing.publicKeyFile),
    'cosign verify passes with the world key',
  );
  assert.ok(
    await cosignVerifies(`${s.stable}@${candidate}`, world.info.signing.publicKeyFile, true),
    'cosign verify-attestation passes',
  );
  assert.equal(
    await digestOf(`${s.stable}:${r.promotion!.auditTag}`),
    candidate,
    'the audit tag points at the promoted digest',
  );
  const akmods = await inspect(`${s.akmodsStable}:main-43`);
  assert.equal(akmods?.Digest, r.akmods!.digest, 'stable akmods tag points at the merged cache');
  assert.equal(akmods?.Labels['io.github.danathar.kinoite-zfs.akmods.kernel-releases'], K1);
  const prov = r.provenance as {
    inputs: { kernel_releases: string[]; zfs_release: string };
    inputs_hash: string;
    stable: { image: { digest: string } };
  };
  assert.deepEqual(prov.inputs.kernel_releases, [K1]);
  assert.equal(prov.inputs.zfs_release, '2.4.4');
  assert.equal(prov.stable.image.digest, candidate);
  assert.match(prov.inputs_hash, /^[0-9a-f]{64}$/);
});

test('a second run reuses the akmods cache: no kernel is built and nothing is pushed to a per-kernel akmods tag', async () => {
  const mark = await registryLogMark(world);
  const r = await runToEnd();
  assert.equal(r.outcome, 'promoted', r.message);
  assert.deepEqual(r.akmods!.built, []);
  assert.deepEqual(r.akmods!.reused, [K1]);
  const perKernelPushes = writes(await registryRequests(world, mark)).filter((q) =>
    /akmods-candidate\/manifests\/main-43-/.test(q.uri),
  );
  assert.deepEqual(perKernelPushes, [], 'no per-kernel akmods image was pushed');
  assert.equal(await digestOf(`${world.info.stream.stable}:latest`), r.candidate!.digest);
});

test('a base that gains a kernel makes the cache stale: only the new kernel is built and the new cache covers both', async () => {
  world = await bringUpWorld('pipeline', worldSpec({ versions: [[K1], [K1, K2]] }));
  const r = await runToEnd();
  assert.equal(r.outcome, 'promoted', r.message);
  assert.deepEqual(r.akmods!.built, [K2]);
  assert.deepEqual(r.akmods!.reused, [K1]);
  const cache = await inspect(`${world.info.stream.akmodsCandidate}:main-43`);
  assert.equal(cache?.Labels['io.github.danathar.kinoite-zfs.akmods.kernel-releases'], `${K1} ${K2}`);
  assert.equal(await digestOf(`${world.info.stream.akmodsStable}:main-43`), cache?.Digest);
  assert.deepEqual(r.inputs!.kernels, [K1, K2]);
});

test('a recipe that leaves one kernel without zfs.ko fails the smoke test naming that kernel, and stable keeps its digests', async () => {
  const before = await stableState(world);
  world = await bringUpWorld(
    'pipeline',
    worldSpec({
      versions: [[K1], [K1, K2]],
      append: { 'os/Containerfile': `RUN rm -f /usr/lib/modules/${K2}/extra/zfs/zfs.ko\n` },
    }),
  );
  const handle = await startRun(world, c);
  const err = await handle.result().then(
    () => assert.fail('the run should fail'),
    (e) => e,
  );
  assert.ok(err instanceof WorkflowFailedError);
  assert.match(
    String(err.cause?.message),
    new RegExp(`smoke-test failed: .*missing a ZFS module payload for kernels ${K2.replace(/\./g, '\\.')}`),
  );
  assert.doesNotMatch(
    String(err.cause?.message),
    new RegExp(K1.replace(/\./g, '\\.')),
    'only the kernel without a module is named',
  );
  assert.deepEqual(
    await stableState(world),
    before,
    'stable tags and the stable akmods tag keep their previous digests',
  );
});

/**
 * Runs `fn` with the world's stream settings changed in the workers' config file (a deploy: the
 * worker reads it at the run's start; a run's starter sends no settings), then puts the file back.
 */
async function deployed<T>(change: (stream: Record<string, unknown>) => void, fn: () => Promise<T>): Promise<T> {
  const original = await readFile(world.configFile, 'utf8');
  const raw = parse(original) as { streams: Record<string, Record<string, unknown>> };
  change(raw.streams[world.stream]!);
  await writeFile(world.configFile, stringify(raw));
  try {
    return await fn();
  } finally {
    await writeFile(world.configFile, original);
  }
}

test('a missing base image fails with a clear error and writes nothing to the registry', async () => {
  const mark = await registryLogMark(world);
  const err = await deployed(
    (s) => (s.baseImage = `${world.info.registry.host}/ublue-os/no-such-image:latest`),
    async () =>
      (await startRun(world, c)).result().then(
        () => assert.fail('the run should fail'),
        (e) => e,
      ),
  );
  assert.match(
    String(err.cause?.message),
    /resolve failed: Failed to resolve base image digest for .*no-such-image:latest/,
  );
  assert.equal(err.cause?.type, 'ImageNotFound');
  assert.deepEqual(writes(await registryRequests(world, mark)), []);
});

test('an image reference with shell metacharacters is refused before any tool runs, and nothing moves', async () => {
  const mark = await registryLogMark(world);
  const err = await deployed(
    (s) => (s.baseImage = `${world.info.registry.host}/x/y:latest;touch /tmp/kz-pwned`),
    async () =>
      (await startRun(world, c)).result().then(
        () => assert.fail('the run should fail'),
        (e) => e,
      ),
  );
  assert.equal(err.cause?.type, 'InvalidInput');
  assert.match(String(err.cause?.message), /baseImage/);
  assert.deepEqual(await registryRequests(world, mark), [], 'the registry was not even asked');
  assert.deepEqual(await tagsOf(`${world.info.registry.host}/x/y`), []);
});
