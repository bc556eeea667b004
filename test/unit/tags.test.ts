import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureType, PermanentError } from '../../core/errors.ts';
import { isValidTag } from '../../core/refs.ts';
import {
  akmodsCacheTag,
  akmodsKernelTag,
  auditTag,
  branchTag,
  branchPrefix,
  candidateTag,
  expandTagPattern,
  immutableBaseTagCandidates,
  prTag,
  sanitizeBranch,
  modeTag,
} from '../../core/tags.ts';

function invalid(fn: () => unknown, part?: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PermanentError, `expected PermanentError, got ${String(e)}`);
    assert.equal(e.type, FailureType.InvalidInput);
    if (typeof part === 'string') assert.ok(e.message.includes(part), e.message);
    else if (part) assert.match(e.message, part);
    return true;
  });
}

// Examples listed in the original's §7.3.
test('sanitizeBranch turns Feature/My Branch! into br-feature-my-branch', () => {
  assert.equal(sanitizeBranch('Feature/My Branch!'), 'br-feature-my-branch');
});

test('sanitizeBranch keeps dots and underscores: release/1.2_x → br-release-1.2_x', () => {
  assert.equal(sanitizeBranch('release/1.2_x'), 'br-release-1.2_x');
});

test('sanitizeBranch strips leading and trailing dashes: --foo-- → br-foo', () => {
  assert.equal(sanitizeBranch('--foo--'), 'br-foo');
});

test('sanitizeBranch maps a name with no ASCII letters to br-branch: ÄÖÜ', () => {
  assert.equal(sanitizeBranch('ÄÖÜ'), 'br-branch');
});

test('sanitizeBranch truncates 300 a to br- plus 117 a (120 characters)', () => {
  const out = sanitizeBranch('a'.repeat(300));
  assert.equal(out, `br-${'a'.repeat(117)}`);
  assert.equal(out.length, 120);
});

test('sanitizeBranch strips a dash the 120-character cut lands on (119 characters)', () => {
  const out = sanitizeBranch(`${'x'.repeat(116)}-yyy`);
  assert.equal(out, `br-${'x'.repeat(116)}`);
  assert.equal(out.length, 119);
});

test('sanitizeBranch keeps a leading dot or underscore: .hidden → br-.hidden', () => {
  assert.equal(sanitizeBranch('.hidden'), 'br-.hidden');
  assert.equal(sanitizeBranch('_x'), 'br-_x');
});

test('sanitizeBranch collapses a run of disallowed characters into one dash', () => {
  assert.equal(sanitizeBranch('a  //  b'), 'br-a-b');
  assert.equal(sanitizeBranch('a--b'), 'br-a--b');
});

test('sanitizeBranch neutralises hostile names', () => {
  const cases: [string, string][] = [
    ['$(rm -rf /)', 'br-rm--rf'],
    ['feat\nrm -rf /', 'br-feat-rm--rf'],
    ['`id`;echo', 'br-id-echo'],
    ['a\u0000b', 'br-a-b'],
    ['', 'br-branch'],
    ['////', 'br-branch'],
    ['-', 'br-branch'],
    ['日本語-ブランチ', 'br-branch'],
    ['café', 'br-caf'],
    ['👍fix', 'br-fix'],
  ];
  for (const [input, want] of cases) assert.equal(sanitizeBranch(input), want, JSON.stringify(input));
});

test('sanitizeBranch output is always a valid tag of at most 120 characters', () => {
  const inputs = [
    'x',
    'A'.repeat(500),
    `${'-'.repeat(200)}a`,
    `${'.'.repeat(130)}`,
    `a${'é'.repeat(200)}b`,
    '.'.repeat(3),
    `_${'-'.repeat(300)}`,
  ];
  for (const i of inputs) {
    const out = sanitizeBranch(i);
    assert.ok(out.length <= 120, out);
    assert.ok(isValidTag(out), out);
    assert.ok(out.startsWith('br-'), out);
    assert.ok(!out.endsWith('-'), out);
  }
});

test('candidateTag is <sha7>-<fedora>', () => {
  assert.equal(candidateTag({ sha7: 'abc1234', fedora: '43' }), 'abc1234-43');
});

test('candidateTag rejects non-hex shas and bad Fedora versions', () => {
  invalid(() => candidateTag({ sha7: 'ABC1234', fedora: '43' }), 'sha7');
  invalid(() => candidateTag({ sha7: 'abc12', fedora: '43' }), 'sha7');
  invalid(() => candidateTag({ sha7: 'abc1234', fedora: '' }), 'fedora');
  invalid(() => candidateTag({ sha7: 'abc1234', fedora: '43;x' }), 'fedora');
});

test('akmodsCacheTag defaults the prefix to main', () => {
  assert.equal(akmodsCacheTag({ fedora: '43' }), 'main-43');
  assert.equal(akmodsCacheTag({ prefix: '', fedora: '43' }), 'main-43');
  assert.equal(akmodsCacheTag({ prefix: '  ', fedora: '43' }), 'main-43');
  assert.equal(akmodsCacheTag({ prefix: 'br-x', fedora: '42' }), 'br-x-42');
});

test('akmodsCacheTag rejects a prefix that makes an invalid tag', () => {
  invalid(() => akmodsCacheTag({ prefix: 'a b', fedora: '43' }), /not a valid OCI tag/);
  invalid(() => akmodsCacheTag({ prefix: '-x', fedora: '43' }), /not a valid OCI tag/);
});

test('akmodsKernelTag appends the kernel release', () => {
  assert.equal(akmodsKernelTag({ fedora: '43', kernel: '6.18.16-200.fc43.x86_64' }), 'main-43-6.18.16-200.fc43.x86_64');
  assert.equal(akmodsKernelTag({ prefix: 'br-x', fedora: '43', kernel: '7.1' }), 'br-x-43-7.1');
});

test('akmodsKernelTag turns the + and ~ of Debian kernel releases into _ and keeps such kernels apart with a hash', () => {
  const a = akmodsKernelTag({ fedora: '43', kernel: '6.12.117+deb12-cloud-amd64' });
  assert.match(a, /^main-43-6\.12\.117_deb12-cloud-amd64-[0-9a-f]{8}$/);
  assert.notEqual(akmodsKernelTag({ fedora: '43', kernel: '6.12.117~deb12-cloud-amd64' }), a);
  assert.notEqual(akmodsKernelTag({ fedora: '43', kernel: '6.12.117_deb12-cloud-amd64' }), a);
  assert.equal(akmodsKernelTag({ fedora: '43', kernel: '6.1.0-47-cloud-amd64' }), 'main-43-6.1.0-47-cloud-amd64');
});

test('akmodsKernelTag rejects kernels with tag-unsafe characters or too long', () => {
  invalid(() => akmodsKernelTag({ fedora: '43', kernel: '6.1/x' }));
  invalid(() => akmodsKernelTag({ fedora: '43', kernel: `6.${'1'.repeat(130)}` }));
});

test('auditTag is stable-<run>-<sha7>', () => {
  assert.equal(auditTag({ run: 17, sha7: 'abc1234' }), 'stable-17-abc1234');
  assert.equal(auditTag({ run: '20261125T2045-x', sha7: 'abc1234' }), 'stable-20261125T2045-x-abc1234');
  invalid(() => auditTag({ run: 'a b', sha7: 'abc1234' }));
});

test('branchTag is the branch plus the Fedora version; a name sanitising changes gets a hash of the real name', () => {
  assert.equal(branchTag({ branch: 'feature-test', fedora: '43' }), 'br-feature-test-43');
  assert.equal(branchTag({ branch: 'release-1.2_x', fedora: '43' }), 'br-release-1.2_x-43');
  assert.match(branchTag({ branch: 'Feature/Test', fedora: '43' }), /^br-feature-test-[0-9a-f]{8}-43$/);
  const long = branchTag({ branch: 'a'.repeat(300), fedora: '43' });
  assert.ok(long.length <= 128 && isValidTag(long), long);
  assert.match(long, /^br-a+-[0-9a-f]{8}-43$/);
});

test('branches whose sanitised names meet still get different tags', () => {
  const pairs: [string, string][] = [
    ['Feature/X', 'feature-x'],
    ['Main', 'main'],
    ['ÄÖÜ', 'éè'],
    ['a'.repeat(300), 'a'.repeat(301)],
    ['fix/a b', 'fix/a  b'],
  ];
  for (const [a, b] of pairs) {
    assert.equal(sanitizeBranch(a), sanitizeBranch(b), `${a} and ${b} sanitise alike (the original's rule)`);
    assert.notEqual(branchTag({ branch: a, fedora: '43' }), branchTag({ branch: b, fedora: '43' }), `${a} / ${b}`);
  }
  assert.match(branchPrefix('ÄÖÜ'), /^br-branch-[0-9a-f]{8}$/);
});

test('prTag is pr-<number>-<fedora> and rejects non-positive numbers', () => {
  assert.equal(prTag({ number: 42, fedora: '43' }), 'pr-42-43');
  assert.equal(prTag({ number: '7', fedora: '43' }), 'pr-7-43');
  invalid(() => prTag({ number: 0, fedora: '43' }));
  invalid(() => prTag({ number: -1, fedora: '43' }));
  invalid(() => prTag({ number: 1.5, fedora: '43' }));
  invalid(() => prTag({ number: '1;x', fedora: '43' }));
});

test('expandTagPattern replaces every {fedora}', () => {
  assert.equal(expandTagPattern('main-{fedora}', { fedora: '43' }), 'main-43');
  assert.equal(expandTagPattern('{fedora}-x-{fedora}', { fedora: '42' }), '42-x-42');
  assert.equal(expandTagPattern('latest', { fedora: '42' }), 'latest');
});

test('expandTagPattern rejects unknown placeholders and invalid results', () => {
  invalid(() => expandTagPattern('main-{kernel}', { fedora: '43' }), '{kernel}');
  invalid(() => expandTagPattern('main {fedora}', { fedora: '43' }), /not a valid OCI tag/);
  invalid(() => expandTagPattern('', { fedora: '43' }), /not a valid OCI tag/);
  invalid(() => expandTagPattern('main-{fedora}', { fedora: '4 3' }), 'fedora');
});

test('immutableBaseTagCandidates keeps a source tag already ending in -YYYYMMDD', () => {
  assert.deepEqual(immutableBaseTagCandidates({ sourceTag: '43-20260227', versionLabel: 'junk', fedora: '43' }), [
    '43-20260227',
  ]);
  assert.deepEqual(
    immutableBaseTagCandidates({ sourceTag: 'latest-20260227.1', versionLabel: undefined, fedora: '43' }),
    ['latest-20260227.1'],
  );
});

test('immutableBaseTagCandidates for :latest gives latest-<suffix> then <fedora>-<suffix>', () => {
  assert.deepEqual(immutableBaseTagCandidates({ sourceTag: 'latest', versionLabel: '43.20260227.1', fedora: '43' }), [
    'latest-20260227.1',
    '43-20260227.1',
  ]);
});

test('immutableBaseTagCandidates puts the source tag first and de-duplicates', () => {
  assert.deepEqual(immutableBaseTagCandidates({ sourceTag: 'stable', versionLabel: '43.20260227', fedora: '43' }), [
    'stable-20260227',
    'latest-20260227',
    '43-20260227',
  ]);
  assert.deepEqual(immutableBaseTagCandidates({ sourceTag: '43', versionLabel: '43.20260227', fedora: '43' }), [
    '43-20260227',
    'latest-20260227',
  ]);
});

test('immutableBaseTagCandidates without a source tag starts at latest', () => {
  assert.deepEqual(immutableBaseTagCandidates({ sourceTag: '', versionLabel: '43.20260227.3', fedora: '43' }), [
    'latest-20260227.3',
    '43-20260227.3',
  ]);
});

test('immutableBaseTagCandidates does not treat 7 or 9 digits as a date', () => {
  assert.deepEqual(immutableBaseTagCandidates({ sourceTag: 'x-2026022', versionLabel: '43.20260227', fedora: '43' }), [
    'x-2026022-20260227',
    'latest-20260227',
    '43-20260227',
  ]);
  assert.equal(
    immutableBaseTagCandidates({ sourceTag: 'x-202602271', versionLabel: '43.20260227', fedora: '43' })[0],
    'x-202602271-20260227',
  );
});

test('immutableBaseTagCandidates rejects malformed version labels with the original message', () => {
  for (const label of [
    '',
    '43',
    '43.2026022',
    '43.20260227.',
    '43.20260227.1.2',
    'v43.20260227',
    '43.20260227a',
    undefined,
  ]) {
    invalid(
      () => immutableBaseTagCandidates({ sourceTag: 'latest', versionLabel: label, fedora: '43' }),
      `Failed to derive immutable base tag from org.opencontainers.image.version=${label ?? ''}`,
    );
  }
});

test('modeTag: a branch run writes under its branch tag, a PR run under its PR tag, a main run under neither', () => {
  assert.equal(modeTag({ mode: 'main', branch: 'feature/x', pr: 5, fedora: '43' }), undefined);
  assert.equal(
    modeTag({ mode: 'branch', branch: 'Feature/X', fedora: '43' }),
    branchTag({ branch: 'Feature/X', fedora: '43' }),
  );
  assert.equal(modeTag({ mode: 'pr', pr: 12, fedora: '43' }), 'pr-12-43');
  // A PR run without a number is refused, as prTag refuses it.
  assert.throws(() => modeTag({ mode: 'pr', fedora: '43' }), PermanentError);
});
