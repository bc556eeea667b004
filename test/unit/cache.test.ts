import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureType, PermanentError } from '../../core/errors.ts';
import {
  AKMODS_LABELS,
  cacheCheckMessage,
  cacheCoverage,
  cacheLabels,
  kernelsCoveredByRpmFiles,
  kernelsFromCacheLabels,
} from '../../core/cache.ts';

const K9 = '6.18.9-200.fc43.x86_64';
const K10 = '6.18.10-200.fc43.x86_64';
const K17 = '6.17.12-300.fc43.x86_64';
const IMG = 'ghcr.io/o/kinoite-zfs-bluebuild-akmods:main-43';

test('AKMODS_LABELS uses the original label keys', () => {
  assert.equal(AKMODS_LABELS.cacheFormat, 'io.github.danathar.kinoite-zfs.akmods.cache-format');
  assert.equal(AKMODS_LABELS.kernelReleases, 'io.github.danathar.kinoite-zfs.akmods.kernel-releases');
  assert.equal(AKMODS_LABELS.zfsVersion, 'io.github.danathar.kinoite-zfs.akmods.zfs-version');
});

test('cacheLabels writes format 1, natural-sorted de-duplicated kernels and the ZFS version', () => {
  assert.deepEqual(cacheLabels({ kernels: [K10, K9, K10], zfsVersion: '2.4.4' }), {
    'io.github.danathar.kinoite-zfs.akmods.cache-format': '1',
    'io.github.danathar.kinoite-zfs.akmods.kernel-releases': `${K9} ${K10}`,
    'io.github.danathar.kinoite-zfs.akmods.zfs-version': '2.4.4',
  });
});

test('kernelsFromCacheLabels reads back what cacheLabels writes', () => {
  const labels = cacheLabels({ kernels: [K10, K17, K9], zfsVersion: '2.4.4' });
  assert.deepEqual(kernelsFromCacheLabels(labels), { kernels: [K17, K9, K10], zfsVersion: '2.4.4' });
});

test('kernelsFromCacheLabels tolerates extra whitespace in the kernel label', () => {
  const labels = { [AKMODS_LABELS.cacheFormat]: '1', [AKMODS_LABELS.kernelReleases]: `  ${K10}\t ${K9}\n` };
  assert.deepEqual(kernelsFromCacheLabels(labels), { kernels: [K9, K10] });
});

test('kernelsFromCacheLabels is undefined when format is not 1 or kernels are empty', () => {
  assert.equal(kernelsFromCacheLabels(undefined), undefined);
  assert.equal(kernelsFromCacheLabels(null), undefined);
  assert.equal(kernelsFromCacheLabels({}), undefined);
  assert.equal(
    kernelsFromCacheLabels({ [AKMODS_LABELS.cacheFormat]: '2', [AKMODS_LABELS.kernelReleases]: K9 }),
    undefined,
  );
  assert.equal(kernelsFromCacheLabels({ [AKMODS_LABELS.kernelReleases]: K9 }), undefined);
  assert.equal(
    kernelsFromCacheLabels({ [AKMODS_LABELS.cacheFormat]: '1', [AKMODS_LABELS.kernelReleases]: '' }),
    undefined,
  );
  assert.equal(
    kernelsFromCacheLabels({ [AKMODS_LABELS.cacheFormat]: '1', [AKMODS_LABELS.kernelReleases]: '   ' }),
    undefined,
  );
});

test('kernelsCoveredByRpmFiles finds kmod-zfs RPMs per kernel', () => {
  const paths = [
    `rpms/kmods/zfs/kmod-zfs-${K9}-2.4.4-1.fc43.x86_64.rpm`,
    `/rpms/kmods/zfs/kmod-zfs-${K10}-2.4.4-1.fc43.x86_64.rpm`,
    'rpms/kmods/zfs/zfs-2.4.4-1.fc43.x86_64.rpm',
  ];
  assert.deepEqual(kernelsCoveredByRpmFiles([K10, K9, K17], paths), [K9, K10]);
});

test('kernelsCoveredByRpmFiles tolerates ./ and / prefixes', () => {
  assert.deepEqual(kernelsCoveredByRpmFiles([K9], [`./rpms/kmods/zfs/kmod-zfs-${K9}-2.4.4-1.x86_64.rpm`]), [K9]);
  assert.deepEqual(kernelsCoveredByRpmFiles([K9], [`.//rpms/kmods/zfs/kmod-zfs-${K9}-2.4.4-1.x86_64.rpm`]), [K9]);
});

test('kernelsCoveredByRpmFiles ignores other directories, other packages and non-RPMs', () => {
  const paths = [
    `rpms/kmods/kmod-zfs-${K9}-2.4.4-1.x86_64.rpm`,
    `x/rpms/kmods/zfs/kmod-zfs-${K9}-2.4.4-1.x86_64.rpm`,
    `rpms/kmods/zfs/kmod-zfs-${K9}-2.4.4-1.x86_64.rpm.partial`,
    `rpms/kmods/zfs/kmod-zfs-${K9}-2.4.4-1.x86_64.rpm/x`,
    `rpms/kmods/zfs/kmod-spl-${K9}-2.4.4-1.x86_64.rpm`,
    `rpms/kmods/zfs/kmod-zfs-${K9}`,
    `rpms/kmods/zfs/kmod-zfs-${K9}-.rpm`,
  ];
  assert.deepEqual(kernelsCoveredByRpmFiles([K9], paths), []);
});

test('kernelsCoveredByRpmFiles does not let a longer kernel cover a shorter prefix of it', () => {
  const paths = [`rpms/kmods/zfs/kmod-zfs-${K9}-2.4.4-1.fc43.x86_64.rpm`];
  assert.deepEqual(kernelsCoveredByRpmFiles(['6.18.9', '6.18.9-200.fc43', K9], paths), [K9]);
  const p2 = ['rpms/kmods/zfs/kmod-zfs-6.1.10-1.x86_64-2.4.4-1.x86_64.rpm'];
  assert.deepEqual(kernelsCoveredByRpmFiles(['6.1', '6.1.1'], p2), []);
});

test('kernelsCoveredByRpmFiles with no paths covers nothing', () => {
  assert.deepEqual(kernelsCoveredByRpmFiles([K9], []), []);
});

test('cacheCoverage of a missing image reports every kernel missing', () => {
  assert.deepEqual(cacheCoverage({ required: [K10, K9], exists: false, covered: [K9, K10], zfsVersion: '2.4.4' }), {
    status: 'missing_image',
    covered: [],
    missing: [K9, K10],
  });
});

test('cacheCoverage is reusable when every required kernel is covered', () => {
  assert.deepEqual(cacheCoverage({ required: [K10, K9], exists: true, covered: [K17, K9, K10], zfsVersion: '2.4.4' }), {
    status: 'reusable',
    covered: [K9, K10],
    missing: [],
  });
});

test('cacheCoverage is stale with the missing kernels natural-sorted', () => {
  assert.deepEqual(cacheCoverage({ required: [K10, K17, K9], exists: true, covered: [K17], zfsVersion: '2.4.4' }), {
    status: 'stale',
    covered: [K17],
    missing: [K9, K10],
  });
});

test('cacheCoverage treats a ZFS version mismatch as stale for every kernel', () => {
  assert.deepEqual(
    cacheCoverage({
      required: [K9, K10],
      exists: true,
      covered: [K9, K10],
      cachedZfsVersion: '2.4.3',
      zfsVersion: '2.4.4',
    }),
    { status: 'stale', covered: [], missing: [K9, K10] },
  );
});

test('cacheCoverage ignores the ZFS version when either side is unknown', () => {
  assert.equal(cacheCoverage({ required: [K9], exists: true, covered: [K9], zfsVersion: '2.4.4' }).status, 'reusable');
  assert.equal(
    cacheCoverage({ required: [K9], exists: true, covered: [K9], cachedZfsVersion: '2.4.3' }).status,
    'reusable',
  );
  assert.equal(
    cacheCoverage({ required: [K9], exists: true, covered: [K9], cachedZfsVersion: '2.4.4', zfsVersion: '2.4.4' })
      .status,
    'reusable',
  );
});

test('cacheCoverage de-duplicates required kernels', () => {
  assert.deepEqual(cacheCoverage({ required: [K9, K9], exists: true, covered: [], zfsVersion: '2.4.4' }).missing, [K9]);
});

test('cacheCoverage with no required kernels is invalid input', () => {
  for (const required of [[], [''], ['  ']]) {
    assert.throws(
      () => cacheCoverage({ required, exists: true, covered: [], zfsVersion: '2.4.4' }),
      (e: unknown) =>
        e instanceof PermanentError && e.type === FailureType.InvalidInput && /at least one kernel/.test(e.message),
    );
  }
});

test('cacheCheckMessage prints the labels line and the skip line for a reusable cache', () => {
  const coverage = cacheCoverage({ required: [K10, K9], exists: true, covered: [K9, K10], zfsVersion: '2.4.4' });
  assert.deepEqual(cacheCheckMessage({ image: IMG, fedora: '43', coverage, via: 'labels' }), [
    `Using cache metadata labels from ${IMG} for kernel coverage check.`,
    `Found matching ${IMG} kmods for kernels ${K9} ${K10}; akmods rebuild can be skipped.`,
  ]);
});

test('cacheCheckMessage prints the layer-scan line and the missing kernels for a stale cache', () => {
  const coverage = cacheCoverage({ required: [K10, K9], exists: true, covered: [K9], zfsVersion: '2.4.4' });
  assert.deepEqual(cacheCheckMessage({ image: IMG, fedora: '43', coverage, via: 'layer-scan' }), [
    `No cache metadata labels found on ${IMG}; falling back to layer scan.`,
    `Cached ${IMG} is present but missing kmods for kernels ${K10}; akmods rebuild is required.`,
  ]);
});

test('cacheCheckMessage prints only the rebuild line for a missing image', () => {
  const coverage = cacheCoverage({ required: [K9], exists: false, covered: [], zfsVersion: '2.4.4' });
  assert.deepEqual(cacheCheckMessage({ image: IMG, fedora: '43', coverage }), [
    'No existing source akmods cache image for Fedora 43; rebuild is required.',
  ]);
});

test('cacheCheckMessage explains a ZFS version mismatch', () => {
  const input = { required: [K9], exists: true, covered: [K9], cachedZfsVersion: '2.4.3', zfsVersion: '2.4.4' };
  const coverage = cacheCoverage(input);
  const lines = cacheCheckMessage({
    image: IMG,
    fedora: '43',
    coverage,
    via: 'labels',
    cachedZfsVersion: '2.4.3',
    zfsVersion: '2.4.4',
  });
  assert.equal(lines.length, 3);
  assert.match(lines[1]!, /built for ZFS 2\.4\.3, not 2\.4\.4/);
  assert.match(lines[2]!, new RegExp(`missing kmods for kernels ${K9.replace(/\./g, '\\.')};`));
});
