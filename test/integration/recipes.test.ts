/**
 * Integration test for recipes/: the akmods builder script and the OS Containerfile, run for real
 * with podman, buildah and rpm against a Debian rootfs (builder and base image stand-in).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { makeZfsSourceTarball, renderMeta } from '../../world/zfs-source.ts';
import { containersConfFile } from '../../world/tools.ts';
import { ensureRootfsImage } from '../../world/rootfs.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RECIPES = join(ROOT, 'recipes');
// The world's containers.conf (runc, ulimits) and its cached Debian root filesystem image.
const ENV = { CONTAINERS_CONF: await containersConfFile() };

const ZFS_VERSION = '2.4.4';
const FEDORA = '43';
const K_NEW = '6.18.3-200.fc43.x86_64';
const K_OLD = '6.17.7-300.fc43.x86_64';
const K_UNCACHED = '6.18.4-200.fc43.x86_64';
const STABLE_REPO = 'registry.example.test/kz/kinoite-zfs';
const CANDIDATE_REPO = 'registry.example.test/kz/kinoite-zfs-candidate';

const skip = false;

// Unique per run so parallel runs and other users of the same podman storage do not collide.
const RUN = `${process.pid}`;
const created: string[] = [];
// Intermediate images `podman build` committed (its `--> <id>` lines); removed after the suite
// without --force, so an image someone else tagged or uses in the meantime stays.
const intermediates = new Set<string>();

async function podman(args: string[]) {
  return execa('podman', args, { env: ENV });
}

async function buildah(args: string[]) {
  return execa('buildah', args, { env: ENV });
}

/** The world's root filesystem image (made and imported once per machine). */
async function rootfsImage(): Promise<string> {
  return ensureRootfsImage({ containersConf: ENV.CONTAINERS_CONF });
}

/** Returns `<name>@sha256:…` for a local image, the form the pipeline passes as build args. */
async function digestRef(ref: string): Promise<string> {
  const { stdout } = await podman(['image', 'inspect', '--format', '{{.Digest}}', ref]);
  return `${ref.replace(/:[^/:]+$/, '')}@${stdout.trim()}`;
}

/** Commits a container made from `from` after creating one `/usr/lib/modules/<k>/` per kernel. */
async function baseImage(from: string, name: string, kernels: string[]): Promise<string> {
  const { stdout: ctr } = await buildah(['from', '--pull-never', from]);
  try {
    await buildah(['run', ctr.trim(), '--', 'mkdir', '-p', ...kernels.map((k) => `/usr/lib/modules/${k}`)]);
    const ref = `localhost/${name}:${RUN}`;
    await buildah(['commit', '--quiet', ctr.trim(), ref]);
    created.push(ref);
    return digestRef(ref);
  } finally {
    await buildah(['rm', ctr.trim()]);
  }
}

/** The exact akmods invocation the pipeline runs (see recipes/README.md). */
function runAkmods(opts: { builder: string; srcDir: string; outDir: string; kernel: string; userspace?: boolean }) {
  return execa(
    'podman',
    [
      'run',
      '--rm',
      '--network=none',
      '-v',
      `${join(RECIPES, 'akmods')}:/recipe:ro`,
      '-v',
      `${opts.srcDir}:/src:ro`,
      '-v',
      `${opts.outDir}:/out`,
      '-e',
      `KERNEL_RELEASE=${opts.kernel}`,
      '-e',
      `ZFS_VERSION=${ZFS_VERSION}`,
      '-e',
      `FEDORA_VERSION=${FEDORA}`,
      ...(opts.userspace === false ? [] : ['-e', 'ZFS_BUILD_USERSPACE=1']),
      opts.builder,
      '/bin/sh',
      '/recipe/build-akmods.sh',
    ],
    { env: ENV, reject: false, all: true },
  );
}

/** The exact compose invocation the pipeline runs, in a copy of recipes/os. */
async function composeOs(opts: { context: string; base: string; akmods: string; tag: string }) {
  const res = await execa(
    'podman',
    [
      'build',
      '--pull=missing',
      '-f',
      'Containerfile',
      '--build-arg',
      `BASE_IMAGE=${opts.base}`,
      '--build-arg',
      `AKMODS_IMAGE=${opts.akmods}`,
      '--build-arg',
      `STABLE_REPO=${STABLE_REPO}`,
      '--build-arg',
      `CANDIDATE_REPO=${CANDIDATE_REPO}`,
      '--label',
      'io.github.danathar.kinoite-zfs.test=recipes',
      '-t',
      opts.tag,
      '.',
    ],
    { cwd: opts.context, env: ENV, reject: false, all: true },
  );
  for (const m of String(res.all).matchAll(/^--> ([0-9a-f]{11,64})$/gm)) intermediates.add(m[1]!);
  return res;
}

function kmodFile(k: string) {
  return `kmod-zfs-${k}-${ZFS_VERSION}-1.fc${FEDORA}.x86_64.rpm`;
}
const ZFS_FILE = `zfs-${ZFS_VERSION}-1.fc${FEDORA}.x86_64.rpm`;

describe('fixture OpenZFS source tarball', () => {
  test('makeZfsSourceTarball writes identical bytes twice and ships the rendered META', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kz-zfs-source-test-'));
    try {
      const values = { version: '2.3.6', linuxMin: '4.18', linuxMax: '6.19' };
      await makeZfsSourceTarball({ ...values, outFile: join(dir, 'a.tar.gz') });
      await new Promise((r) => setTimeout(r, 1100)); // a clock tick must not change the bytes
      await makeZfsSourceTarball({ ...values, outFile: join(dir, 'b.tar.gz') });
      assert.deepEqual(await readFile(join(dir, 'a.tar.gz')), await readFile(join(dir, 'b.tar.gz')));
      const { stdout: meta } = await execa('tar', ['-xzOf', join(dir, 'a.tar.gz'), 'zfs-2.3.6/META']);
      assert.equal(meta + '\n', renderMeta(values));
      assert.match(meta, /^Version:\s+2\.3\.6$/m);
      assert.match(meta, /^Linux-Maximum:\s+6\.19$/m);
      const { stdout: zfsCmd } = await execa('tar', ['-xzOf', join(dir, 'a.tar.gz'), 'zfs-2.3.6/cmd/zfs']);
      assert.match(zfsCmd, /echo "zfs-2\.3\.6"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('renderMeta refuses a version that is not digits and dots', () => {
    assert.throws(
      () => renderMeta({ version: '2.4.4; rm', linuxMin: '4.18', linuxMax: '7.2' }),
      /Invalid ZFS fixture version/,
    );
  });
});

describe('recipes (podman, rpmbuild)', { skip }, () => {
  let work = '';
  let builder = '';
  let akmodsRef = '';
  let osContext = '';
  let twoKernelBase = '';
  const outDirs = new Map<string, string>();
  const akmodsLogs = new Map<string, string>();

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'kz-recipes-test-'));
    const srcDir = join(work, 'src');
    await makeZfsSourceTarball({
      version: ZFS_VERSION,
      linuxMin: '4.18',
      linuxMax: '7.2',
      outFile: join(srcDir, `zfs-${ZFS_VERSION}.tar.gz`),
    });
    builder = await rootfsImage();

    for (const kernel of [K_NEW, K_OLD]) {
      const outDir = join(work, `out-${kernel}`);
      await mkdir(outDir);
      const res = await runAkmods({ builder, srcDir, outDir, kernel });
      assert.equal(res.exitCode, 0, `build-akmods.sh failed for ${kernel}:\n${res.all}`);
      outDirs.set(kernel, outDir);
      akmodsLogs.set(kernel, String(res.all));
    }

    // Merge both per-kernel outputs into one FROM-scratch akmods cache image, as the pipeline does.
    const merged = join(work, 'merged', 'rpms', 'kmods', 'zfs');
    await mkdir(merged, { recursive: true });
    for (const outDir of outDirs.values()) {
      await cp(join(outDir, 'rpms', 'kmods', 'zfs'), merged, { recursive: true, force: true });
    }
    const { stdout: ctr } = await buildah(['from', 'scratch']);
    try {
      await buildah(['copy', ctr.trim(), join(work, 'merged', 'rpms'), '/rpms']);
      await buildah(['config', '--label', 'io.github.danathar.kinoite-zfs.akmods.cache-format=1', ctr.trim()]);
      const ref = `localhost/kz-recipes-test-akmods:${RUN}`;
      await buildah(['commit', '--quiet', ctr.trim(), ref]);
      created.push(ref);
      akmodsRef = await digestRef(ref);
    } finally {
      await buildah(['rm', ctr.trim()]);
    }

    // The recipe folder as a user would have it: the placeholder key replaced by a real one.
    osContext = join(work, 'os');
    await cp(join(RECIPES, 'os'), osContext, { recursive: true });
    const { publicKey } = generateKeyPairSync('ec', {
      namedCurve: 'prime256v1',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    await writeFile(join(osContext, 'cosign.pub'), publicKey);
    twoKernelBase = await baseImage(builder, 'kz-recipes-test-base', [K_NEW, K_OLD]);
  });

  after(async () => {
    for (const ref of created.reverse()) {
      await execa('podman', ['rmi', '--force', ref], { env: ENV, reject: false });
    }
    // Newest first: a parent layer image cannot go while a child still exists.
    for (const id of [...intermediates].reverse()) {
      await execa('podman', ['rmi', id], { env: ENV, reject: false });
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  test("build-akmods.sh writes one kmod-zfs RPM per kernel holding exactly that kernel's zfs.ko", async () => {
    for (const [kernel, outDir] of outDirs) {
      const dir = join(outDir, 'rpms', 'kmods', 'zfs');
      assert.deepEqual((await readdir(dir)).sort(), [kmodFile(kernel), ZFS_FILE].sort());
      const kmod = join(dir, kmodFile(kernel));
      const { stdout: files } = await execa('rpm', ['-qlp', kmod]);
      assert.deepEqual(files.split('\n'), [
        `/usr/lib/modules/${kernel}/extra/zfs/spl.ko`,
        `/usr/lib/modules/${kernel}/extra/zfs/zfs.ko`,
      ]);
      const { stdout: name } = await execa('rpm', ['-qp', '--qf', '%{NAME} %{VERSION}-%{RELEASE}', kmod]);
      assert.equal(name, `kmod-zfs ${ZFS_VERSION}-1.fc${FEDORA}`);
      assert.match(akmodsLogs.get(kernel) ?? '', /build-akmods: done/);
      // A synthetic release takes the same steps as a real OpenZFS tree: configure, make, package.
      for (const step of ['kmod-configure', 'kmod-build', 'user-configure', 'user-build', 'package']) {
        assert.match(akmodsLogs.get(kernel) ?? '', new RegExp(`build-akmods: time ${step} \\d+s`));
      }
    }
  });

  test('build-akmods.sh without ZFS_BUILD_USERSPACE builds only the kmod', async () => {
    const outDir = join(work, 'out-kmod-only');
    await mkdir(outDir);
    const res = await runAkmods({ builder, srcDir: join(work, 'src'), outDir, kernel: K_OLD, userspace: false });
    assert.equal(res.exitCode, 0, String(res.all));
    assert.deepEqual(await readdir(join(outDir, 'rpms', 'kmods', 'zfs')), [kmodFile(K_OLD)]);
  });

  test('a failing configure names the kernel and quotes the first error line; the output folder stays empty', async () => {
    const tree = join(work, 'broken', `zfs-${ZFS_VERSION}`);
    await mkdir(tree, { recursive: true });
    await writeFile(join(tree, 'FIXTURE'), 'broken fixture\n');
    await writeFile(
      join(tree, 'configure'),
      '#!/bin/sh\necho "checking kernel source version... 9.9"\necho "configure: error: Cannot build against kernel version 9.9. The maximum supported kernel version is 6.12." >&2\nexit 1\n',
      { mode: 0o755 },
    );
    await execa('tar', [
      '-czf',
      join(work, 'broken', `zfs-${ZFS_VERSION}.tar.gz`),
      '-C',
      join(work, 'broken'),
      `zfs-${ZFS_VERSION}`,
    ]);
    const outDir = join(work, 'out-broken');
    await mkdir(outDir);
    const res = await runAkmods({ builder, srcDir: join(work, 'broken'), outDir, kernel: K_NEW });
    assert.notEqual(res.exitCode, 0);
    assert.ok(
      String(res.all).includes(
        `build-akmods: ERROR: configure (kernel modules) failed for kernel ${K_NEW} (zfs ${ZFS_VERSION}): configure: error: Cannot build against kernel version 9.9.`,
      ),
      String(res.all),
    );
    assert.deepEqual(await readdir(outDir), []);
  });

  test('build-akmods.sh writes a zfs userspace RPM with /usr/sbin/zfs and /usr/sbin/zpool', async () => {
    const rpm = join(outDirs.get(K_NEW)!, 'rpms', 'kmods', 'zfs', ZFS_FILE);
    const { stdout: files } = await execa('rpm', ['-qlp', rpm]);
    assert.deepEqual(files.split('\n').sort(), ['/usr/sbin/zfs', '/usr/sbin/zpool']);
    const { stdout: name } = await execa('rpm', ['-qp', '--qf', '%{NAME}', rpm]);
    assert.equal(name, 'zfs');
  });

  test('build-akmods.sh rejects an unsafe kernel release and leaves the output folder empty', async () => {
    const outDir = join(work, 'out-bad');
    await mkdir(outDir);
    const res = await runAkmods({ builder, srcDir: join(work, 'src'), outDir, kernel: '6.18.3;rm -rf /' });
    assert.notEqual(res.exitCode, 0);
    assert.match(String(res.all), /KERNEL_RELEASE .* contains characters outside/);
    assert.deepEqual(await readdir(outDir), []);
  });

  test('the OS Containerfile installs ZFS for every base kernel and trusts both repositories', async () => {
    const tag = `localhost/kz-recipes-test-candidate:${RUN}`;
    const res = await composeOs({ context: osContext, base: twoKernelBase, akmods: akmodsRef, tag });
    assert.equal(res.exitCode, 0, `podman build failed:\n${res.all}`);
    created.push(tag);

    const script = [
      'set -e',
      'rpm -q --qf "%{NAME}\\n" zfs kmod-zfs',
      '/usr/sbin/zfs',
      `grep -h '^extra/zfs/zfs.ko:' /usr/lib/modules/${K_NEW}/modules.dep /usr/lib/modules/${K_OLD}/modules.dep`,
      `modinfo -F vermagic /usr/lib/modules/${K_NEW}/extra/zfs/zfs.ko | cut -d " " -f 1`,
      `modinfo -F vermagic /usr/lib/modules/${K_OLD}/extra/zfs/zfs.ko | cut -d " " -f 1`,
      'echo "rpms-left:$(find / -xdev -name "*.rpm" | wc -l)"',
      'cat /etc/containers/policy.json',
    ].join('\n');
    const { stdout } = await podman(['run', '--rm', '--network=none', tag, '/bin/sh', '-c', script]);
    const [head, policyText] = [stdout.slice(0, stdout.indexOf('{')), stdout.slice(stdout.indexOf('{'))];
    const lines = head.trim().split('\n');
    assert.deepEqual(lines.slice(0, 3), ['zfs', 'kmod-zfs', `zfs-${ZFS_VERSION}`]);
    assert.deepEqual(lines.slice(3, 5), ['extra/zfs/zfs.ko:', 'extra/zfs/zfs.ko:']);
    assert.deepEqual(lines.slice(5, 7), [K_NEW, K_OLD], 'each zfs.ko is the one built for its kernel');
    assert.equal(lines[7], 'rpms-left:0', 'akmods RPMs must not end up in an image layer');

    const policy = JSON.parse(policyText) as { transports: { docker: Record<string, unknown> } };
    for (const repo of [STABLE_REPO, CANDIDATE_REPO]) {
      const name = repo.split('/').at(-1);
      assert.deepEqual(policy.transports.docker[repo], [
        {
          type: 'sigstoreSigned',
          keyPath: `/etc/pki/containers/${name}.pub`,
          signedIdentity: { type: 'matchRepository' },
        },
      ]);
    }
    assert.match(String(res.all), new RegExp(`unpacked kmod-zfs-${K_OLD.replaceAll('.', '\\.')}`));
    assert.doesNotMatch(String(res.all), /depmod: ERROR/);
  });

  test('the OS build fails when a base kernel has no kmod in the akmods image', async () => {
    const base = await baseImage(builder, 'kz-recipes-test-base-stale', [K_NEW, K_UNCACHED]);
    const tag = `localhost/kz-recipes-test-candidate-stale:${RUN}`;
    const res = await composeOs({ context: osContext, base, akmods: akmodsRef, tag });
    assert.notEqual(res.exitCode, 0, 'build must fail');
    assert.ok(
      String(res.all).includes(
        `No kmod-zfs RPM found for base kernel ${K_UNCACHED}. Cached akmods are stale; rebuild akmods.`,
      ),
      String(res.all),
    );
    const exists = await execa('podman', ['image', 'exists', tag], { env: ENV, reject: false });
    assert.notEqual(exists.exitCode, 0, 'no candidate image is tagged after a failed build');
  });

  test('a new akmods image is not hidden by the layer cache of an earlier build on the same base', async () => {
    // Same base as the successful build above, but the akmods image only covers the newest kernel.
    const partial = join(work, 'partial', 'rpms', 'kmods', 'zfs');
    await mkdir(partial, { recursive: true });
    const full = join(outDirs.get(K_NEW)!, 'rpms', 'kmods', 'zfs');
    await cp(full, partial, { recursive: true });
    const { stdout: ctr } = await buildah(['from', 'scratch']);
    let partialRef: string;
    try {
      await buildah(['copy', ctr.trim(), join(work, 'partial', 'rpms'), '/rpms']);
      const ref = `localhost/kz-recipes-test-akmods-partial:${RUN}`;
      await buildah(['commit', '--quiet', ctr.trim(), ref]);
      created.push(ref);
      partialRef = await digestRef(ref);
    } finally {
      await buildah(['rm', ctr.trim()]);
    }
    // Build once with the full cache first so a cached install layer exists whatever the test order.
    const warm = await composeOs({
      context: osContext,
      base: twoKernelBase,
      akmods: akmodsRef,
      tag: `localhost/kz-recipes-test-warm:${RUN}`,
    });
    assert.equal(warm.exitCode, 0, String(warm.all));
    created.push(`localhost/kz-recipes-test-warm:${RUN}`);
    const res = await composeOs({
      context: osContext,
      base: twoKernelBase,
      akmods: partialRef,
      tag: `localhost/kz-recipes-test-partial:${RUN}`,
    });
    assert.notEqual(
      res.exitCode,
      0,
      `build must not reuse the install layer made from another akmods image:\n${res.all}`,
    );
    assert.ok(
      String(res.all).includes(
        `No kmod-zfs RPM found for base kernel ${K_OLD}. Cached akmods are stale; rebuild akmods.`,
      ),
      String(res.all),
    );
  });

  test('ensure-signing-policy.sh keeps other policy entries and drops other registries.d files naming either repository', async () => {
    const script = [
      'set -e',
      'mkdir -p /etc/containers/registries.d',
      `printf '%s\n' '{"default":[{"type":"reject"}],"transports":{"docker":{"quay.io/other/app":[{"type":"insecureAcceptAnything"}]}}}' > /etc/containers/policy.json`,
      `printf 'docker:\n  ${STABLE_REPO}:\n    use-sigstore-attachments: false\n' > /etc/containers/registries.d/old-stable.yaml`,
      `printf 'docker:\n  ${CANDIDATE_REPO}:\n    lookaside: https://example.test\n' > /etc/containers/registries.d/old-candidate.yml`,
      `printf 'docker:\n  ${STABLE_REPO}-other:\n    use-sigstore-attachments: true\n' > /etc/containers/registries.d/unrelated.yaml`,
      `STABLE_REPO=${STABLE_REPO} CANDIDATE_REPO=${CANDIDATE_REPO} sh /recipe/ensure-signing-policy.sh /recipe/cosign.pub >/dev/null`,
      'ls /etc/containers/registries.d',
      'stat -c "%a %n" /etc/containers/policy.json /etc/pki/containers/*.pub',
      `cat /etc/containers/registries.d/${STABLE_REPO.split('/').at(-1)}.yaml`,
      'jq -c "[.default, (.transports.docker | keys)]" /etc/containers/policy.json',
    ].join('\n');
    const { stdout } = await podman([
      'run',
      '--rm',
      '--network=none',
      '-v',
      `${osContext}:/recipe:ro`,
      builder,
      '/bin/sh',
      '-c',
      script,
    ]);
    assert.equal(
      stdout,
      [
        'kinoite-zfs-candidate.yaml',
        'kinoite-zfs.yaml',
        'unrelated.yaml',
        '644 /etc/containers/policy.json',
        '644 /etc/pki/containers/kinoite-zfs-candidate.pub',
        '644 /etc/pki/containers/kinoite-zfs.pub',
        'docker:',
        `  ${STABLE_REPO}:`,
        '    use-sigstore-attachments: true',
        `[[{"type":"reject"}],["quay.io/other/app","${STABLE_REPO}","${CANDIDATE_REPO}"]]`,
      ].join('\n'),
    );
  });

  test('the OS build fails with a clear message while cosign.pub is still the placeholder', async () => {
    const context = join(work, 'os-placeholder');
    await cp(join(RECIPES, 'os'), context, { recursive: true });
    const base = await baseImage(builder, 'kz-recipes-test-base-one', [K_NEW]);
    const res = await composeOs({
      context,
      base,
      akmods: akmodsRef,
      tag: `localhost/kz-recipes-test-placeholder:${RUN}`,
    });
    assert.notEqual(res.exitCode, 0, 'build must fail');
    assert.match(String(res.all), /replace recipes\/os\/cosign\.pub with your public key/);
  });
});
