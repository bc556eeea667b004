/**
 * The pure argument builders of the tool wrappers: arrays only, secrets never in arguments,
 * plain-HTTP flags only where asked, and the runner's redaction and child environment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import { attemptLocalName, builderRunArgs, composeBuildArgs, pullArgs, pushArgs } from '../../activities/podman.ts';
import { attestArgs, signArgs, verifyArgs, verifyAttestationArgs, verifyCommand } from '../../activities/cosign.ts';
import { lsRemoteArgs } from '../../activities/git.ts';
import { releaseUrl } from '../../activities/release-source.ts';
import { childEnv, describeCommand, redact } from '../../activities/run-tool.ts';

test('the builder run mounts recipe and source read-only, passes only kernel, ZFS and Fedora versions, and has the network unless told none', () => {
  const a = builderRunArgs({
    image: 'r/b@sha256:x',
    recipeDir: '/w/r',
    srcDir: '/w/s',
    outDir: '/w/o',
    kernel: 'k1',
    zfsVersion: '2.4.4',
    fedora: '43',
    name: 'n',
  });
  assert.deepEqual(a.slice(0, 3), ['run', '--rm', '--pull=never']);
  assert.ok(!a.some((x) => x.startsWith('--network')));
  assert.ok(a.includes('/w/r:/recipe:ro') && a.includes('/w/s:/src:ro') && a.includes('/w/o:/out'));
  assert.ok(a.includes('KERNEL_RELEASE=k1') && a.includes('ZFS_VERSION=2.4.4') && a.includes('FEDORA_VERSION=43'));
  assert.ok(
    !a.includes('ZFS_BUILD_USERSPACE=1') &&
      !a.includes('ZFS_LINUX_EXPERIMENTAL=1') &&
      !a.some((x) => x.endsWith(':/ccache')),
  );
  assert.deepEqual(a.slice(-3), ['r/b@sha256:x', '/bin/sh', '/recipe/build-akmods.sh']);
  const b = builderRunArgs({
    image: 'r/b@sha256:x',
    recipeDir: '/w/r',
    srcDir: '/w/s',
    outDir: '/w/o',
    kernel: 'k1',
    zfsVersion: '2.4.4',
    fedora: '43',
    name: 'n',
    network: 'none',
    ccacheDir: '/c',
    userspace: true,
    experimental: true,
  });
  assert.deepEqual(b.slice(0, 3), ['run', '--rm', '--network=none']);
  assert.ok(b.includes('/c:/ccache') && b.includes('ZFS_BUILD_USERSPACE=1') && b.includes('ZFS_LINUX_EXPERIMENTAL=1'));
});

test('compose passes build arguments and labels as separate arguments and TLS flags only when given', () => {
  const a = composeBuildArgs({
    contextDir: '/c',
    tag: 'localhost/x:t',
    buildArgs: { BASE_IMAGE: 'b@sha256:1' },
    labels: { 'a.b': 'v w' },
    tls: [],
  });
  assert.ok(!a.includes('--tls-verify=false'));
  assert.ok(a.includes('--layers=false'), 'no layer cache: its steps would stay behind as dangling images');
  assert.deepEqual(a.slice(a.indexOf('--build-arg'), a.indexOf('--build-arg') + 2), [
    '--build-arg',
    'BASE_IMAGE=b@sha256:1',
  ]);
  assert.deepEqual(a.slice(a.indexOf('--label'), a.indexOf('--label') + 2), ['--label', 'a.b=v w']);
  assert.ok(
    composeBuildArgs({ contextDir: '/c', tag: 't', buildArgs: {}, labels: {}, tls: ['--tls-verify=false'] }).includes(
      '--tls-verify=false',
    ),
  );
  assert.deepEqual(pullArgs('r/x@sha256:1', []), ['pull', '--quiet', 'r/x@sha256:1']);
  assert.deepEqual(pushArgs({ local: 'l', dest: 'r/x:t', digestFile: '/d', tls: [] }), [
    'push',
    '--quiet',
    '--digestfile',
    '/d',
    'l',
    'docker://r/x:t',
  ]);
});

test('local image names of composes and akmods builds are unique per run, activity and attempt, and valid image tags', async () => {
  // Two streams composing the same recipe commit for the same Fedora once shared one local name,
  // and one run's clean-up removed the image the other was pushing.
  const nameIn = (info: ConstructorParameters<typeof MockActivityEnvironment>[0]) =>
    new MockActivityEnvironment(info).run(async () =>
      attemptLocalName('localhost/kinoite-zfs-candidate-build:'),
    ) as Promise<string>;
  const run = (runId: string) => ({ workflowId: 'stream/x/run-1', runId });
  const names = await Promise.all([
    nameIn({ workflowExecution: run('01a2377f-983e-7b96-ac0f-56122d795b36'), activityId: '9', attempt: 1 }),
    nameIn({ workflowExecution: run('01a2377f-983e-7b96-ac0f-56122d795b37'), activityId: '9', attempt: 1 }),
    nameIn({ workflowExecution: run('01a2377f-983e-7b96-ac0f-56122d795b36'), activityId: '9', attempt: 2 }),
    nameIn({ workflowExecution: run('01a2377f-983e-7b96-ac0f-56122d795b36'), activityId: '10', attempt: 1 }),
  ]);
  assert.equal(new Set(names).size, names.length, names.join(' '));
  for (const n of names) assert.match(n, /^localhost\/kinoite-zfs-candidate-build:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/);
  assert.match(
    attemptLocalName('kz-'),
    /^kz-standalone-\d+-\d+$/,
    'outside an activity: unique per process and moment',
  );
});

test('cosign arguments name the key reference, never a password, and stay offline when the stream turns the transparency log off', () => {
  const s = signArgs({ ref: 'r/x@sha256:1', key: '/k', insecure: false, tlog: false });
  assert.deepEqual(s, ['sign', '--yes', '--key', '/k', '--tlog-upload=false', 'r/x@sha256:1']);
  assert.ok(
    verifyArgs({ ref: 'r', publicKeyFile: '/p', insecure: true, tlog: false }).includes('--allow-insecure-registry'),
  );
  assert.ok(
    verifyArgs({ ref: 'r', publicKeyFile: '/p', insecure: false, tlog: false }).includes('--insecure-ignore-tlog'),
  );
  assert.deepEqual(attestArgs({ ref: 'r', key: '/k', predicateFile: '/f', insecure: false, tlog: false }), [
    'attest',
    '--yes',
    '--key',
    '/k',
    '--type',
    'slsaprovenance1',
    '--predicate',
    '/f',
    '--tlog-upload=false',
    'r',
  ]);
  assert.deepEqual(verifyAttestationArgs({ ref: 'r', publicKeyFile: '/p', insecure: false, tlog: false }), [
    'verify-attestation',
    '--key',
    '/p',
    '--type',
    'slsaprovenance1',
    '--insecure-ignore-tlog',
    'r',
  ]);
});

test("with the transparency log on (cosign's default) no cosign command turns it off or ignores it", () => {
  const all = [
    signArgs({ ref: 'r/x@sha256:1', key: 'env://SIGNING_SECRET', insecure: false, tlog: true }),
    verifyArgs({ ref: 'r/x@sha256:1', publicKeyFile: '/p', insecure: false, tlog: true }),
    attestArgs({ ref: 'r/x@sha256:1', key: '/k', predicateFile: '/f', insecure: true, tlog: true }),
    verifyAttestationArgs({ ref: 'r/x@sha256:1', publicKeyFile: '/p', insecure: true, tlog: true }),
  ];
  for (const args of all) {
    assert.ok(!args.some((a) => /tlog/.test(a)), `no tlog flag in ${args.join(' ')}`);
  }
  assert.deepEqual(all[0], ['sign', '--yes', '--key', 'env://SIGNING_SECRET', 'r/x@sha256:1']);
  assert.deepEqual(all[1], ['verify', '--key', '/p', '--output', 'json', 'r/x@sha256:1']);
});

test('the printed verify command has exactly the flags the stream needs, quoted for a shell', () => {
  const ref = 'ghcr.io/o/kinoite-zfs@sha256:ab';
  assert.equal(
    verifyCommand({ ref, publicKeyFile: 'cosign.pub', insecure: false, tlog: true }),
    `cosign verify --key cosign.pub ${ref}`,
  );
  assert.equal(
    verifyCommand({ ref: '127.0.0.1:5000/k@sha256:ab', publicKeyFile: '/s/cosign.pub', insecure: true, tlog: false }),
    'cosign verify --key /s/cosign.pub --insecure-ignore-tlog --allow-insecure-registry 127.0.0.1:5000/k@sha256:ab',
  );
  assert.equal(
    verifyCommand({ ref, publicKeyFile: "/my keys/bob's.pub", insecure: false, tlog: true }),
    `cosign verify --key '/my keys/bob'\\''s.pub' ${ref}`,
  );
});

test('git ls-remote separates options from the URL', () => {
  assert.deepEqual(lsRemoteArgs('--upload-pack=evil', 'main').slice(0, 3), ['ls-remote', '--', '--upload-pack=evil']);
});

test('release URLs expand and escape tag and version', () => {
  assert.equal(
    releaseUrl('https://x/{tag}/zfs-{version}.tar.gz', { tag: 'zfs-2.4.4', version: '2.4.4' }),
    'https://x/zfs-2.4.4/zfs-2.4.4.tar.gz',
  );
  assert.equal(releaseUrl('https://x/{tag}', { tag: '../a b', version: '' }), 'https://x/..%2Fa%20b');
});

test('the runner redacts secrets and keeps secret-looking variables away from children', () => {
  assert.equal(redact('password=hunter22 and hunter22', ['hunter22']), 'password=*** and ***');
  assert.equal(describeCommand({ tool: 'cosign', args: ['sign', 'a b'], secrets: [] }), 'cosign sign "a b"');
  const env = childEnv(
    { PATH: '/bin', TEMPORAL_API_KEY: 'k', COSIGN_PASSWORD: 'p', GITHUB_TOKEN: 't', HOME: '/h' },
    { COSIGN_PASSWORD: 'given' },
  );
  assert.deepEqual(env, { PATH: '/bin', HOME: '/h', COSIGN_PASSWORD: 'given' });
});
