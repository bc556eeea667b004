/**
 * The booted check's console reading and stage verdicts (core/boot.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootEvidence, bootParallelism, bootVerdict, readBootConsole } from '../../core/boot.ts';
import { qemuArgs } from '../../activities/boot-test.ts';

const K = '6.12.117+deb12-cloud-amd64';
const read = (lines: string[], extra: Partial<Parameters<typeof readBootConsole>[0]> = {}) =>
  readBootConsole({ kernel: K, lines, seconds: 12.5, accel: 'tcg', timedOut: false, timeoutSeconds: 300, ...extra });

test('a console that reaches RESULT PASS is a booted kernel with its module loaded and a pool round-trip', () => {
  const b = read([
    '[    0.000000] Linux version 6.12…',
    `KZ: booted ${K}`,
    'KZ: insmod extra/zfs/spl.ko ok',
    'KZ: insmod extra/zfs/zfs.ko ok',
    'KZ: module-version 2.2.7-1',
    'KZ: pool round-trip ok',
    'KZ-VERSION: zfs-2.2.7-1',
    'KZ: RESULT PASS zfs-2.2.7-1\r',
  ]);
  assert.deepEqual(b, {
    kernel: K,
    booted: true,
    moduleLoaded: true,
    poolRoundTrip: true,
    moduleVersion: '2.2.7-1',
    seconds: 12.5,
    accel: 'tcg',
  });
});

test('a module that does not load fails with the insmod error and the dmesg lines quoted', () => {
  const b = read([
    `KZ: booted ${K}`,
    "KZ: insmod extra/zfs/zfs.ko failed: insmod: can't insert 'zfs.ko': invalid module format",
    'KZ-DMESG: [1.2] zfs: disagrees about version of symbol module_layout',
    'KZ: RESULT FAIL module extra/zfs/zfs.ko did not load',
  ]);
  assert.equal(b.booted, true);
  assert.equal(b.moduleLoaded, false);
  assert.equal(b.error, 'module extra/zfs/zfs.ko did not load');
  assert.deepEqual(b.evidence, [
    "insmod extra/zfs/zfs.ko failed: insmod: can't insert 'zfs.ko': invalid module format",
    '[1.2] zfs: disagrees about version of symbol module_layout',
  ]);
});

test('a timeout names whether the kernel booted at all', () => {
  assert.equal(
    read(['Booting from ROM...'], { timedOut: true, timeoutSeconds: 30 }).error,
    'the kernel did not boot within 30s',
  );
  assert.equal(
    read([`KZ: booted ${K}`], { timedOut: true, timeoutSeconds: 30 }).error,
    'the check did not finish within 30s (hung after boot)',
  );
  assert.match(
    read([], { exitError: 'qemu: could not load kernel' }).error!,
    /did not boot \(qemu: could not load kernel\)/,
  );
});

test('evidence includes the first kernel BUG or Oops line', () => {
  assert.deepEqual(
    bootEvidence(['x', '[ 2.1] BUG: unable to handle page fault for address: 0000', '[ 2.2] Oops: 0000 [#1] SMP']),
    ['[ 2.1] BUG: unable to handle page fault for address: 0000'],
  );
});

test('the verdict fails a required check, warns for an optional one, and passes when every kernel passed', () => {
  const ok = read([`KZ: booted ${K}`, 'KZ: module-version 2.2.7-1', 'KZ: pool round-trip ok', 'KZ: RESULT PASS']);
  const bad = {
    ...read([`KZ: booted ${K}`, 'KZ: RESULT FAIL versions differ: userland zfs-2.2.7-1, module zfs-kmod-2.2.6-1']),
    kernel: '6.1.0-47-cloud-amd64',
    consoleLog: '/w/boot-logs/x.log',
  };
  assert.equal(bootVerdict('required', [ok]).ok, true);
  const required = bootVerdict('required', [ok, bad]);
  assert.equal(required.ok, false);
  assert.match(
    required.message,
    /1 of 2 kernel\(s\): kernel 6\.1\.0-47-cloud-amd64: versions differ: userland zfs-2\.2\.7-1, module zfs-kmod-2\.2\.6-1 \(console log: \/w\/boot-logs\/x\.log\)/,
  );
  const optional = bootVerdict('optional', [ok, bad]);
  assert.equal(optional.ok, true);
  assert.equal(optional.warnings.length, 1);
});

test('kernels boot in parallel up to the cores and the memory, at least one at a time', () => {
  assert.equal(bootParallelism({ cpus: 2, freeMiB: 20_000, vmMiB: 1024, kernels: 4 }), 2);
  assert.equal(bootParallelism({ cpus: 8, freeMiB: 3_000, vmMiB: 1024, kernels: 4 }), 1);
  assert.equal(bootParallelism({ cpus: 8, freeMiB: 500, vmMiB: 1024, kernels: 4 }), 1);
  assert.equal(bootParallelism({ cpus: 8, freeMiB: 20_000, vmMiB: 1024, kernels: 3 }), 3);
});

test('qemu runs headless with the serial console on stdio, KVM only when asked', () => {
  const tcg = qemuArgs({ kernel: '/b/vmlinuz', initrd: '/b/initrd.cpio', accel: 'tcg', memoryMiB: 1024 });
  assert.deepEqual(tcg.slice(0, 2), ['-accel', 'tcg']);
  assert.ok(tcg.includes('-nographic') && tcg.includes('-no-reboot'));
  assert.deepEqual(tcg.slice(tcg.indexOf('-kernel'), tcg.indexOf('-kernel') + 4), [
    '-kernel',
    '/b/vmlinuz',
    '-initrd',
    '/b/initrd.cpio',
  ]);
  assert.ok(!tcg.includes('-enable-kvm'));
  assert.ok(qemuArgs({ kernel: 'k', initrd: 'i', accel: 'kvm', memoryMiB: 1024 }).includes('-enable-kvm'));
});
