/**
 * The akmods build's host cache key and the recipe's step timings (activities/akmods.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildKey, recipeTimings } from '../../activities/akmods.ts';

test('the recipe timings come from its build-akmods: time lines only', () => {
  const out = [
    'build-akmods: kernel=6.1.0-57-cloud-amd64 zfs=2.2.7',
    'build-akmods: time autogen 11s',
    'checking for gcc... gcc',
    'build-akmods: time kmod-configure 216s',
    'build-akmods: time autogen 0s (tarball ships ./configure)',
    'build-akmods: time user-build 208s',
  ].join('\n');
  assert.deepEqual(recipeTimings(out), { autogen: 11, 'kmod-configure': 216, 'user-build': 208 });
  assert.deepEqual(recipeTimings(''), {});
});

test('the build key changes with every input that changes the RPMs, and only with them', () => {
  const inputs = {
    tarball: 'a'.repeat(64),
    builderId: 'b'.repeat(64),
    recipe: 'c'.repeat(64),
    kernel: '6.1.0-57-cloud-amd64',
    version: '2.2.7',
    fedora: '43',
    experimental: false,
    userspace: true,
  };
  const key = buildKey(inputs);
  assert.match(key, /^[0-9a-f]{64}$/);
  assert.equal(buildKey({ ...inputs }), key, 'same inputs, same key');
  const changed = [
    { tarball: 'd'.repeat(64) },
    { builderId: 'e'.repeat(64) },
    { recipe: 'f'.repeat(64) },
    { kernel: '6.12.117+deb12-cloud-amd64' },
    { version: '2.2.6' },
    { fedora: '42' },
    { experimental: true },
    { userspace: false },
  ];
  const keys = changed.map((c) => buildKey({ ...inputs, ...c }));
  assert.equal(new Set([key, ...keys]).size, changed.length + 1);
});
