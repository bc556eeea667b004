/**
 * Real OpenZFS on real kernels: a world whose base carries two real Debian kernels of different
 * series (the newest 6.1 and 6.12 cloud kernels Debian's archive holds) and whose release source
 * serves the real zfs-2.2.7 tarball (no generated configure). The production recipe builds real
 * modules and userland; everything is checked through the registry and podman, not the project's code.
 *
 * Lane: real builds (scripts/run-tests.sh runs this file beside the other tests, at a lower CPU priority).
 *
 * The first run on a machine builds for about 10 minutes (2 cores); the host build cache makes later
 * runs of this file take seconds for the same inputs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import {
  bringUpWorld,
  startWorker,
  client,
  startRun,
  digestOf,
  repoRoot,
  closeAll,
  type TestWorld,
} from '../support/harness.ts';
import { newestDebianRelease } from '../../world/debian-kernels.ts';
import { openzfsDir } from '../../world/openzfs-releases.ts';
import { containerEnv } from '../../world/tools.ts';
import { builderRunArgs } from '../../activities/podman.ts';
import type { PipelineResult } from '../../core/pipeline.ts';

const TAG = 'zfs-2.2.7';
const OPENZFS = openzfsDir(undefined, repoRoot);
const skip = existsSync(join(OPENZFS, `${TAG}.tar.gz`))
  ? false
  : `no real OpenZFS tarballs in ${OPENZFS} (set KINOITE_ZFS_OPENZFS_DIR)`;

let world: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> };
let kernels: string[];

function realSpec(append?: Record<string, string>) {
  return {
    base: {
      repository: 'ublue-os/kinoite-main',
      versions: [{ version: '43.20261201.0', kernels: kernels.map((release) => ({ kind: 'debian', release })) }],
    },
    builder: { repository: 'ublue-os/devcontainer' },
    zfs: { releases: [{ source: 'openzfs', tag: TAG }] },
    ...(append ? { recipe: { append } } : {}),
    stream: { zfsLine: '2.2', owner: 'kinoite', promotion: 'auto' },
  };
}

/** Runs a command in the image (by digest) with podman, as a user would. */
async function inImage(ref: string, script: string): Promise<string> {
  const r = await execa(
    'podman',
    ['run', '--rm', '--pull=always', '--tls-verify=false', '--network=none', ref, 'sh', '-c', script],
    { env: containerEnv(world.info.containersConf), reject: false, all: true },
  );
  assert.equal(r.exitCode, 0, `podman run ${ref} ${script}: ${r.all}`);
  return String(r.stdout).trim();
}

before(async () => {
  if (skip) return;
  kernels = [await newestDebianRelease('6.1'), await newestDebianRelease('6.12')];
  world = await bringUpWorld('real-openzfs', realSpec(), { fresh: true });
  c = await client(world);
  worker = await startWorker(world);
});

after(() => closeAll({ worker, client: c, world }));

test(
  'the production recipe builds real zfs-2.2.7 for a 6.1 and a 6.12 Debian kernel; both boot and round-trip a pool; the promoted image loads them by its own tools',
  { skip },
  async (t) => {
    const r = (await (await startRun(world, c)).result()) as PipelineResult;
    for (const b of r.boot?.kernels ?? [])
      t.diagnostic(`boot ${b.kernel}: ${b.seconds.toFixed(1)} s (${b.accel})${b.error ? ` FAILED ${b.error}` : ''}`);
    for (const stage of r.stages) t.diagnostic(`stage ${stage.stage}: ${stage.detail ?? ''}`);
    assert.equal(r.outcome, 'promoted', r.message);
    assert.equal(r.boot?.policy, 'required');
    assert.deepEqual(
      r.boot?.kernels.map((b) => [b.kernel, b.booted, b.moduleLoaded, b.poolRoundTrip, b.moduleVersion, b.error]),
      kernels.map((k) => [k, true, true, true, '2.2.7-1', undefined]),
    );
    assert.deepEqual(r.akmods!.built, kernels);
    const stable = `${world.info.stream.stable}@${r.candidate!.digest}`;
    assert.equal(await digestOf(`${world.info.stream.stable}:latest`), r.candidate!.digest);
    for (const k of kernels) {
      const dir = `/usr/lib/modules/${k}/extra/zfs`;
      const out = await inImage(
        stable,
        `modinfo -F vermagic ${dir}/zfs.ko; modinfo -F vermagic ${dir}/spl.ko; modinfo -F version ${dir}/zfs.ko; modinfo -F description ${dir}/zfs.ko; stat -c %s ${dir}/zfs.ko`,
      );
      const [zfsMagic, splMagic, version, description, size] = out.split('\n');
      assert.equal(zfsMagic!.split(' ')[0], k, `zfs.ko of ${k} has vermagic ${zfsMagic}`);
      assert.equal(splMagic!.split(' ')[0], k, `spl.ko of ${k} has vermagic ${splMagic}`);
      assert.equal(version, '2.2.7-1', 'modinfo shows the OpenZFS version');
      assert.equal(description, 'ZFS', 'a real OpenZFS module, not the fixture');
      assert.ok(Number(size) < 40_000_000, `zfs.ko is stripped of debug info (${size} bytes)`);
      // The base image's real modules tree is there too, and depmod indexed zfs with it.
      assert.match(
        await inImage(
          stable,
          `ls /usr/lib/modules/${k}/vmlinuz && grep -c 'extra/zfs/zfs.ko:' /usr/lib/modules/${k}/modules.dep`,
        ),
        /vmlinuz\n1$/,
      );
    }
    // Real userland: zpool is an ELF binary and runs against the image's own libraries.
    assert.equal(await inImage(stable, 'head -c 4 /usr/sbin/zpool | od -An -c | tr -d " "'), '177ELF');
    // Without the module loaded (a container) zpool --version prints the userland version, then complains about the kernel's.
    assert.match(await inImage(stable, 'zpool --version 2>/dev/null | head -n 1'), /^zfs-2\.2\.7-1$/);
    assert.match(
      await inImage(stable, 'rpm -qa --qf "%{NAME}\\n" | sort | tr "\\n" " "'),
      /\blibnvpair3\b.*\blibzfs\d+\b.*\bzfs$/,
    );
  },
);

test(
  'a module swapped between the two kernels fails the smoke test naming both releases; stable does not move',
  { skip },
  async () => {
    const before = await digestOf(`${world.info.stream.stable}:latest`);
    const [a, b] = kernels as [string, string];
    const swap = `\n# kinoite-zfs world: swap two kernels' modules (a module built for the wrong kernel)\nmv /usr/lib/modules/${a}/extra/zfs/zfs.ko /tmp/a.ko && mv /usr/lib/modules/${b}/extra/zfs/zfs.ko /usr/lib/modules/${a}/extra/zfs/zfs.ko && mv /tmp/a.ko /usr/lib/modules/${b}/extra/zfs/zfs.ko\n`;
    world = await bringUpWorld('real-openzfs', realSpec({ 'os/install-zfs.sh': swap }));
    const err = await (await startRun(world, c)).result().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, `the run fails (${String(err)})`);
    const message = String((err.cause as Error | undefined)?.message ?? err.message);
    assert.match(message, /smoke-test/);
    assert.ok(message.includes(a) && message.includes(b), `the failure names both releases: ${message}`);
    assert.equal(await digestOf(`${world.info.stream.stable}:latest`), before, 'stable did not move');
  },
);

/** Re-ups the world with a recipe append (and stream settings), runs it, and returns the failure message; stable must not move. */
async function failingRun(append: Record<string, string>, stream: Record<string, string> = {}): Promise<string> {
  const before = await digestOf(`${world.info.stream.stable}:latest`);
  const spec = realSpec(append) as ReturnType<typeof realSpec> & { stream: Record<string, string> };
  world = await bringUpWorld('real-openzfs', { ...spec, stream: { ...spec.stream, ...stream } });
  const err = await (await startRun(world, c)).result().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, `the run fails (${String(err)})`);
  assert.equal(await digestOf(`${world.info.stream.stable}:latest`), before, 'stable did not move');
  return String((err.cause as Error | undefined)?.message ?? err.message);
}

test(
  'the boot stage fails a module that loads in no kernel (a corrupted ELF header), naming the kernel and quoting insmod',
  { skip },
  async () => {
    const k = kernels[0]!;
    // e_machine (offset 18) zeroed: the file still reads as a module (modinfo, vermagic), but no kernel will load it.
    const message = await failingRun({
      'os/install-zfs.sh': `\nprintf '\\000\\000' | dd of=/usr/lib/modules/${k}/extra/zfs/zfs.ko bs=1 seek=18 conv=notrunc 2>/dev/null\n`,
    });
    assert.match(message, /^boot failed: Booted check failed for 1 of 2 kernel\(s\)/);
    assert.ok(message.includes(`kernel ${k}: module extra/zfs/zfs.ko did not load`), message);
    assert.match(message, /insmod .*zfs\.ko failed/);
    assert.match(message, /console log: \S+\.log/);
  },
);

test('the boot stage fails a candidate without spl.ko: zfs.ko cannot resolve its symbols', { skip }, async () => {
  const k = kernels[1]!;
  const message = await failingRun({
    'os/install-zfs.sh': `\nrm -f /usr/lib/modules/${k}/extra/zfs/spl.ko && depmod -a ${k}\n`,
  });
  assert.ok(message.includes(`kernel ${k}: module extra/zfs/zfs.ko did not load`), message);
  assert.match(message, /[Uu]nknown symbol/);
});

test('the boot stage names a kernel that does not finish within smoke.bootTimeout', { skip }, async () => {
  const message = await failingRun({}, { bootTimeout: '2s' });
  for (const k of kernels)
    assert.ok(
      message.includes(`kernel ${k}: the kernel did not boot within 2s`) ||
        message.includes(`kernel ${k}: the check did not finish within 2s`),
      message,
    );
});

test(
  'the recipe also accepts a release tarball that ships a generated ./configure (as GitHub release tarballs do)',
  { skip },
  async () => {
    const env = containerEnv(world.info.containersConf);
    const builder = `${world.info.builder.reference.replace(/:latest$/, '')}@${world.info.builder.digest}`;
    await execa('podman', ['pull', '--quiet', '--tls-verify=false', builder], { env });
    const work = await mkdtemp(join(tmpdir(), 'kz-configure-'));
    try {
      const [src, out] = [join(work, 'src'), join(work, 'out')];
      await mkdir(src);
      await mkdir(out);
      // A GitHub-style tarball: the git export with ./autogen.sh already run.
      await execa(
        'podman',
        [
          'run',
          '--rm',
          '--network=none',
          '-v',
          `${OPENZFS}:/in:ro`,
          '-v',
          `${src}:/src`,
          builder,
          'sh',
          '-c',
          `cd /tmp && tar xzf /in/${TAG}.tar.gz && cd ${TAG} && ./autogen.sh >/dev/null 2>&1 && cd /tmp && tar czf /src/${TAG}.tar.gz ${TAG}`,
        ],
        { env },
      );
      const listing = await execa('tar', ['tzf', join(src, `${TAG}.tar.gz`), `${TAG}/configure`], { reject: false });
      assert.equal(listing.exitCode, 0, 'the repacked tarball ships ./configure');
      const r = await execa(
        'podman',
        builderRunArgs({
          image: builder,
          recipeDir: join(repoRoot, 'recipes', 'akmods'),
          srcDir: src,
          outDir: out,
          kernel: kernels[0]!,
          zfsVersion: '2.2.7',
          fedora: '43',
          name: `kz-test-configure-${process.pid}`,
          network: 'none',
          ccacheDir: world.config.worker.ccacheDir,
        }),
        { env, reject: false, all: true },
      );
      assert.equal(r.exitCode, 0, String(r.all).split('\n').slice(-20).join('\n'));
      assert.match(String(r.stdout), /time autogen 0s \(tarball ships \.\/configure\)/);
      const rpm = join(out, 'rpms', 'kmods', 'zfs', `kmod-zfs-${kernels[0]}-2.2.7-1.fc43.x86_64.rpm`);
      const files = await execa('rpm', ['-qlp', rpm]);
      assert.deepEqual(
        String(files.stdout)
          .split('\n')
          .filter((f) => f.endsWith('.ko'))
          .sort(),
        [`/usr/lib/modules/${kernels[0]}/extra/zfs/spl.ko`, `/usr/lib/modules/${kernels[0]}/extra/zfs/zfs.ko`],
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
);
