/**
 * The disk preflight's verdict (core/disk.ts) and the sizes it reads and prints (core/size.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diskShortfall } from '../../core/disk.ts';
import { formatSize, parseSize } from '../../core/size.ts';

const volumes = [
  { what: 'containers storage', path: '/var/lib/containers/storage', free: 3.2e9 },
  { what: 'work dir', path: '/srv/kz/work', free: 50e9 },
];

test('enough free space on every volume passes', () => {
  assert.equal(diskShortfall({ stage: 'compose', volumes, minFree: 3e9 }), undefined);
  assert.equal(diskShortfall({ stage: 'compose', volumes, minFree: 0 }), undefined);
});

test('a short volume fails naming its path, its free space and the threshold, and only that volume', () => {
  const m = diskShortfall({ stage: 'building akmods for kernel 6.18.9-200.fc43.x86_64', volumes, minFree: 10e9 });
  assert.equal(
    m,
    "Not enough free disk space for building akmods for kernel 6.18.9-200.fc43.x86_64 on this build host: containers storage /var/lib/containers/storage has 3.2 GB free; worker.minFreeSpace is 10 GB. Free space there (e.g. podman image prune, podman system prune) or lower worker.minFreeSpace in this host's config.",
  );
  const both = diskShortfall({ stage: 'compose', volumes, minFree: 60e9 });
  assert.match(
    both!,
    /containers storage \/var\/lib\/containers\/storage has 3\.2 GB free; work dir \/srv\/kz\/work has 50 GB free; worker\.minFreeSpace is 60 GB/,
  );
});

test('sizes parse with decimal and binary units; zero only when allowed', () => {
  assert.equal(parseSize('10GB'), 10e9);
  assert.equal(parseSize('1.5GiB'), 1.5 * 1024 ** 3);
  assert.equal(parseSize('250 MB'), 250e6);
  assert.equal(parseSize(4096), 4096);
  assert.equal(parseSize('0'), undefined);
  assert.equal(parseSize('0', { allowZero: true }), 0);
  assert.equal(parseSize('ten'), undefined);
  assert.equal(parseSize('-1GB', { allowZero: true }), undefined);
  assert.equal(formatSize(3.25e9), '3.3 GB');
  assert.equal(formatSize(512e6), '512 MB');
  assert.equal(formatSize(900), '900 B');
});
