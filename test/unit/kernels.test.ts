import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureType, PermanentError } from '../../core/errors.ts';
import {
  fedoraVersionFromKernel,
  isValidKernelRelease,
  kernelSeries,
  naturalCompare,
  primaryKernel,
  sortKernels,
  stripKernelArch,
} from '../../core/kernels.ts';

test('naturalCompare sorts 6.18.9 before 6.18.10', () => {
  assert.ok(naturalCompare('6.18.9', '6.18.10') < 0);
  assert.ok(naturalCompare('6.18.10', '6.18.9') > 0);
});

test('naturalCompare returns 0 only for identical strings', () => {
  assert.equal(naturalCompare('6.18.16-200.fc43.x86_64', '6.18.16-200.fc43.x86_64'), 0);
  assert.notEqual(naturalCompare('6.1', '6.01'), 0);
  assert.equal(naturalCompare('', ''), 0);
});

test('naturalCompare is antisymmetric over a mixed sample', () => {
  const xs = [
    '',
    '6',
    '6.1',
    '6.01',
    '6.10',
    '6.9',
    'a',
    'a1',
    'a01',
    '1a',
    '6.18.9-100.fc43',
    '6.18.10-1.fc43',
    'fc9',
    'fc10',
  ];
  for (const a of xs) {
    for (const b of xs) {
      assert.equal(Math.sign(naturalCompare(a, b)) + Math.sign(naturalCompare(b, a)), 0, `${a} vs ${b}`);
      assert.equal(naturalCompare(a, b) === 0, a === b, `${a} vs ${b}`);
    }
  }
});

test('naturalCompare handles numbers longer than double precision', () => {
  assert.ok(naturalCompare('1.99999999999999999998', '1.99999999999999999999') < 0);
  assert.ok(naturalCompare('123456789012345678901234567890', '99') > 0);
});

test('naturalCompare compares release numbers after the version numerically', () => {
  assert.ok(naturalCompare('6.18.16-99.fc43.x86_64', '6.18.16-200.fc43.x86_64') < 0);
  assert.ok(naturalCompare('6.18.16-200.fc42.x86_64', '6.18.16-200.fc43.x86_64') < 0);
});

test('naturalCompare puts a shorter prefix first', () => {
  assert.ok(naturalCompare('6.18', '6.18.1') < 0);
  assert.ok(naturalCompare('6.18.1', '6.18') > 0);
});

test('sortKernels de-duplicates and sorts naturally', () => {
  const input = [
    '6.18.10-200.fc43.x86_64',
    '6.18.9-200.fc43.x86_64',
    '6.18.10-200.fc43.x86_64',
    '6.17.12-300.fc43.x86_64',
  ];
  assert.deepEqual(sortKernels(input), [
    '6.17.12-300.fc43.x86_64',
    '6.18.9-200.fc43.x86_64',
    '6.18.10-200.fc43.x86_64',
  ]);
});

test('sortKernels does not modify its input', () => {
  const input = ['b', 'a', 'a'];
  sortKernels(input);
  assert.deepEqual(input, ['b', 'a', 'a']);
});

test('sortKernels of an empty list is empty', () => {
  assert.deepEqual(sortKernels([]), []);
});

test('primaryKernel returns the newest kernel by natural order, not string order', () => {
  assert.equal(primaryKernel(['6.18.10-200.fc43.x86_64', '6.18.9-200.fc43.x86_64']), '6.18.10-200.fc43.x86_64');
  assert.equal(primaryKernel(['6.9.1-1.fc43.x86_64', '6.10.0-1.fc43.x86_64']), '6.10.0-1.fc43.x86_64');
});

test('primaryKernel of a single kernel is that kernel', () => {
  assert.equal(primaryKernel(['7.1']), '7.1');
});

test('primaryKernel of an empty list throws InvalidInput naming the missing directories', () => {
  assert.throws(
    () => primaryKernel([]),
    (e: unknown) =>
      e instanceof PermanentError &&
      e.type === FailureType.InvalidInput &&
      e.message.startsWith('No installed kernel directories found '),
  );
});

test('fedoraVersionFromKernel reads the digits after the last fc', () => {
  assert.equal(fedoraVersionFromKernel('6.18.16-200.fc43.x86_64'), '43');
  assert.equal(fedoraVersionFromKernel('6.18.16-200.fc43'), '43');
  assert.equal(fedoraVersionFromKernel('6.8.0-fc1.200.fc42.aarch64'), '42');
  assert.equal(fedoraVersionFromKernel('5.0.0-0.rc1.git0.1.fc31.x86_64'), '31');
});

test('fedoraVersionFromKernel is undefined without a number after fc', () => {
  assert.equal(fedoraVersionFromKernel('6.1.0-47-amd64'), undefined);
  assert.equal(fedoraVersionFromKernel('6.1.0-fc'), undefined);
  assert.equal(fedoraVersionFromKernel('6.1.0-fc.x'), undefined);
  assert.equal(fedoraVersionFromKernel(''), undefined);
});

test('stripKernelArch drops only a trailing x86_64 or aarch64', () => {
  assert.equal(stripKernelArch('6.18.16-200.fc43.x86_64'), '6.18.16-200.fc43');
  assert.equal(stripKernelArch('6.18.16-200.fc43.aarch64'), '6.18.16-200.fc43');
  assert.equal(stripKernelArch('6.18.16-200.fc43.ppc64le'), '6.18.16-200.fc43.ppc64le');
  assert.equal(stripKernelArch('6.18.16-200.fc43.x86_64.x86_64'), '6.18.16-200.fc43.x86_64');
  assert.equal(stripKernelArch('x86_64'), 'x86_64');
  assert.equal(stripKernelArch('6.18.16-200.fc43-x86_64'), '6.18.16-200.fc43-x86_64');
});

test('kernelSeries reads major.minor from Fedora, Debian and two-part versions', () => {
  assert.deepEqual(kernelSeries('7.1'), { major: 7, minor: 1 });
  assert.deepEqual(kernelSeries('6.18.16-200.fc43.x86_64'), { major: 6, minor: 18 });
  assert.deepEqual(kernelSeries('6.1.0-47-amd64'), { major: 6, minor: 1 });
  assert.deepEqual(kernelSeries('7.0-rc1'), { major: 7, minor: 0 });
  assert.deepEqual(kernelSeries('10.20'), { major: 10, minor: 20 });
});

test('kernelSeries is undefined for strings without major.minor', () => {
  for (const k of ['', '7', 'linux-6.1', 'a.b', '.1', '6.', '6.x', '1234567.1']) {
    assert.equal(kernelSeries(k), undefined, k);
  }
});

test('isValidKernelRelease accepts real kernel releases', () => {
  for (const k of [
    '6.18.16-200.fc43.x86_64',
    '6.1.0-47-amd64',
    '7.1',
    '5.14.0-570.el9_6.x86_64',
    '6.19.0-0.rc1.20251201git1.fc44.aarch64',
    '6.6.0+debug~1',
  ]) {
    assert.equal(isValidKernelRelease(k), true, k);
  }
});

test('isValidKernelRelease rejects hostile and malformed values', () => {
  const bad = [
    '',
    '6',
    'x6.1',
    '6.1/../../etc',
    '6.1 ',
    ' 6.1',
    '6.1\n',
    '6.1;rm -rf /',
    '6.1$(id)',
    '6.1`id`',
    '6.1..x',
    '6.1.0-é',
    `6.1.${'a'.repeat(130)}`,
  ];
  for (const k of bad) assert.equal(isValidKernelRelease(k), false, JSON.stringify(k));
});

test('isValidKernelRelease accepts exactly 128 characters and not 129', () => {
  const base = '6.1.';
  assert.equal(isValidKernelRelease(base + 'a'.repeat(128 - base.length)), true);
  assert.equal(isValidKernelRelease(base + 'a'.repeat(129 - base.length)), false);
});
