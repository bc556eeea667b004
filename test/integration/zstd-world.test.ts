/**
 * A world whose base is pushed as zstd:chunked (as Universal Blue images now are) runs end to end:
 * resolve lists its kernels from the zstd layers (a dropped kernel's whiteout honoured), akmods,
 * compose on top of it, smoke test, promote. Kernel listing reads about the bytes it reads from
 * the same base pushed as gzip, per the registry's own log. Also: every zstd format through
 * the real registry with the layer reader (registry-http.test.ts covers gzip there).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import {
  bringUpWorld,
  worldSpec,
  startWorker,
  client,
  startRun,
  digestOf,
  cosignVerifies,
  tearDownWorld,
  type TestWorld,
} from '../support/harness.ts';
import { observed } from '../../scripts/bench-world.ts';
import { RegistryClient } from '../../activities/registry-http.ts';
import { Host } from '../../activities/host.ts';
import { resolveActivities } from '../../activities/resolve.ts';
import { scanLayers } from '../../activities/layer-reader.ts';
import { digestRef } from '../../core/refs.ts';
import type { PipelineResult } from '../../core/pipeline.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const K2 = '6.18.5-200.fc43.x86_64';
const K3 = '6.18.9-200.fc43.x86_64';
/** The second version drops K1 (a whiteout in a zstd layer) and adds K3. */
const VERSIONS = [
  [K1, K2],
  [K2, K3],
];
const CHUNKED_ANNOTATION = 'io.containers.zstd-chunked.manifest-position';

let gzipWorld: TestWorld;
let zstdWorld: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> } | undefined;
let scratch: string;

/** The raw manifest of a reference per skopeo (not the project's client). */
async function rawManifest(
  ref: string,
): Promise<{ layers: { mediaType: string; digest: string; annotations?: Record<string, string> }[] }> {
  const { stdout } = await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  return JSON.parse(stdout);
}

function spec(compression?: string) {
  const s = worldSpec({ versions: VERSIONS });
  return compression ? { ...s, base: { ...s.base, compression } } : s;
}

/** listBaseKernels of the world's latest base on an empty memo, with the registry bytes it cost. */
async function listKernels(world: TestWorld) {
  const config = world.config;
  const digest = world.info.base.versions.at(-1)!.digest;
  const pinned = digestRef(`${world.info.registry.host}/${world.info.base.repository}`, digest);
  const workDir = await mkdtemp(join(scratch, 'work-'));
  const acts = resolveActivities({
    registry: new RegistryClient({ insecureHosts: config.registries.insecure }),
    host: new Host({ ...config, worker: { ...config.worker, workDir } }),
  });
  const cost = await observed(
    world,
    () =>
      new MockActivityEnvironment().run(acts.listBaseKernels, { pinned, digest }) as Promise<{
        kernels: string[];
        layersRead: number;
        memoised: boolean;
      }>,
  );
  assert.equal(cost.value.memoised, false);
  return cost;
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kz-zstd-world-'));
  gzipWorld = await bringUpWorld('zstd-gzip', spec(), { fresh: true });
  zstdWorld = await bringUpWorld('zstd-chunked', spec('zstd:chunked'), { fresh: true });
  c = await client(zstdWorld);
});

after(async () => {
  await worker?.stop();
  await c?.connection.close();
  await tearDownWorld(gzipWorld);
  await tearDownWorld(zstdWorld);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test('base.compression: zstd:chunked pushes every base layer as zstd:chunked, gzip as gzip', async () => {
  const seen = new Set<string>();
  for (const v of zstdWorld.info.base.versions) {
    const m = await rawManifest(`${zstdWorld.info.registry.host}/${zstdWorld.info.base.repository}@${v.digest}`);
    for (const l of m.layers) {
      assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd', l.digest);
      // buildah lists a layer reused from the previous version without its annotations.
      if (!seen.has(l.digest))
        assert.ok(l.annotations?.[CHUNKED_ANNOTATION], `${l.digest} has the zstd:chunked table of contents annotation`);
      seen.add(l.digest);
    }
  }
  const g = gzipWorld.info.base.versions.at(-1)!;
  const m = await rawManifest(`${gzipWorld.info.registry.host}/${gzipWorld.info.base.repository}@${g.digest}`);
  assert.ok(m.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip'));
});

test('the layer reader sees the same members in images pushed by buildah as gzip, zstd and zstd:chunked', async () => {
  const host = zstdWorld.info.registry.host;
  const env = { CONTAINERS_CONF: zstdWorld.info.containersConf };
  const registry = new RegistryClient({ insecureHosts: [host] });
  const listings: Record<string, string[]> = {};
  for (const format of ['gzip', 'zstd', 'zstd:chunked']) {
    // Same names, new random content per format: buildah 1.28 would otherwise reuse the blobs of
    // an earlier push in another compression (see checkCompression in world/images.ts).
    const dir = await mkdtemp(join(scratch, 'ctx-'));
    await mkdir(join(dir, 'usr/lib/modules', K3, 'extra/zfs'), { recursive: true });
    await writeFile(join(dir, 'usr/lib/modules', K3, 'extra/zfs/zfs.ko'), randomBytes(300 * 1024));
    await writeFile(join(dir, 'usr/lib/modules', K3, 'modules.dep'), `extra/zfs/zfs.ko:\n`.repeat(5000));
    await symlink('usr/lib', join(dir, 'lib'));
    const ctr = (await execa('buildah', ['from', '--quiet', 'scratch'], { env })).stdout.trim();
    await execa('buildah', ['copy', '--quiet', ctr, dir, '/'], { env });
    const local = `localhost/kz-zstd-reader-${format.replace(':', '-')}:${Date.now()}`;
    await execa('buildah', ['commit', '--quiet', '--rm', ctr, local], { env });
    const ref = `${host}/kz/reader-${format.replace(':', '-')}:latest`;
    try {
      await execa(
        'buildah',
        ['push', '--quiet', '--tls-verify=false', '--compression-format', format, local, `docker://${ref}`],
        { env },
      );
    } finally {
      await execa('buildah', ['rmi', local], { env, reject: false });
    }
    const layers = (await rawManifest(ref)).layers;
    const want = `application/vnd.oci.image.layer.v1.tar+${format === 'gzip' ? 'gzip' : 'zstd'}`;
    assert.deepEqual(
      layers.map((l) => [l.mediaType, !!l.annotations?.[CHUNKED_ANNOTATION]]),
      [[want, format === 'zstd:chunked']],
      format,
    );
    const names: string[] = [];
    await scanLayers({ client: registry, ref, onEntry: (i, e) => names.push(`${i} ${e.type} ${e.name}`) });
    listings[format] = names;
  }
  assert.ok(
    listings.gzip!.some((n) => n.endsWith(`usr/lib/modules/${K3}/extra/zfs/zfs.ko`)),
    listings.gzip!.join(),
  );
  assert.deepEqual(listings.zstd, listings.gzip);
  assert.deepEqual(listings['zstd:chunked'], listings.gzip);
});

test('kernel listing on a zstd:chunked base finds the same kernels and reads within 10 % of the gzip bytes', async () => {
  const gzip = await listKernels(gzipWorld);
  const zstd = await listKernels(zstdWorld);
  assert.deepEqual(gzip.value.kernels, [K2, K3]);
  assert.deepEqual(zstd.value.kernels, [K2, K3], 'the whiteout of K1 in a zstd layer is honoured');
  assert.equal(zstd.value.layersRead, gzip.value.layersRead);
  const ratio = zstd.traffic.down / gzip.traffic.down;
  console.log(
    `kernel listing: gzip ${gzip.traffic.down} bytes in ${gzip.traffic.requests} requests (${gzip.seconds.toFixed(2)}s), zstd:chunked ${zstd.traffic.down} bytes in ${zstd.traffic.requests} requests (${zstd.seconds.toFixed(2)}s), ratio ${ratio.toFixed(3)}`,
  );
  assert.ok(ratio > 0.9 && ratio < 1.1, `zstd:chunked/gzip bytes = ${ratio.toFixed(3)}`);
});

test('a zstd:chunked base runs end to end: resolve, akmods, compose, smoke test, promote, signed', async () => {
  worker = await startWorker(zstdWorld.config);
  const r = (await (await startRun(zstdWorld, c)).result()) as PipelineResult;
  assert.equal(r.outcome, 'promoted', r.message);
  assert.deepEqual(r.inputs!.kernels, [K2, K3]);
  assert.deepEqual(r.akmods!.built, [K2, K3]);
  const s = zstdWorld.info.stream;
  const candidate = r.candidate!.digest;
  assert.equal(await digestOf(`${s.stable}:latest`), candidate);
  assert.ok(await cosignVerifies(`${s.stable}@${candidate}`, zstdWorld.info.signing.publicKeyFile));
  // The candidate composed on the zstd base keeps the base's zstd:chunked layers below its own.
  const base = await rawManifest(`${zstdWorld.info.base.reference}`);
  const composed = await rawManifest(`${s.stable}@${candidate}`);
  assert.deepEqual(
    composed.layers.slice(0, base.layers.length).map((l) => [l.digest, l.mediaType]),
    base.layers.map((l) => [l.digest, l.mediaType]),
  );
  const smoke = r.stages.find((x) => x.stage === 'smoke-test');
  assert.equal(
    smoke?.detail,
    `read ${composed.layers.length - base.layers.length} layer(s), skipped ${base.layers.length}`,
  );
});
