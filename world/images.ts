/**
 * The world's images: base image versions that look like Kinoite where it matters (kernel
 * directories under /usr/lib/modules, `ostree.linux` and `org.opencontainers.image.version` labels,
 * `latest` plus immutable date tags) and the akmods builder image, all built from the real Debian
 * root filesystem with buildah and pushed to the world registry.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { sortKernels, primaryKernel } from '../core/kernels.ts';
import { RegistryClient } from '../activities/registry-http.ts';
import type { Descriptor } from '../activities/registry-http.ts';
import { BUILDER_ROOTFS_RECIPE, ROOTFS_RECIPE, ensureRootfsImage, localImageExists, rootfsHash } from './rootfs.ts';
import { ensureDebianKernel, modulesDirOf } from './debian-kernels.ts';
import { splitVersion } from './spec.ts';
import type { BaseCompression, BaseFiller, BaseVersion, KernelSpec } from './spec.ts';

/** buildah's environment in the world: its containers.conf, and the world's auth file when the registry needs one. */
function worldEnv(input: { containersConf: string; authFile?: string }): NodeJS.ProcessEnv {
  return { CONTAINERS_CONF: input.containersConf, ...(input.authFile ? { REGISTRY_AUTH_FILE: input.authFile } : {}) };
}

/** One base image version as pushed. */
export interface PushedBaseVersion {
  /** `org.opencontainers.image.version`. */
  version: string;
  /** Kernel releases in the image, natural order. */
  kernels: string[];
  /** The `ostree.linux` label. */
  ostreeLinux: string;
  /** Manifest digest in the world registry. */
  digest: string;
  /** Tags pointing at it when it was pushed (later versions move `latest` and `<fedora>`). */
  tags: string[];
  /** Local image it was pushed from. */
  localImage: string;
}

/** Tags a base version gets: `latest-<suffix>`, `<fedora>-<suffix>`, `<fedora>`, and `latest` for the newest. */
export function baseTags(version: string, isLast: boolean): string[] {
  const { fedora, suffix } = splitVersion(version);
  return [`latest-${suffix}`, `${fedora}-${suffix}`, fedora, ...(isLast ? ['latest'] : [])];
}

/** The effective `ostree.linux` of a version: given, else the newest kernel. */
export function ostreeLinuxOf(v: BaseVersion): string {
  return v.ostreeLinux ?? primaryKernel(v.kernels.map((k) => k.release));
}

async function buildah(args: string[], env: NodeJS.ProcessEnv, what: string): Promise<string> {
  const r = await execa('buildah', args, { reject: false, all: true, env });
  if (r.exitCode !== 0)
    throw new Error(
      `buildah ${args[0]} failed while ${what}: ${String(r.all).trim().split('\n').slice(-10).join('\n')}`,
    );
  return String(r.stdout).trim();
}

/**
 * Files of one kernel directory (`/usr/lib/modules/<release>/`). Synthetic: what tools look at
 * (module indexes, a placeholder vmlinuz), not a real kernel. Debian: the real modules tree of the
 * kernel package, with its `vmlinuz`, `config` and `System.map` beside it as Fedora Atomic keeps them.
 */
async function stageKernel(kernel: KernelSpec, into: string, log: (line: string) => void): Promise<void> {
  switch (kernel.kind) {
    case 'synthetic': {
      await mkdir(join(into, 'kernel'), { recursive: true });
      await writeFile(join(into, 'modules.builtin'), 'kernel/fs/ext4/ext4.ko\nkernel/fs/xfs/xfs.ko\n');
      await writeFile(join(into, 'modules.builtin.modinfo'), '');
      await writeFile(join(into, 'modules.order'), '');
      await writeFile(join(into, 'vmlinuz'), `kinoite-zfs world placeholder: not a kernel image (${kernel.release})\n`);
      await writeFile(
        join(into, 'config'),
        `# synthetic kernel ${kernel.release} (kinoite-zfs world)\nCONFIG_MODULES=y\n`,
      );
      return;
    }
    case 'debian': {
      const files = await ensureDebianKernel(kernel.release, log);
      await cp(modulesDirOf(files), into, { recursive: true, verbatimSymlinks: true });
      // The headers package's build/source links point into the builder; the base has no headers.
      await rm(join(into, 'build'), { force: true });
      await rm(join(into, 'source'), { force: true });
      for (const [from, to] of [
        [`vmlinuz-${kernel.release}`, 'vmlinuz'],
        [`config-${kernel.release}`, 'config'],
        [`System.map-${kernel.release}`, 'System.map'],
      ]) {
        await copyFile(join(files.imageRoot, 'boot', from!), join(into, to!));
      }
      return;
    }
  }
}

/** A stable key for a base version chain, so identical versions built earlier on this machine are reused. */
function chainKey(prevKey: string, v: BaseVersion): string {
  return createHash('sha256')
    .update(
      JSON.stringify({ prevKey, version: v.version, kernels: v.kernels, ostreeLinux: ostreeLinuxOf(v), layout: 1 }),
    )
    .digest('hex')
    .slice(0, 16);
}

/**
 * Sizes of the filler layers: uneven, as a rechunked image's are (weights 1 to 5 from a hash of
 * the layer index), summing exactly to `size`.
 */
export function fillerLayerSizes(filler: BaseFiller): number[] {
  const weights = Array.from(
    { length: filler.layers },
    (_, i) => 1 + (createHash('sha256').update(`kinoite-zfs filler weight ${i}`).digest()[0]! % 5),
  );
  const total = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.floor((filler.size * w) / total));
  sizes[sizes.length - 1]! += filler.size - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}

/**
 * Writes `bytes` of deterministic pseudo-random content (an AES-128-CTR keystream keyed by
 * `seed`): incompressible, so gzip cannot shrink it, and about as fast as the disk takes it.
 */
async function writeFillerFile(file: string, bytes: number, seed: string): Promise<void> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(4 * 1024 * 1024);
  const out = createWriteStream(file);
  for (let left = bytes; left > 0; left -= zeros.length) {
    if (!out.write(cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/**
 * The rootfs image plus `filler.layers` layers of filler under `/usr/share/kinoite-zfs-filler/`
 * (one file per layer), built once per machine and kept in local storage by its content key.
 */
async function ensureFillerImage(input: {
  rootfsImage: string;
  filler: BaseFiller;
  key: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}): Promise<string> {
  const localImage = `localhost/kinoite-zfs-world/filler:${input.key}`;
  if (await localImageExists(localImage, input.env)) {
    input.log(`base filler (${input.filler.layers} layers): reusing local build ${localImage}`);
    return localImage;
  }
  const started = Date.now();
  input.log(
    `building base filler: ${input.filler.layers} layers, ${input.filler.size} bytes of incompressible content…`,
  );
  const stage = await mkdtemp(join(tmpdir(), 'kz-world-filler-'));
  let from = input.rootfsImage;
  const made: string[] = [];
  try {
    for (const [i, bytes] of fillerLayerSizes(input.filler).entries()) {
      const name = `layer-${String(i).padStart(3, '0')}`;
      const file = join(stage, name);
      await writeFillerFile(file, bytes, `kinoite-zfs filler ${i} ${bytes}`);
      const ctr = await buildah(['from', '--pull=never', '--quiet', from], input.env, `starting filler layer ${i}`);
      try {
        await buildah(
          ['copy', '--quiet', ctr, file, `/usr/share/kinoite-zfs-filler/${name}`],
          input.env,
          `copying filler layer ${i}`,
        );
        const image = i === input.filler.layers - 1 ? localImage : `${localImage}-${i}`;
        await buildah(
          ['commit', '--quiet', '--format', 'oci', '--rm', ctr, image],
          input.env,
          `committing filler layer ${i}`,
        );
        if (image !== localImage) made.push(image);
        from = image;
      } finally {
        await execa('buildah', ['rm', ctr], { reject: false, env: input.env });
        await rm(file, { force: true });
      }
    }
  } finally {
    await rm(stage, { recursive: true, force: true });
    // The intermediate tags only served as FROM of the next layer; the layers stay in the final image.
    if (made.length) await execa('buildah', ['rmi', ...made], { reject: false, env: input.env });
  }
  input.log(`  base filler built in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return localImage;
}

/**
 * Builds (or reuses from local storage) every base version, each FROM the previous one (so a
 * dropped kernel becomes a whiteout in a new layer), and pushes them in order to
 * `<registry>/<repository>` with their tags.
 */
export async function buildAndPushBase(input: {
  registry: string;
  repository: string;
  versions: BaseVersion[];
  /** Filler layers under the first version (base.filler of the spec). */
  filler?: BaseFiller;
  /** Layer compression in the registry (base.compression of the spec). */
  compression: BaseCompression;
  rootfsImage: string;
  containersConf: string;
  /** Credentials for a registry with token auth (the world's auth file). */
  authFile?: string;
  log: (line: string) => void;
}): Promise<PushedBaseVersion[]> {
  const env = worldEnv(input);
  const out: PushedBaseVersion[] = [];
  let from = input.rootfsImage;
  let prevKernels: string[] = [];
  let key = rootfsHash();
  if (input.filler) {
    key = createHash('sha256')
      .update(JSON.stringify({ rootfs: key, filler: input.filler, layout: 1 }))
      .digest('hex')
      .slice(0, 16);
    from = await ensureFillerImage({ rootfsImage: from, filler: input.filler, key, env, log: input.log });
  }
  for (const [i, v] of input.versions.entries()) {
    const started = Date.now();
    const kernels = sortKernels(v.kernels.map((k) => k.release));
    const ostreeLinux = ostreeLinuxOf(v);
    key = chainKey(key, v);
    const localImage = `localhost/kinoite-zfs-world/base:${key}`;
    if (await localImageExists(localImage, env)) {
      input.log(
        `base image ${v.version} (${kernels.length} kernel${kernels.length === 1 ? '' : 's'}): reusing local build ${localImage}`,
      );
    } else {
      input.log(`building base image ${v.version} (${kernels.length} kernel${kernels.length === 1 ? '' : 's'})…`);
      const ctr = await buildah(['from', '--pull=never', '--quiet', from], env, `starting base ${v.version}`);
      const stage = await mkdtemp(join(tmpdir(), 'kz-world-kernel-'));
      try {
        const dropped = prevKernels.filter((k) => !kernels.includes(k));
        if (dropped.length) {
          await buildah(
            ['run', '--network', 'none', ctr, '--', 'rm', '-rf', ...dropped.map((k) => `/usr/lib/modules/${k}`)],
            env,
            `dropping kernels from ${v.version}`,
          );
        }
        for (const kernel of v.kernels.filter((k) => !prevKernels.includes(k.release))) {
          const dir = join(stage, kernel.release);
          await stageKernel(kernel, dir, input.log);
          await buildah(
            ['copy', '--quiet', ctr, dir, `/usr/lib/modules/${kernel.release}/`],
            env,
            `adding kernel ${kernel.release}`,
          );
          // Real module indexes, made by the real depmod inside the image.
          await buildah(
            ['run', '--network', 'none', ctr, '--', 'depmod', '-a', kernel.release],
            env,
            `running depmod for ${kernel.release}`,
          );
        }
        await buildah(
          [
            'config',
            '--label',
            `ostree.linux=${ostreeLinux}`,
            '--label',
            `org.opencontainers.image.version=${v.version}`,
            '--label',
            'io.github.danathar.kinoite-zfs.world=base',
            ctr,
          ],
          env,
          `labelling base ${v.version}`,
        );
        await buildah(
          ['commit', '--quiet', '--format', 'oci', '--rm', ctr, localImage],
          env,
          `committing base ${v.version}`,
        );
      } finally {
        await rm(stage, { recursive: true, force: true });
        await execa('buildah', ['rm', ctr], { reject: false, env });
      }
    }
    const tags = baseTags(v.version, i === input.versions.length - 1);
    const digest = await pushImage({
      localImage,
      registry: input.registry,
      repository: input.repository,
      tags,
      env,
      compression: input.compression,
    });
    input.log(
      `  pushed ${input.registry}/${input.repository}@${digest} as ${tags.join(', ')} (${((Date.now() - started) / 1000).toFixed(1)}s)`,
    );
    out.push({ version: v.version, kernels, ostreeLinux, digest, tags, localImage });
    from = localImage;
    prevKernels = kernels;
  }
  return out;
}

/**
 * Pushes a local image to the registry under its first tag and points the other tags at the same
 * digest. With `compression`, the layers are pushed in that format and checked to be in it.
 */
export async function pushImage(input: {
  localImage: string;
  registry: string;
  repository: string;
  tags: string[];
  env: NodeJS.ProcessEnv;
  /** @default buildah's own (gzip) */
  compression?: BaseCompression;
}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kz-world-push-'));
  try {
    const digestFile = join(dir, 'digest');
    const [first, ...rest] = input.tags;
    await buildah(
      [
        'push',
        '--quiet',
        '--tls-verify=false',
        '--digestfile',
        digestFile,
        ...(input.compression ? ['--compression-format', input.compression] : []),
        input.localImage,
        `docker://${input.registry}/${input.repository}:${first}`,
      ],
      input.env,
      `pushing ${input.localImage} to ${input.registry}/${input.repository}:${first}`,
    );
    const digest = (await readFile(digestFile, 'utf8')).trim();
    // Extra tags point at the same manifest bytes, so every tag has exactly this digest.
    const registry = new RegistryClient({
      insecureHosts: [input.registry],
      authFile: input.env.REGISTRY_AUTH_FILE,
    });
    const name = `${input.registry}/${input.repository}`;
    const manifest = await registry.getManifest(`${name}@${digest}`);
    if (input.compression) checkCompression(manifest.manifest.layers ?? [], input.compression, `${name}@${digest}`);
    for (const tag of rest) await registry.putManifest(name, tag, manifest.bytes, manifest.mediaType);
    return digest;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Fails unless every layer of a pushed manifest has the media type of `compression` (zstd:chunked
 * is `+zstd`). NOTE: buildah 1.28 reuses a blob the registry already holds for the same layer in
 * another compression (its blob-info cache); the world would then silently test gzip where the
 * spec says zstd. A zstd:chunked layer reused from an earlier push (a later base version's lower
 * layers) is listed without its `io.containers.zstd-chunked.*` annotations, so only the media
 * type is checked; the blob itself is the chunked one.
 */
function checkCompression(layers: Descriptor[], compression: BaseCompression, ref: string): void {
  const suffix = compression === 'gzip' ? /[+.]gzip$/ : /\+zstd$/;
  const wrong = layers.filter((l) => !suffix.test(l.mediaType));
  if (wrong.length > 0)
    throw new Error(
      `buildah pushed ${ref} with ${wrong.length} layer(s) not in ${compression} (e.g. ${wrong[0]!.digest}, ${wrong[0]!.mediaType}): the registry already held them in another compression and buildah reused them; bring the world up in a fresh folder (world down, remove the folder)`,
    );
}

/**
 * The akmods builder image, pushed as `<registry>/<repository>:latest`; returns its digest. For
 * synthetic releases on synthetic kernels it is the base root filesystem (rpm, make: the recipe
 * writes stand-in modules). With `toolchain` it is the builder root filesystem (OpenZFS's build
 * dependencies) plus the real build tree (`linux-headers-*` and kbuild) of every Debian kernel given,
 * as a production builder has kernel-devel for each kernel.
 */
export async function buildAndPushBuilder(input: {
  registry: string;
  repository: string;
  toolchain: boolean;
  debianKernels: string[];
  containersConf: string;
  /** Credentials for a registry with token auth (the world's auth file). */
  authFile?: string;
  log: (line: string) => void;
}): Promise<{ digest: string; localImage: string }> {
  const env = worldEnv(input);
  const started = Date.now();
  const recipe = input.toolchain ? BUILDER_ROOTFS_RECIPE : ROOTFS_RECIPE;
  const kernels = sortKernels(input.debianKernels);
  const key = createHash('sha256')
    .update(JSON.stringify({ rootfs: rootfsHash(recipe), kernels, layout: 2 }))
    .digest('hex')
    .slice(0, 16);
  const localImage = `localhost/kinoite-zfs-world/builder:${key}`;
  if (!(await localImageExists(localImage, env))) {
    input.log(
      `building builder image${input.toolchain ? ` (OpenZFS build dependencies${kernels.length ? `, headers for ${kernels.join(', ')}` : ''})` : ''}…`,
    );
    const from = await ensureRootfsImage({ containersConf: input.containersConf, log: input.log, recipe });
    const ctr = await buildah(['from', '--pull=never', '--quiet', from], env, 'starting the builder image');
    try {
      for (const release of kernels) {
        const files = await ensureDebianKernel(release, input.log);
        await buildah(
          ['copy', '--quiet', ctr, `${files.headersRoot}/`, '/'],
          env,
          `adding the build tree of ${release}`,
        );
      }
      await buildah(
        ['config', '--label', 'io.github.danathar.kinoite-zfs.world=builder', '--workingdir', '/', ctr],
        env,
        'labelling the builder image',
      );
      await buildah(
        ['commit', '--quiet', '--format', 'oci', '--rm', ctr, localImage],
        env,
        'committing the builder image',
      );
    } finally {
      await execa('buildah', ['rm', ctr], { reject: false, env });
    }
  }
  const digest = await pushImage({
    localImage,
    registry: input.registry,
    repository: input.repository,
    tags: ['latest'],
    env,
  });
  input.log(
    `  pushed builder ${input.registry}/${input.repository}@${digest} (${((Date.now() - started) / 1000).toFixed(1)}s)`,
  );
  return { digest, localImage };
}
