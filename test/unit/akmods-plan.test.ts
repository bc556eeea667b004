/**
 * The akmods stage's decisions (core/akmods-plan.ts): reuse or build which kernels, which images
 * the merged cache is assembled from, what the stage says, and when a branch or PR run must stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  akmodsBuildMessage,
  akmodsBuildPlan,
  akmodsMergePlan,
  buildTimes,
  sharedAkmodsProblem,
  type CacheCheckView,
} from '../../core/akmods-plan.ts';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const K1 = '6.17.7-300.fc43.x86_64';
const K2 = '6.18.5-200.fc43.x86_64';
const K10 = '6.18.10-200.fc43.x86_64';
const cache = (over: Partial<CacheCheckView>): CacheCheckView => ({
  status: 'stale',
  missing: [],
  holds: [],
  perKernel: {},
  ...over,
});

test('akmodsBuildPlan reuses a cache that covers every kernel, unless a rebuild was asked for', () => {
  const full = cache({ status: 'reusable', digest: D('c'), holds: [K1, K2] });
  assert.deepEqual(akmodsBuildPlan({ kernels: [K1, K2], rebuild: false, cache: full }), {
    reuse: true,
    digest: D('c'),
  });
  const rebuilt = akmodsBuildPlan({ kernels: [K1, K2], rebuild: true, cache: full });
  assert.deepEqual(rebuilt, {
    reuse: false,
    builds: [
      { kernel: K1, userspace: true },
      { kernel: K2, userspace: false },
    ],
    toBuild: [K1, K2],
    reused: [],
  });
});

test('akmodsBuildPlan builds only the missing kernels; the first build carries the userspace RPMs', () => {
  const plan = akmodsBuildPlan({
    kernels: [K1, K2, K10],
    rebuild: false,
    cache: cache({ status: 'stale', digest: D('c'), missing: [K2, K10], holds: [K1] }),
  });
  assert.deepEqual(plan, {
    reuse: false,
    builds: [
      { kernel: K2, userspace: true },
      { kernel: K10, userspace: false },
    ],
    toBuild: [K2, K10],
    reused: [K1],
  });
});

test('akmodsBuildPlan builds everything when there is no cache image (or a "reusable" one without a digest)', () => {
  const missing = akmodsBuildPlan({
    kernels: [K1],
    rebuild: false,
    cache: cache({ status: 'missing_image', missing: [K1] }),
  });
  assert.deepEqual(missing, { reuse: false, builds: [{ kernel: K1, userspace: true }], toBuild: [K1], reused: [] });
  const noDigest = akmodsBuildPlan({
    kernels: [K1],
    rebuild: false,
    cache: cache({ status: 'reusable', missing: [] }),
  });
  assert.equal(noDigest.reuse, false);
});

test('akmodsMergePlan takes reused kernels from their per-kernel images, then the new builds, in order', () => {
  const merge = akmodsMergePlan({
    repo: 'r/ac',
    toBuild: [K10],
    reused: [K2, K1],
    cache: { digest: D('c'), holds: [K1, K2], perKernel: { [K1]: D('1'), [K2]: D('2') } },
    built: [{ digest: D('a') }],
  });
  assert.deepEqual(merge.sources, [
    { repo: 'r/ac', digest: D('2') },
    { repo: 'r/ac', digest: D('1') },
    { repo: 'r/ac', digest: D('a') },
  ]);
  assert.deepEqual(merge.kernels, [K1, K2, K10], 'natural-sorted: 6.18.5 before 6.18.10');
});

test('akmodsMergePlan falls back to the whole old cache (first) for reused kernels without a per-kernel image', () => {
  const old = '6.16.1-100.fc43.x86_64';
  const merge = akmodsMergePlan({
    repo: 'r/ac',
    toBuild: [K2],
    reused: [K1],
    cache: { digest: D('c'), holds: [old, K1], perKernel: {} },
    built: [{ digest: D('a') }],
  });
  assert.deepEqual(merge.sources, [
    { repo: 'r/ac', digest: D('c') },
    { repo: 'r/ac', digest: D('a') },
  ]);
  assert.deepEqual(merge.kernels, [old, K1, K2], 'the old cache brings every kernel it holds (each once)');
});

test('akmodsMergePlan without an old cache digest merges only the new builds', () => {
  const merge = akmodsMergePlan({
    repo: 'r/ac',
    toBuild: [K1],
    reused: [],
    cache: { holds: [], perKernel: {} },
    built: [{ digest: D('a') }],
  });
  assert.deepEqual(merge, { sources: [{ repo: 'r/ac', digest: D('a') }], kernels: [K1] });
});

test('akmodsBuildMessage says per kernel how it was built, then what was published', () => {
  assert.deepEqual(
    akmodsBuildMessage({
      repo: 'r/ac',
      digest: D('e'),
      toBuild: [K1, K2],
      reused: [],
      built: [
        { kernel: K1, reusedBuild: false, timings: { configure: 189, build: 312 } },
        { kernel: K2, reusedBuild: true, timings: {} },
      ],
    }),
    [
      `${K1}: built (configure 189s, build 312s)`,
      `${K2}: same inputs built before on this host, reused`,
      `Published merged akmods cache: r/ac@${D('e')} (built ${K1}, ${K2}; reused none)`,
    ],
  );
  assert.equal(buildTimes(undefined), 'built');
  assert.equal(buildTimes({}), 'built');
});

test('sharedAkmodsProblem lets a branch run reuse only a cache that covers every kernel', () => {
  const source = 'r/ac:main-43';
  assert.equal(
    sharedAkmodsProblem({ source, stream: 's', cache: { status: 'reusable', digest: D('c'), missing: [] } }),
    undefined,
  );
  assert.equal(
    sharedAkmodsProblem({ source, stream: 's', cache: { status: 'stale', digest: D('c'), missing: [K2] } }),
    `Shared akmods source tag r/ac:main-43 is missing or stale for kernels ${K2}. Run a main build with a fresh akmods cache (kinoite-zfs run --stream s --rebuild-akmods), then rerun this build.`,
  );
  assert.match(
    sharedAkmodsProblem({ source, stream: 's', cache: { status: 'missing_image', missing: [K1, K2] } })!,
    new RegExp(`missing or stale for kernels ${K1} ${K2}\\.`),
  );
});
