/**
 * The one table of value rules (core/validate.ts): each rule with values that pass and values that
 * fail with their exact message, and the same message wherever a value is refused: `config check`,
 * the pipeline run before any activity (validatePlan) and the git activity at use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rules, checkValue, durationMs, refusal, type RuleName, type ValueRule } from '../../core/validate.ts';
import { parseConfig, formatIssues, ConfigError } from '../../core/config-parse.ts';
import { Lock } from '../../core/lock.ts';
import { validatePlan, type StreamPlan } from '../../core/pipeline.ts';
import { resolveCommit } from '../../activities/git.ts';
import { isPermanentError } from '../../core/errors.ts';
import { imageRefProblem } from '../../core/refs.ts';
import { minimalConfig } from '../support/config-fixture.ts';

const OPTION = 'starts with "-" and would be read as a command-line option; remove the leading "-"';
const META = 'contains shell metacharacters; use only letters, digits and . _ - / : @ + = ,';
const SPACE = 'contains whitespace or control characters; remove them';
const HELPER =
  'uses git\'s "<transport>::<address>" remote-helper form (ext:: and fd:: run commands); give an https://, ssh:// or file:// URL or a path';
const GIT_REF =
  'is not a git ref name (no "..", "@{", "//", ":", "[", no leading "/" or ".", no trailing "/", "." or ".lock"); give a branch, tag or commit such as main';
const TAG = 'a tag is 1-128 characters of [A-Za-z0-9_.-] and cannot start with . or -';
const NOT_DURATION = 'is not a duration; give a whole number and a unit (ms, s, m, h, d) such as 30s, 15m, 24h or 7d';
const HTTP_ONLY = (scheme: string) => `uses the "${scheme}" scheme; only http:// and https:// URLs are allowed here`;

/** Per rule: values that pass, and values that fail with the exact problem. */
const TABLE: Record<RuleName, { pass: string[]; fail: [string, string][] }> = {
  safeToken: {
    pass: ['main', 'feature/x-1', 'a@b:c+d=e,f'],
    fail: [
      ['', 'is empty; set it to a non-empty value'],
      ['-x', OPTION],
      ['a b', SPACE],
      ['a\nb', SPACE],
      ['$(id)', META],
      ['x'.repeat(513), 'is longer than 512 characters; shorten it'],
    ],
  },
  recipeLocation: {
    pass: [
      'https://github.com/o/r.git',
      'ssh://git@h/o/r.git',
      'git@github.com:o/r.git',
      'file:///srv/r.git',
      '/srv/r',
    ],
    fail: [
      ['--upload-pack=touch%20/tmp/x', 'starts with "-", so git would read it as an option'],
      ['-uupload-pack=x', 'starts with "-", so git would read it as an option'],
      ['ext::sh -c touch% /tmp/x', HELPER],
      ['fd::17', HELPER],
      ['https::example.com/r', HELPER],
      [
        'gopher://h/r',
        'uses the "gopher" transport; use one of https://, http://, ssh://, git://, file://, user@host:path or a path',
      ],
      ['/srv/r;id', META],
    ],
  },
  gitRef: {
    pass: ['main', 'v2.4.4', 'feature/x', 'a'.repeat(40)],
    fail: [
      ['--upload-pack=x', OPTION],
      ['-x', OPTION],
      ['a..b', GIT_REF],
      ['main.lock', GIT_REF],
      ['refs//x', GIT_REF],
      ['main:evil', GIT_REF],
      ['main^{}', META],
    ],
  },
  imageRef: {
    pass: ['ghcr.io/ublue-os/kinoite-main:latest', '127.0.0.1:5000/a/b@sha256:' + 'a'.repeat(64), 'fedora:43'],
    fail: [
      [
        'ghcr.io/Owner/x:latest',
        'has uppercase letters in repository component "Owner"; repository names must be lowercase',
      ],
      ['ghcr.io/a//b', 'has an empty repository path component; use registry/repository[:tag][@digest]'],
      ['ghcr.io/a@sha256:abc', 'has an invalid digest "sha256:abc"; use sha256: followed by 64 lowercase hex digits'],
      ['ghcr.io/a:-x', `has an invalid tag "-x"; ${TAG}`],
      [
        'docker://ghcr.io/a',
        'has a transport or URL prefix; drop the prefix (e.g. docker://) and give registry/repository[:tag][@digest]',
      ],
      ['ghcr.io/a;rm', 'contains shell metacharacters; use a plain reference such as ghcr.io/owner/name:tag'],
    ],
  },
  repository: {
    pass: ['ghcr.io/o/kinoite-zfs', '127.0.0.1:5000/o/c'],
    fail: [
      ['127.0.0.1:5000/o/c:5000', 'has a tag or digest; give the repository alone, e.g. ghcr.io/owner/kinoite-zfs'],
      [
        'ghcr.io/o/-s',
        'has an invalid repository component "-s"; use lowercase letters and digits separated by . _ __ or -',
      ],
    ],
  },
  tag: {
    pass: ['latest', '43', 'stable-7-abcdef0'],
    fail: [
      ['.x', `is not a valid OCI tag; ${TAG}`],
      ['a'.repeat(129), `is not a valid OCI tag; ${TAG}`],
    ],
  },
  tagPattern: {
    pass: ['latest', '{fedora}', 'stable-{fedora}'],
    fail: [
      [
        '{fedora',
        `is not a valid tag pattern; ${TAG}, and {fedora} may stand for the Fedora version, e.g. latest or {fedora}`,
      ],
      [
        '-{fedora}',
        `is not a valid tag pattern; ${TAG}, and {fedora} may stand for the Fedora version, e.g. latest or {fedora}`,
      ],
    ],
  },
  tagPrefix: {
    pass: ['main', 'pr-12'],
    fail: [
      [
        'Main',
        'is not a tag prefix; use 1-41 lowercase letters, digits, . _ - starting with a letter or digit, e.g. main',
      ],
    ],
  },
  registryHost: {
    pass: ['127.0.0.1:5000', 'registry.local', 'localhost:443'],
    fail: [
      ['h:99999', 'is not a registry host; use host or host:port (port 1-65535), e.g. 127.0.0.1:5000'],
      ['http://h', 'is not a registry host; use host or host:port (port 1-65535), e.g. 127.0.0.1:5000'],
    ],
  },
  listenAddress: {
    pass: ['127.0.0.1:9464', '0.0.0.0:9090', 'localhost:1', '[::1]:9464'],
    fail: [
      ['9464', 'is not host:port; give an address such as 127.0.0.1:9464 or 0.0.0.0:9464'],
      ['127.0.0.1:0', 'has port 0; a port is 1 to 65535'],
      ['127.0.0.1:70000', 'has port 70000; a port is 1 to 65535'],
      ['http://127.0.0.1:9464', 'is not host:port; give an address such as 127.0.0.1:9464 or 0.0.0.0:9464'],
    ],
  },
  httpUrl: {
    pass: ['https://api.github.com/repos/openzfs/zfs/releases', 'http://127.0.0.1:8080/r.json'],
    fail: [
      ['file:///etc/passwd', HTTP_ONLY('file')],
      ['javascript:alert(1)', HTTP_ONLY('javascript')],
      ['ftp://h/r.json', HTTP_ONLY('ftp')],
      ['--x', 'is not a URL; give an http:// or https:// URL such as https://example.com/path'],
    ],
  },
  webhookUrl: {
    pass: ['https://hooks.example.com/services/T/B/SECRET'],
    fail: [['ftp://h/hook?token=SECRET', HTTP_ONLY('ftp')]],
  },
  releaseUrlTemplate: {
    pass: ['https://github.com/openzfs/zfs/releases/download/{tag}/zfs-{version}.tar.gz'],
    fail: [
      ['file:///srv/{tag}/META', HTTP_ONLY('file')],
      ['https://h/{tag}/{name}.tar.gz', 'has an unknown placeholder "{name}"; only {tag} and {version} are expanded'],
    ],
  },
  duration: {
    pass: ['30s', '500ms', '72h', '3650d'],
    fail: [
      ['3 hours', NOT_DURATION],
      ['0s', 'is zero; give a duration longer than 0 such as 30s'],
      ['3651d', 'is longer than 3650d (ten years); give a shorter duration'],
      ['99999999999999999999d', NOT_DURATION],
    ],
  },
  recipePath: {
    pass: ['recipes', 'a/b', ''],
    fail: [
      ['../etc', 'leaves the repository; give a folder inside it (no .. and no leading /)'],
      ['/etc', 'leaves the repository; give a folder inside it (no .. and no leading /)'],
      ['a b', 'is not a folder path; use letters, digits and . _ - / relative to the repository root, e.g. recipes'],
    ],
  },
  pinnedImageRef: {
    pass: [`ghcr.io/ublue-os/kinoite-main@sha256:${'5c'.repeat(32)}`, `127.0.0.1:5000/b@sha256:${'a'.repeat(64)}`],
    fail: [
      [
        'ghcr.io/ublue-os/kinoite-main:latest',
        'is not pinned by digest; give repository@sha256:<64 hex digits>, e.g. the base_image_pinned of a build-inputs.json',
      ],
      [`x@sha256:${'a'.repeat(63)}`, imageRefProblem(`x@sha256:${'a'.repeat(63)}`)!],
    ],
  },
  gitCommit: {
    pass: ['9d13b6950811cdaae2e8ab748c85c5da35810ae3'],
    fail: [
      ['9d13b69', 'is not a full commit id; give the 40 lowercase hex digits of the commit (git rev-parse <ref>)'],
      ['main', 'is not a full commit id; give the 40 lowercase hex digits of the commit (git rev-parse <ref>)'],
      [
        '9D13B6950811CDAAE2E8AB748C85C5DA35810AE3',
        'is not a full commit id; give the 40 lowercase hex digits of the commit (git rev-parse <ref>)',
      ],
    ],
  },
  taskQueue: {
    pass: ['kinoite-zfs-build', 'kinoite-zfs-build-aarch64', 'Build_2.x'],
    fail: [
      ['-build', 'is not a task queue name; use letters, digits, ".", "_" and "-" (such as kinoite-zfs-build-aarch64)'],
      [
        'build queue',
        'is not a task queue name; use letters, digits, ".", "_" and "-" (such as kinoite-zfs-build-aarch64)',
      ],
      ['', 'is not a task queue name; use letters, digits, ".", "_" and "-" (such as kinoite-zfs-build-aarch64)'],
    ],
  },
  zfsLine: {
    pass: ['2.4', '2.10'],
    fail: [['2.4|x', 'is not a release line; give major.minor such as 2.4']],
  },
};

test('every rule of the table has passing and failing values here', () => {
  assert.deepEqual(Object.keys(TABLE).sort(), Object.keys(Rules).sort());
  for (const [name, { pass, fail }] of Object.entries(TABLE)) assert.ok(pass.length && fail.length, name);
});

for (const [name, { pass, fail }] of Object.entries(TABLE) as [RuleName, (typeof TABLE)[RuleName]][]) {
  test(`rule ${name}: passes its good values and refuses its bad ones with the exact message`, () => {
    for (const v of pass) {
      assert.equal(refusal(name, v), undefined, v);
      assert.equal(checkValue(name, v, 'f'), v);
    }
    for (const [v, problem] of fail) {
      const quoted = (Rules[name] as ValueRule).conceal
        ? JSON.stringify(`${new URL(v).protocol}//${new URL(v).host}/…`)
        : JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}…` : v);
      assert.equal(refusal(name, v), `${quoted} ${problem}`, v);
      assert.throws(
        () => checkValue(name, v, 'some.field'),
        (e: Error) =>
          isPermanentError(e) && e.type === 'InvalidInput' && e.message === `some.field: ${quoted} ${problem}`,
        v,
      );
    }
  });
}

test('a webhook URL is quoted by scheme and host only: its path may hold a token', () => {
  assert.doesNotMatch(refusal('webhookUrl', 'ftp://h/hook?token=SECRET')!, /SECRET/);
});

test('durationMs reads the units and refuses what the duration rule refuses, naming the field', () => {
  assert.equal(durationMs('500ms'), 500);
  assert.equal(durationMs('72h'), 259_200_000);
  assert.throws(() => durationMs('0s', 'smoke.bootTimeout'), /^PermanentError: smoke\.bootTimeout: "0s" is zero/);
});

/** Sets `path` (dot-separated, under the stream) of an object to `value`. */
function set(obj: Record<string, any>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = obj;
  keys.slice(0, -1).forEach((k, i) => (o = o[k] ??= /^\d+$/.test(keys[i + 1]!) ? [] : {}));
  o[keys.at(-1)!] = value;
}

/** Hostile values a user could write, each with the rule that refuses it. */
const HOSTILE: [string, RuleName, string][] = [
  ['recipe.git', 'recipeLocation', '--upload-pack=touch%20/tmp/pwned'],
  ['recipe.git', 'recipeLocation', 'ext::sh'],
  ['recipe.ref', 'gitRef', '--upload-pack=x'],
  ['recipe.ref', 'gitRef', 'a..b'],
  ['recipe.path', 'recipePath', '../../etc'],
  ['baseImage', 'imageRef', '127.0.0.1:5000/Owner/kinoite:latest'],
  ['builderImage', 'imageRef', '127.0.0.1:5000/a@sha256:abc'],
  ['images.candidate', 'repository', '127.0.0.1:5000/o/c:5000'],
  ['images.stableTags.0', 'tagPattern', '.x'],
  ['images.akmodsTagPrefix', 'tagPrefix', '-main'],
  ['zfs.line', 'zfsLine', '2.4|x'],
  ['zfs.source.releasesUrl', 'httpUrl', 'ftp://h/releases.json'],
  ['zfs.source.metaUrl', 'releaseUrlTemplate', 'file:///etc/{tag}'],
  ['zfs.source.tarballUrl', 'releaseUrlTemplate', 'https://h/{x}.tar.gz'],
  ['zfs.recheckEvery', 'duration', '0m'],
  ['promotion.timeout', 'duration', '99999999999999999999d'],
  ['smoke.bootTimeout', 'duration', '5 min'],
];

test('config check and the run before any activity refuse each hostile value with the same message', () => {
  for (const [field, rule, value] of HOSTILE) {
    const expected = refusal(rule, value);
    assert.ok(expected, `${field}=${value} passes rule ${rule}`);
    const c = minimalConfig();
    set(c.streams.s, field, value);
    assert.throws(
      () => parseConfig(c, 'x.yaml'),
      (e: ConfigError) => e.problems.includes(`streams.s.${field}: ${expected}`),
      `config check: ${field}=${value}`,
    );
    const { signing: _s, schedule: _c, notify: _n, ...plan } = parseConfig(minimalConfig(), 'x.yaml').streams.s;
    const hostile = structuredClone(plan) as Record<string, any>;
    set(hostile, field, value);
    assert.throws(
      () => validatePlan(hostile as StreamPlan),
      (e: Error) => isPermanentError(e) && e.message === `${field}: ${expected}`,
      `validatePlan: ${field}=${value}`,
    );
  }
});

test('a webhook URL config check refuses is quoted without its path', () => {
  const c = minimalConfig();
  c.streams.s.notify = [{ url: 'ftp://hooks.example.com/T/B/SECRET' }];
  assert.throws(
    () => parseConfig(c, 'x.yaml'),
    (e: ConfigError) =>
      e.problems.includes(`streams.s.notify.0.url: ${refusal('webhookUrl', 'ftp://hooks.example.com/T/B/SECRET')}`) &&
      !e.message.includes('SECRET'),
  );
});

test("the git activity refuses a hostile recipe location or ref with the config check's words, before git runs", async () => {
  for (const [field, rule, value] of HOSTILE.filter(([f]) => f === 'recipe.git' || f === 'recipe.ref')) {
    const [url, ref] = field === 'recipe.git' ? [value, 'main'] : ['/srv/recipe.git', value];
    await assert.rejects(
      resolveCommit(url, ref),
      (e: Error) => isPermanentError(e) && e.message === `${field}: ${refusal(rule, value)}`,
      value,
    );
  }
});

test('a replay lock is read with the same rules: a hostile ZFS line is refused before anything runs', () => {
  const r = Lock.safeParse({ base_image: `r.io/b@sha256:${'a'.repeat(64)}`, zfs_minor_version: '2.4|x' });
  assert.equal(r.success, false);
  assert.deepEqual(formatIssues(r.error!), [`zfs_minor_version: ${refusal('zfsLine', '2.4|x')}`]);
});
