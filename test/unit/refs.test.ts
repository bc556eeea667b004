import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureType, PermanentError } from '../../core/errors.ts';
import {
  assertSafeToken,
  gitLocationProblem,
  digestRef,
  formatRef,
  isValidDigest,
  isValidTag,
  parseImageRef,
  sourceTagOf,
  tagRef,
} from '../../core/refs.ts';

const D = `sha256:${'ab'.repeat(32)}`;

function invalid(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PermanentError, `expected PermanentError, got ${String(e)}`);
    assert.equal(e.type, FailureType.InvalidInput);
    for (const p of parts) {
      if (typeof p === 'string') assert.ok(e.message.includes(p), `message ${e.message} lacks ${p}`);
      else assert.match(e.message, p);
    }
    return true;
  });
}

test('parseImageRef splits a ghcr reference with a tag', () => {
  assert.deepEqual(parseImageRef('ghcr.io/ublue-os/kinoite-main:43'), {
    registry: 'ghcr.io',
    repository: 'ublue-os/kinoite-main',
    name: 'ghcr.io/ublue-os/kinoite-main',
    tag: '43',
  });
});

test('parseImageRef keeps a registry port and a digest', () => {
  assert.deepEqual(parseImageRef(`localhost:5000/kz/os@${D}`), {
    registry: 'localhost:5000',
    repository: 'kz/os',
    name: 'localhost:5000/kz/os',
    digest: D,
  });
});

test('parseImageRef accepts tag and digest together', () => {
  const r = parseImageRef(`quay.io/fedora/fedora-kinoite:43@${D}`);
  assert.equal(r.tag, '43');
  assert.equal(r.digest, D);
  assert.equal(r.name, 'quay.io/fedora/fedora-kinoite');
});

test('parseImageRef treats localhost without a port as a registry', () => {
  const r = parseImageRef('localhost/kz-rootfs:dev');
  assert.equal(r.registry, 'localhost');
  assert.equal(r.repository, 'kz-rootfs');
});

test('parseImageRef defaults to docker.io and library/ for one component', () => {
  assert.deepEqual(parseImageRef('fedora:43'), {
    registry: 'docker.io',
    repository: 'library/fedora',
    name: 'docker.io/library/fedora',
    tag: '43',
  });
  assert.deepEqual(parseImageRef('danathar/kinoite-zfs'), {
    registry: 'docker.io',
    repository: 'danathar/kinoite-zfs',
    name: 'docker.io/danathar/kinoite-zfs',
  });
});

test('parseImageRef does not treat a plain first component as a registry', () => {
  const r = parseImageRef('owner/name:1');
  assert.equal(r.registry, 'docker.io');
  assert.equal(r.repository, 'owner/name');
});

test('parseImageRef allows separators inside repository components', () => {
  const r = parseImageRef('registry.example.com:443/a.b/c_d/e__f/g--h:v1.2_3-x');
  assert.equal(r.repository, 'a.b/c_d/e__f/g--h');
  assert.equal(r.tag, 'v1.2_3-x');
});

test('parseImageRef names the field and the value when empty', () => {
  invalid(() => parseImageRef('', 'base.image'), 'base.image', '""', 'empty');
});

test('parseImageRef rejects whitespace, newlines and control characters', () => {
  for (const v of [
    'ghcr.io/a/b:1 ',
    ' ghcr.io/a/b',
    'ghcr.io/a/b\n',
    'ghcr.io/a\tb',
    'ghcr.io/a/b\u0000',
    'ghcr.io/a/b\u2028',
  ]) {
    invalid(() => parseImageRef(v, 'image'), 'image', /whitespace or control/);
  }
});

test('parseImageRef rejects every shell metacharacter', () => {
  for (const ch of [';', '|', '&', '$', '`', '<', '>', '(', ')', '{', '}', "'", '"', '\\', '*', '?', '!', '#', '~']) {
    invalid(() => parseImageRef(`ghcr.io/a/b${ch}c:1`, 'image'), 'image', /shell metacharacters/);
  }
  invalid(() => parseImageRef('ghcr.io/a/b:$(rm -rf /)', 'image'), 'image');
});

test('parseImageRef rejects uppercase in the repository', () => {
  invalid(() => parseImageRef('ghcr.io/Danathar/kinoite-zfs:latest', 'image'), 'image', 'Danathar', /uppercase/);
  invalid(() => parseImageRef('Fedora:43'), /uppercase/);
});

test('parseImageRef rejects bad tags', () => {
  invalid(() => parseImageRef('ghcr.io/a/b:'), /invalid tag/);
  invalid(() => parseImageRef('ghcr.io/a/b:-x'), /invalid tag/);
  invalid(() => parseImageRef('ghcr.io/a/b:.x'), /invalid tag/);
  invalid(() => parseImageRef(`ghcr.io/a/b:${'a'.repeat(129)}`), /invalid tag/);
  invalid(() => parseImageRef('ghcr.io/a/b:x+y'), /invalid tag/);
});

test('parseImageRef accepts a tag of exactly 128 characters', () => {
  assert.equal(parseImageRef(`ghcr.io/a/b:${'a'.repeat(128)}`).tag?.length, 128);
});

test('parseImageRef rejects bad digests', () => {
  invalid(() => parseImageRef('ghcr.io/a/b@sha256:abc'), /invalid digest/);
  invalid(() => parseImageRef(`ghcr.io/a/b@sha256:${'AB'.repeat(32)}`), /invalid digest/);
  invalid(() => parseImageRef(`ghcr.io/a/b@sha512:${'ab'.repeat(32)}`), /invalid digest/);
  invalid(() => parseImageRef(`ghcr.io/a/b@${D}@${D}`), /invalid digest/);
  invalid(() => parseImageRef('ghcr.io/a/b@'), /invalid digest/);
});

test('parseImageRef rejects empty components and transport prefixes', () => {
  invalid(() => parseImageRef('ghcr.io//b:1'), /empty repository/);
  invalid(() => parseImageRef('ghcr.io/a/b/'), /empty repository/);
  invalid(() => parseImageRef('/a/b'), /empty repository/);
  invalid(() => parseImageRef('docker://ghcr.io/a/b:1'), /transport/);
  invalid(() => parseImageRef(':1'), /empty repository/);
});

test('parseImageRef rejects invalid repository components and registries', () => {
  invalid(() => parseImageRef('ghcr.io/a/-b'), /invalid repository component/);
  invalid(() => parseImageRef('ghcr.io/a/b.'), /invalid repository component/);
  invalid(() => parseImageRef('ghcr.io/a/b___c'), /invalid repository component/);
  invalid(() => parseImageRef('ghcr.io:99999x/a'), /invalid tag|invalid registry/);
  invalid(() => parseImageRef('-bad.io/a'), /invalid registry/);
});

test('parseImageRef rejects names longer than 255 characters', () => {
  invalid(() => parseImageRef(`ghcr.io/${'a'.repeat(250)}`), /longer than 255/);
});

test('parseImageRef error messages quote hostile values safely', () => {
  try {
    parseImageRef('ghcr.io/a/b\n; echo pwned', 'image');
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof PermanentError);
    assert.ok(!e.message.includes('\n'), 'message must not contain a raw newline');
  }
});

test('formatRef round-trips parsed references', () => {
  for (const r of ['ghcr.io/a/b:1', `localhost:5000/x/y@${D}`, `quay.io/a/b:1@${D}`, 'docker.io/library/fedora']) {
    assert.equal(formatRef(parseImageRef(r)), r);
  }
  assert.equal(formatRef(parseImageRef('fedora:43')), 'docker.io/library/fedora:43');
});

test('digestRef and tagRef build references and validate their parts', () => {
  assert.equal(digestRef('ghcr.io/a/b', D), `ghcr.io/a/b@${D}`);
  assert.equal(tagRef('ghcr.io/a/b', 'main-43'), 'ghcr.io/a/b:main-43');
  invalid(() => digestRef('ghcr.io/a/b', 'sha256:nope'), 'digest');
  invalid(() => tagRef('ghcr.io/a/b', 'bad tag'), 'tag');
  invalid(() => tagRef('ghcr.io/a/b;x', 'ok'), 'image name');
  invalid(() => digestRef('', D), 'image name');
});

test('isValidTag follows the OCI tag grammar', () => {
  for (const t of ['a', '_', '0', 'latest', 'main-43', 'v1.2.3_x', 'a'.repeat(128)])
    assert.equal(isValidTag(t), true, t);
  for (const t of ['', '.a', '-a', 'a b', 'a/b', 'a:b', 'a@b', 'ä', 'a'.repeat(129), 'a\n']) {
    assert.equal(isValidTag(t), false, JSON.stringify(t));
  }
});

test('isValidDigest accepts only sha256 with 64 lowercase hex digits', () => {
  assert.equal(isValidDigest(D), true);
  assert.equal(isValidDigest(`sha256:${'0'.repeat(63)}`), false);
  assert.equal(isValidDigest(`sha256:${'0'.repeat(65)}`), false);
  assert.equal(isValidDigest(`SHA256:${'0'.repeat(64)}`), false);
  assert.equal(isValidDigest(`sha256:${'g'.repeat(64)}`), false);
  assert.equal(isValidDigest(`${D}\n`), false);
});

test('assertSafeToken returns safe tokens unchanged', () => {
  for (const v of ['main', 'feature/my-branch', 'refs/heads/x', 'v1.2.3', 'a@b:c+d=e,f', '0123abc']) {
    assert.equal(assertSafeToken(v, 'branch'), v);
  }
});

test('assertSafeToken rejects whitespace, metacharacters, empty and option-like values', () => {
  const bad = [
    '',
    ' ',
    'a b',
    'a\nb',
    'a\tb',
    '$(rm -rf /)',
    '`id`',
    'a;b',
    'a|b',
    'a&b',
    "a'b",
    'a"b',
    'a\\b',
    'a*',
    'a?',
    'a!',
    '#a',
    '~a',
    '-x',
    '--upload-pack=touch',
    'a\u0007',
  ];
  for (const v of bad) invalid(() => assertSafeToken(v, 'git.ref'), 'git.ref');
});

test('sourceTagOf takes the part after the last colon unless it holds a slash', () => {
  assert.equal(sourceTagOf('ghcr.io/ublue-os/kinoite-main:latest'), 'latest');
  assert.equal(sourceTagOf('ghcr.io/ublue-os/kinoite-main:43-20260227'), '43-20260227');
  assert.equal(sourceTagOf('localhost:5000/kz/os'), '');
  assert.equal(sourceTagOf('localhost:5000/kz/os:1'), '1');
  assert.equal(sourceTagOf('ghcr.io/a/b'), '');
});

test('sourceTagOf is empty for digest references', () => {
  assert.equal(sourceTagOf(`ghcr.io/a/b@${D}`), '');
  assert.equal(sourceTagOf(`ghcr.io/a/b:1@${D}`), '');
});

test('gitLocationProblem accepts URLs of the allowed transports, scp-like locations and paths, and nothing else', () => {
  for (const ok of [
    'https://h/o/r.git',
    'HTTP://h/r',
    'ssh://git@h/r',
    'git://h/r',
    'file:///r',
    'git@h:o/r',
    '/srv/r',
    'r',
  ])
    assert.equal(gitLocationProblem(ok), undefined, ok);
  for (const bad of [
    '-uupload-pack=x',
    '--config=x',
    'ext::sh -c id',
    'fd::3',
    'foo::bar',
    'gopher://h/r',
    'ftp://h/r',
  ])
    assert.notEqual(gitLocationProblem(bad), undefined, bad);
});
