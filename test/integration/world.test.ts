/**
 * Integration: `worldUp` brings up a one-kernel and a two-kernel world; everything is checked from
 * outside (skopeo, podman, rpm, curl-like fetch, git, cosign), against the spec file read here, not
 * through the project's own code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../client/config-file.ts';
import { worldDown, worldUp } from '../../world/world.ts';
import type { WorldInfo } from '../../world/world.ts';
import { cosignBin, REPO_ROOT } from '../../world/tools.ts';

interface RawSpec {
  base: {
    repository: string;
    versions: { version: string; kernels: (string | { release: string })[]; ostreeLinux?: string }[];
  };
  builder: { repository: string };
  zfs: { releases: { version: string; linuxMin?: string; linuxMax?: string; prerelease?: boolean }[] };
  recipe?: { append?: Record<string, string> };
}

const kernelsOf = (v: RawSpec['base']['versions'][number]) =>
  v.kernels.map((k) => (typeof k === 'string' ? k : k.release));

async function skopeoInspect(ref: string): Promise<{ Digest: string; Labels: Record<string, string> }> {
  const r = await execa('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`]);
  return JSON.parse(r.stdout);
}

/** Kernel directories in an image: layers listed in order with `tar`, OCI whiteouts applied. */
async function moduleDirs(ref: string): Promise<{ kernels: string[]; files: Set<string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kz-world-test-'));
  try {
    await execa('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `dir:${dir}`]);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { layers: { digest: string }[] };
    const files = new Set<string>();
    for (const layer of manifest.layers) {
      const { stdout } = await execa('tar', ['-tf', join(dir, layer.digest.replace('sha256:', ''))], {
        maxBuffer: 1 << 28,
      });
      for (const raw of stdout.split('\n')) {
        const path = raw.replace(/^\.\//, '').replace(/\/$/, '');
        const base = path.split('/').pop() ?? '';
        if (base === '.wh..wh..opq') {
          const parent = path.slice(0, -base.length - 1);
          for (const f of [...files]) if (f.startsWith(`${parent}/`)) files.delete(f);
        } else if (base.startsWith('.wh.')) {
          const gone = `${path.slice(0, -base.length)}${base.slice(4)}`;
          for (const f of [...files]) if (f === gone || f.startsWith(`${gone}/`)) files.delete(f);
        } else if (path) files.add(path);
      }
    }
    const kernels = [...files]
      .filter((f) => /^usr\/lib\/modules\/[^/]+$/.test(f))
      .map((f) => f.split('/')[3]!)
      .sort();
    return { kernels, files };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function worldSuite(specName: string) {
  describe(`world ${specName}`, () => {
    const specFile = resolve(REPO_ROOT, 'world/specs', `${specName}.yaml`);
    const dir = resolve(REPO_ROOT, '.state/test-worlds', specName);
    let spec: RawSpec;
    let info: WorldInfo;
    let firstSeconds = 0;

    before(async () => {
      spec = parseYaml(await readFile(specFile, 'utf8')) as RawSpec;
      const r = await worldUp({ specFile, dir, log: () => undefined });
      info = r.info;
      firstSeconds = r.seconds;
    });
    after(async () => {
      await worldDown({ dir });
    });

    test('every base version is in the registry with its labels, and its date tags point at one digest', async () => {
      const host = info.registry.host;
      const last = spec.base.versions[spec.base.versions.length - 1]!;
      for (const v of spec.base.versions) {
        const [fedora, ...rest] = v.version.split('.');
        const suffix = rest.join('.');
        const a = await skopeoInspect(`${host}/${spec.base.repository}:latest-${suffix}`);
        const b = await skopeoInspect(`${host}/${spec.base.repository}:${fedora}-${suffix}`);
        assert.equal(a.Digest, b.Digest, `latest-${suffix} and ${fedora}-${suffix} differ`);
        assert.equal(a.Labels['org.opencontainers.image.version'], v.version);
        const kernels = kernelsOf(v);
        const newest = [...kernels].sort((x, y) => x.localeCompare(y, 'en', { numeric: true })).pop();
        assert.equal(a.Labels['ostree.linux'], v.ostreeLinux ?? newest);
        const recorded = info.base.versions.find((x) => x.version === v.version);
        assert.equal(recorded?.digest, a.Digest, 'world.json records the digest the registry serves');
      }
      const [lf, ...lr] = last.version.split('.');
      const latest = await skopeoInspect(`${host}/${spec.base.repository}:latest`);
      assert.equal(
        latest.Digest,
        (await skopeoInspect(`${host}/${spec.base.repository}:latest-${lr.join('.')}`)).Digest,
      );
      assert.equal(latest.Digest, (await skopeoInspect(`${host}/${spec.base.repository}:${lf}`)).Digest);
      if (spec.base.versions.length > 1) {
        const first = spec.base.versions[0]!.version.split('.').slice(1).join('.');
        assert.notEqual(
          (await skopeoInspect(`${host}/${spec.base.repository}:latest-${first}`)).Digest,
          latest.Digest,
          'older version keeps its own digest',
        );
      }
    });

    test('each base version holds exactly the module directories its spec lists, with depmod output', async () => {
      for (const v of spec.base.versions) {
        const suffix = v.version.split('.').slice(1).join('.');
        const { kernels, files } = await moduleDirs(`${info.registry.host}/${spec.base.repository}:latest-${suffix}`);
        assert.deepEqual(kernels, [...kernelsOf(v)].sort());
        for (const k of kernelsOf(v)) {
          assert.ok(files.has(`usr/lib/modules/${k}/modules.dep`), `depmod output for ${k}`);
          assert.ok(files.has(`usr/lib/modules/${k}/vmlinuz`), `vmlinuz placeholder for ${k}`);
        }
        assert.ok(files.has('usr/bin/rpm'), 'rpm is in the image');
      }
    });

    test('the builder image builds a kmod-zfs RPM holding zfs.ko for the requested kernel', async () => {
      const kernel = kernelsOf(spec.base.versions[spec.base.versions.length - 1]!).at(-1)!;
      const release = spec.zfs.releases.filter((r) => !r.prerelease).at(-1)!;
      const fedora = spec.base.versions.at(-1)!.version.split('.')[0]!;
      const builder = (await skopeoInspect(`${info.registry.host}/${spec.builder.repository}:latest`)).Digest;
      assert.equal(builder, info.builder.digest);
      const ref = `${info.registry.host}/${spec.builder.repository}@${builder}`;
      const env = { CONTAINERS_CONF: info.containersConf };
      await execa('podman', ['pull', '--quiet', '--tls-verify=false', ref], { env });
      const out = await mkdtemp(join(tmpdir(), 'kz-world-rpm-'));
      try {
        const src = join(info.releaseSource.root, `zfs-${release.version}`);
        await execa(
          'podman',
          [
            'run',
            '--rm',
            '--network=none',
            '-v',
            `${join(info.recipe.git, info.recipe.path, 'akmods')}:/recipe:ro`,
            '-v',
            `${src}:/src:ro`,
            '-v',
            `${out}:/out`,
            '-e',
            `KERNEL_RELEASE=${kernel}`,
            '-e',
            `ZFS_VERSION=${release.version}`,
            '-e',
            `FEDORA_VERSION=${fedora}`,
            ref,
            '/bin/sh',
            '/recipe/build-akmods.sh',
          ],
          { env },
        );
        const rpmDir = join(out, 'rpms/kmods/zfs');
        const kmod = (await readdir(rpmDir)).find((f) => f.startsWith(`kmod-zfs-${kernel}-`));
        assert.ok(kmod, `a kmod-zfs RPM for ${kernel} in ${rpmDir}`);
        const { stdout } = await execa('rpm', ['-qlp', join(rpmDir, kmod)]);
        assert.ok(stdout.split('\n').includes(`/usr/lib/modules/${kernel}/extra/zfs/zfs.ko`), stdout);
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    });

    test('the release source serves the release list and each release META over HTTP', async () => {
      const list = (await (await fetch(info.releaseSource.releasesUrl)).json()) as {
        tag_name: string;
        prerelease: boolean;
      }[];
      assert.deepEqual(
        list.map((r) => r.tag_name),
        [...spec.zfs.releases].reverse().map((r) => `zfs-${r.version}`),
      );
      for (const r of spec.zfs.releases) {
        const res = await fetch(info.releaseSource.metaUrl.replace('{tag}', `zfs-${r.version}`));
        assert.equal(res.status, 200);
        const meta = await res.text();
        assert.match(meta, new RegExp(`^Version:\\s+${r.version.split('-')[0]!.replace(/\./g, '\\.')}$`, 'm'));
        assert.match(meta, new RegExp(`^Linux-Maximum:\\s+${(r.linuxMax ?? '7.2').replace(/\./g, '\\.')}$`, 'm'));
        assert.equal(list.find((x) => x.tag_name === `zfs-${r.version}`)?.prerelease, r.prerelease ?? false);
        const tarball = await fetch(
          info.releaseSource.tarballUrl.replace('{tag}', `zfs-${r.version}`).replace('{version}', r.version),
        );
        assert.equal(tarball.status, 200);
        await tarball.arrayBuffer();
      }
    });

    test('the recipe repository holds a commit with the recipes and the world public key', async () => {
      const repo = info.recipe.git;
      const head = (await execa('git', ['-C', repo, 'rev-parse', 'main'])).stdout.trim();
      assert.match(head, /^[0-9a-f]{40}$/);
      assert.equal(head, info.recipe.head);
      const pub = (await execa('git', ['-C', repo, 'show', `${head}:recipes/os/cosign.pub`])).stdout;
      assert.equal(pub.trim(), (await readFile(info.signing.publicKeyFile, 'utf8')).trim());
      const tree = (await execa('git', ['-C', repo, 'ls-tree', '-r', '--name-only', head])).stdout.split('\n');
      assert.ok(tree.includes('recipes/akmods/build-akmods.sh'));
      for (const [path, text] of Object.entries(spec.recipe?.append ?? {})) {
        const content = (
          await execa('git', ['-C', repo, 'show', `${head}:recipes/${path}`], { stripFinalNewline: false })
        ).stdout;
        assert.ok(content.endsWith(text), `recipes/${path} ends with the appended text`);
        const parent = (await execa('git', ['-C', repo, 'rev-parse', `${head}^`])).stdout.trim();
        assert.equal(parent, info.recipe.commits.recipes);
      }
    });

    test('the world key pair signs a base image digest and verifies it', async () => {
      const digest = (await skopeoInspect(`${info.registry.host}/${spec.base.repository}:latest`)).Digest;
      const ref = `${info.registry.host}/${spec.base.repository}@${digest}`;
      const password = await readFile(info.signing.passwordFile, 'utf8');
      await execa(
        cosignBin(),
        ['sign', '--yes', '--key', info.signing.keyFile, '--allow-insecure-registry', '--tlog-upload=false', ref],
        {
          env: { COSIGN_PASSWORD: password },
        },
      );
      const v = await execa(
        cosignBin(),
        ['verify', '--key', info.signing.publicKeyFile, '--allow-insecure-registry', '--insecure-ignore-tlog', ref],
        { reject: false },
      );
      assert.equal(v.exitCode, 0, v.stderr);
      const tags = JSON.parse(
        (
          await execa('skopeo', [
            'list-tags',
            '--tls-verify=false',
            `docker://${info.registry.host}/${spec.base.repository}`,
          ])
        ).stdout,
      ) as { Tags: string[] };
      assert.ok(tags.Tags.includes(`${digest.replace(':', '-')}.sig`));
    });

    test('the written config passes the config schema and points at the world', async () => {
      const config = await loadConfig(info.configFile, {});
      const streams = Object.values(config.streams);
      assert.equal(streams.length, 1);
      assert.equal(streams[0]!.baseImage, `${info.registry.host}/${spec.base.repository}:latest`);
      assert.ok(config.registries.insecure.includes(info.registry.host));
      assert.equal(streams[0]!.recipe.git, info.recipe.git);
      assert.equal(config.temporal.address, info.temporal.address);
    });

    test('a second world up on the same folder reuses everything and takes seconds', async () => {
      const r = await worldUp({ specFile, dir, log: () => undefined });
      assert.ok(r.seconds < 15, `second world up took ${r.seconds}s (first ${firstSeconds}s)`);
      assert.ok(
        r.reused.some((x) => x.startsWith('images')),
        r.reused.join('; '),
      );
      assert.deepEqual(
        r.info.base.versions.map((v) => v.digest),
        info.base.versions.map((v) => v.digest),
      );
      assert.equal(r.info.recipe.head, info.recipe.head);
    });
  });
}

worldSuite('one-kernel');
worldSuite('two-kernels');
