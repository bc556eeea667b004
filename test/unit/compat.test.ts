import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureType, PermanentError } from '../../core/errors.ts';
import { compatVerdict, parseMeta, pickZfsRelease } from '../../core/compat.ts';

const META_244 = `Meta:          1
Name:          zfs
Branch:        1.0
Version:       2.4.4
Release:       1
Release-Tags:  relext
License:       CDDL
Author:        OpenZFS
Linux-Maximum: 7.2
Linux-Minimum: 4.18
`;

function invalid(fn: () => unknown, re: RegExp): void {
  assert.throws(
    fn,
    (e: unknown) => e instanceof PermanentError && e.type === FailureType.InvalidInput && re.test(e.message),
  );
}

test('parseMeta reads the fields of an OpenZFS META file', () => {
  assert.deepEqual(parseMeta(META_244), {
    name: 'zfs',
    version: '2.4.4',
    release: '1',
    linuxMin: '4.18',
    linuxMax: '7.2',
  });
});

test('parseMeta tolerates CRLF, tabs, odd spacing and key case', () => {
  const text = 'version:2.3.5\r\n  LINUX-MAXIMUM :\t6.17  \r\nlinux-minimum:4.18\r\n\r\ngarbage line\n# comment: x\n';
  assert.deepEqual(parseMeta(text), { version: '2.3.5', linuxMin: '4.18', linuxMax: '6.17' });
});

test('parseMeta keeps the first occurrence of a repeated key', () => {
  assert.equal(parseMeta('Version: 2.4.4\nVersion: 9.9.9\n').version, '2.4.4');
});

test('parseMeta leaves absent limits undefined', () => {
  const m = parseMeta('Version: 2.2.7\nLinux-Maximum:\n');
  assert.equal(m.linuxMax, undefined);
  assert.equal(m.linuxMin, undefined);
});

test('parseMeta without a Version line is invalid input', () => {
  invalid(() => parseMeta(''), /no Version line/);
  invalid(() => parseMeta('Name: zfs\nVersion:\n'), /no Version line/);
  invalid(() => parseMeta('<html>404</html>'), /no Version line/);
});

const RELEASES = [
  { tag: 'zfs-2.4.0' },
  { tag: 'zfs-2.4.4' },
  { tag: 'zfs-2.4.10-rc1', prerelease: true },
  { tag: 'zfs-2.4.5', draft: true },
  { tag: 'zfs-2.4.6', prerelease: true },
  { tag: 'zfs-2.4.0-rc1' },
  { tag: 'zfs-2.3.6' },
  { tag: 'zfs-2.40.1' },
  { tag: 'zfs-2.4.3' },
  { tag: 'zfs-2.4.4-staging' },
  { tag: 'v2.4.9' },
];

test('pickZfsRelease picks the newest stable release in the line', () => {
  assert.deepEqual(pickZfsRelease({ line: '2.4', releases: RELEASES }), { tag: 'zfs-2.4.4', version: '2.4.4' });
  assert.deepEqual(pickZfsRelease({ line: '2.3', releases: RELEASES }), { tag: 'zfs-2.3.6', version: '2.3.6' });
});

test('pickZfsRelease compares patch numbers naturally (2.4.10 beats 2.4.9)', () => {
  const releases = [{ tag: 'zfs-2.4.9' }, { tag: 'zfs-2.4.10' }, { tag: 'zfs-2.4.2' }];
  assert.equal(pickZfsRelease({ line: '2.4', releases })?.version, '2.4.10');
});

test('pickZfsRelease does not confuse line 2.4 with 2.40', () => {
  assert.equal(pickZfsRelease({ line: '2.40', releases: RELEASES })?.version, '2.40.1');
  assert.equal(pickZfsRelease({ line: '2.4', releases: [{ tag: 'zfs-2.40.1' }] }), undefined);
});

test('pickZfsRelease is undefined when the line has no stable release', () => {
  assert.equal(pickZfsRelease({ line: '2.5', releases: RELEASES }), undefined);
  assert.equal(pickZfsRelease({ line: '2.4', releases: [] }), undefined);
  assert.equal(pickZfsRelease({ line: '2.4', releases: [{ tag: 'zfs-2.4.1', prerelease: true }] }), undefined);
});

test('pickZfsRelease rejects a malformed line', () => {
  for (const line of ['', '2.', 'v2.4', '2.4.1.x', '2.4;x'])
    invalid(() => pickZfsRelease({ line, releases: RELEASES }), /release line/);
});

test('compatVerdict is compatible when every kernel is within min and max', () => {
  assert.deepEqual(
    compatVerdict({
      kernels: ['6.18.16-200.fc43.x86_64', '7.2.9-100.fc43.x86_64'],
      linuxMin: '4.18',
      linuxMax: '7.2',
      allowExperimental: false,
    }),
    { verdict: 'compatible' },
  );
});

test('compatVerdict compares major.minor only: with max 7.1, 7.1.4 passes and 7.2.0 does not', () => {
  assert.equal(
    compatVerdict({ kernels: ['7.1.4-200.fc43.x86_64'], linuxMax: '7.1', allowExperimental: false }).verdict,
    'compatible',
  );
  assert.equal(
    compatVerdict({ kernels: ['7.2.0-200.fc43.x86_64'], linuxMax: '7.1', allowExperimental: false }).verdict,
    'blocked',
  );
});

test('compatVerdict compares minors numerically (6.9 < 6.10)', () => {
  assert.equal(compatVerdict({ kernels: ['6.10.1'], linuxMax: '6.9', allowExperimental: false }).verdict, 'blocked');
  assert.equal(compatVerdict({ kernels: ['6.9.1'], linuxMax: '6.10', allowExperimental: false }).verdict, 'compatible');
  assert.equal(compatVerdict({ kernels: ['7.0.1'], linuxMax: '6.19', allowExperimental: false }).verdict, 'blocked');
});

test('compatVerdict blocks on the newest kernel over the max with the operator message', () => {
  const v = compatVerdict({
    kernels: ['7.1.2-200.fc43.x86_64', '6.19.3-200.fc43.x86_64', '7.1.10-200.fc43.x86_64'],
    linuxMin: '4.18',
    linuxMax: '7.0',
    allowExperimental: false,
    zfsVersion: '2.4.3',
  });
  assert.deepEqual(v, {
    verdict: 'blocked',
    kernel: '7.1.10-200.fc43.x86_64',
    max: '7.0',
    message:
      'ZFS 2.4.3 supports Linux up to 7.0; kernel 7.1.10-200.fc43.x86_64 is newer. Stable stays where it is until a compatible OpenZFS release appears (or set zfs.allowExperimental).',
  });
});

test('compatVerdict allows a kernel over the max only as experimental when policy says so', () => {
  const v = compatVerdict({
    kernels: ['7.1.2-200.fc43.x86_64'],
    linuxMax: '7.0',
    allowExperimental: true,
    zfsVersion: '2.4.3',
  });
  assert.equal(v.verdict, 'experimental');
  assert.ok(v.verdict === 'experimental' && v.kernel === '7.1.2-200.fc43.x86_64' && v.max === '7.0');
  assert.ok(
    v.verdict === 'experimental' &&
      v.message.startsWith('ZFS 2.4.3 supports Linux up to 7.0; kernel 7.1.2-200.fc43.x86_64 is newer.'),
  );
});

test('compatVerdict blocks a kernel under the min even with allowExperimental', () => {
  const v = compatVerdict({
    kernels: ['4.17.1', '4.9.0', '6.1.0-47-amd64'],
    linuxMin: '4.18',
    linuxMax: '7.2',
    allowExperimental: true,
  });
  assert.equal(v.verdict, 'blocked');
  assert.ok(v.verdict === 'blocked' && v.kernel === '4.9.0' && v.min === '4.18' && v.max === undefined);
  assert.ok(v.verdict === 'blocked' && /older/.test(v.message));
});

test('compatVerdict handles two-component kernel versions', () => {
  assert.equal(compatVerdict({ kernels: ['7.1'], linuxMax: '7.1', allowExperimental: false }).verdict, 'compatible');
  assert.equal(compatVerdict({ kernels: ['7.2'], linuxMax: '7.1', allowExperimental: false }).verdict, 'blocked');
});

test('compatVerdict enforces no limit that is not given', () => {
  assert.deepEqual(compatVerdict({ kernels: ['99.1'], allowExperimental: false }), { verdict: 'compatible' });
  assert.deepEqual(compatVerdict({ kernels: ['1.0'], linuxMin: ' ', linuxMax: '', allowExperimental: false }), {
    verdict: 'compatible',
  });
});

test('compatVerdict without a ZFS version still says which kernel and limit', () => {
  const v = compatVerdict({ kernels: ['7.3.1'], linuxMax: '7.2', allowExperimental: false });
  assert.ok(
    v.verdict === 'blocked' &&
      v.message.startsWith('This ZFS release supports Linux up to 7.2; kernel 7.3.1 is newer.'),
  );
});

test('compatVerdict rejects unreadable kernels and limits', () => {
  invalid(
    () => compatVerdict({ kernels: ['linux'], linuxMax: '7.2', allowExperimental: false }),
    /kernel release "linux"/,
  );
  invalid(
    () => compatVerdict({ kernels: ['7.1.1'], linuxMax: 'seven', allowExperimental: false }),
    /Linux-Maximum "seven"/,
  );
  invalid(() => compatVerdict({ kernels: ['7.1.1'], linuxMin: '4', allowExperimental: false }), /Linux-Minimum "4"/);
});

test('compatVerdict of no kernels is compatible (nothing to build against)', () => {
  assert.deepEqual(compatVerdict({ kernels: [], linuxMin: '4.18', linuxMax: '7.2', allowExperimental: false }), {
    verdict: 'compatible',
  });
});
