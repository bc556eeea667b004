/**
 * Akmods stage: check the cache, build the missing kernels' kmod RPMs in the builder image, and
 * publish one merged cache image whose layers are the per-kernel images' layers (assembled in the
 * registry: nothing is downloaded or re-uploaded).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import {
  cacheCoverage,
  cacheLabels,
  kernelsFromCacheLabels,
  kernelsCoveredByRpmFiles,
  cacheCheckMessage,
  AKMODS_LABELS,
} from '../core/cache.ts';
import { parseImageRef, digestRef } from '../core/refs.ts';
import { isValidKernelRelease } from '../core/kernels.ts';
import { PermanentError, FailureType } from '../core/errors.ts';
import { checkValue } from '../core/validate.ts';
import { scanLayers } from './layer-reader.ts';
import { checkBuildHostDisk } from './disk-preflight.ts';
import { attemptLocalName, builderRunArgs, podman, pullArgs, pushImage, scratchImage } from './podman.ts';
import { checkoutCommit } from './git.ts';
import { downloadOnce, releaseUrl } from './release-source.ts';
import { treeHash } from './tree-hash.ts';
import type { ActivityDeps } from './deps.ts';
import { noteProgress } from './progress.ts';

/** Result of the cache check. */
export interface AkmodsCacheCheck {
  status: 'reusable' | 'stale' | 'missing_image';
  covered: string[];
  missing: string[];
  /** Digest of the cache image, when it exists. */
  digest?: string;
  /** Kernels the cache image holds (label or scan), whether required or not. */
  holds: string[];
  /** Per-kernel image digests for covered kernels, when their per-kernel tags still match. */
  perKernel: Record<string, string>;
  message: string[];
}

/** Input of one kernel's akmods build. */
export interface BuildKernelAkmodsInput {
  stream: string;
  builder: string;
  kernel: string;
  fedora: string;
  zfs: { tag: string; version: string };
  tarballUrl: string;
  recipe: { git: string; commit: string; path: string };
  /** Per-kernel image destination, repo:tag. */
  dest: string;
  /** Build a kernel newer than the release supports (only when the stream allows it). */
  experimental?: boolean;
  /** Also build the release's userspace RPMs (the first kernel of a run's builds does). */
  userspace?: boolean;
  /** The builder container's network (the stream's builderNetwork). @default 'default' */
  network?: 'default' | 'none';
}

/** Result of one kernel's akmods build. */
export interface BuildKernelAkmodsResult {
  kernel: string;
  /** Digest of the pushed per-kernel image. */
  digest: string;
  /** True when this host had already built exactly these inputs (no builder ran). */
  reusedBuild: boolean;
  /** Seconds per recipe step (autogen, kmod-configure, kmod-build, user-configure, user-build, package) of the build that made the RPMs. */
  timings: Record<string, number>;
}

/** Seconds per step from the recipe's `build-akmods: time <step> <N>s` lines. */
export function recipeTimings(output: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of output.matchAll(/^build-akmods: time ([a-z-]+) (\d+)s$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** Activities of the akmods stage. */
export function akmodsActivities({ registry, host }: ActivityDeps) {
  return {
    /** Reads the cache's kernel coverage from its labels, or from its layers for legacy caches. */
    async checkAkmodsCache(input: {
      cacheRef: string;
      kernelRefs: Record<string, string>;
      kernels: string[];
      zfsVersion: string;
      fedora: string;
    }): Promise<AkmodsCacheCheck> {
      const name = parseImageRef(input.cacheRef, 'akmods cache').name;
      let image;
      try {
        image = await registry.getImage(input.cacheRef);
      } catch (err) {
        if (err instanceof PermanentError && err.type === FailureType.ImageNotFound) image = undefined;
        else throw err;
      }
      if (!image) {
        const coverage = cacheCoverage({ required: input.kernels, exists: false, covered: [] });
        return {
          ...coverage,
          holds: [],
          perKernel: {},
          message: cacheCheckMessage({ image: input.cacheRef, fedora: input.fedora, coverage }),
        };
      }
      let holds: string[];
      let cachedZfsVersion: string | undefined;
      let via: 'labels' | 'layer-scan';
      const fromLabels = kernelsFromCacheLabels(image.labels);
      if (fromLabels) {
        holds = fromLabels.kernels;
        cachedZfsVersion = fromLabels.zfsVersion;
        via = 'labels';
      } else {
        const paths: string[] = [];
        await scanLayers({
          client: registry,
          ref: digestRef(name, image.digest),
          onEntry: (_i, e) => paths.push(e.name),
          signal: Context.current().cancellationSignal,
        });
        holds = kernelsCoveredByRpmFiles(input.kernels, paths);
        via = 'layer-scan';
      }
      const coverage = cacheCoverage({
        required: input.kernels,
        exists: true,
        covered: holds,
        cachedZfsVersion,
        zfsVersion: input.zfsVersion,
      });
      const perKernel: Record<string, string> = {};
      for (const kernel of coverage.covered) {
        const ref = input.kernelRefs[kernel];
        if (!ref) continue;
        const k = await registry.getImage(ref).catch(() => undefined);
        if (k && k.labels['ostree.linux'] === kernel && k.labels[AKMODS_LABELS.zfsVersion] === input.zfsVersion)
          perKernel[kernel] = k.digest;
      }
      return {
        ...coverage,
        digest: image.digest,
        holds,
        perKernel,
        message: cacheCheckMessage({
          image: input.cacheRef,
          fedora: input.fedora,
          coverage,
          via,
          cachedZfsVersion,
          zfsVersion: input.zfsVersion,
        }),
      };
    },

    /**
     * Builds one kernel's kmod RPMs (and, when asked, the release's userspace RPMs) in the builder
     * image and pushes them as a per-kernel image. A build whose inputs this host has built before
     * (same tarball bytes, builder image, recipe folder, kernel and options) is reused from the
     * host's build cache instead of run again.
     */
    async buildKernelAkmods(input: BuildKernelAkmodsInput): Promise<BuildKernelAkmodsResult> {
      if (!isValidKernelRelease(input.kernel))
        throw new PermanentError(
          FailureType.InvalidInput,
          `Refusing to build akmods for kernel release ${JSON.stringify(input.kernel)}: not a kernel release.`,
        );
      parseImageRef(input.builder, 'builderImage');
      await host.assertWritable(input.dest, 'akmods destination');
      checkValue('recipePath', input.recipe.path, 'recipe.path');
      checkValue('releaseUrlTemplate', input.tarballUrl, 'zfs.source.tarballUrl');
      const env = host.containersEnv();
      await checkBuildHostDisk(host, `building akmods for kernel ${input.kernel}`);
      noteProgress({ step: `${input.kernel}: recipe` });
      const checkout = await checkoutCommit({
        url: input.recipe.git,
        commit: input.recipe.commit,
        cacheDir: join(host.workDir, 'recipes'),
      });
      const recipeDir = join(checkout, input.recipe.path, 'akmods');
      const tarball = await downloadOnce(
        releaseUrl(input.tarballUrl, input.zfs),
        join(host.workDir, 'zfs-src', input.zfs.tag, `zfs-${input.zfs.version}.tar.gz`),
        `source tarball of ${input.zfs.tag}`,
      );
      noteProgress({ step: `${input.kernel}: pull builder` });
      await podman(pullArgs(input.builder, host.tlsArgs(input.builder)), env);
      const { stdout: builderId } = await podman(['image', 'inspect', '--format', '{{.Id}}', input.builder], env);
      const key = buildKey({
        tarball: await fileSha256(tarball),
        builderId: builderId.trim(),
        recipe: await treeHash(recipeDir),
        kernel: input.kernel,
        version: input.zfs.version,
        fedora: input.fedora,
        experimental: !!input.experimental,
        userspace: !!input.userspace,
      });
      const cached = join(host.config.worker.buildCacheDir, key);
      const outDir = await mkdtemp(join(host.workDir, 'akmods-out-'));
      const local = attemptLocalName('localhost/kinoite-zfs-akmods-build:');
      try {
        const reusedBuild = existsSync(join(cached, 'rpms'));
        let timings: Record<string, number>;
        if (reusedBuild) {
          await cp(join(cached, 'rpms'), join(outDir, 'rpms'), { recursive: true });
          timings = JSON.parse(await readFile(join(cached, 'timings.json'), 'utf8').catch(() => '{}'));
        } else {
          noteProgress({ step: `${input.kernel}: build` });
          await mkdir(host.config.worker.ccacheDir, { recursive: true });
          const args = builderRunArgs({
            image: input.builder,
            recipeDir,
            srcDir: join(tarball, '..'),
            outDir,
            kernel: input.kernel,
            zfsVersion: input.zfs.version,
            fedora: input.fedora,
            experimental: input.experimental,
            userspace: input.userspace,
            network: input.network,
            ccacheDir: host.config.worker.ccacheDir,
            name: `kz-akmods-${process.pid}-${Date.now()}`,
          });
          const run = await podman(args, env, {
            // configure and make log to files inside the builder: minutes without a line.
            silentWhileWorking: true,
            onLine: (line) => line.startsWith('build-akmods: ') && noteProgress({ step: `${input.kernel}: ${line}` }),
          }).catch((err: Error) => {
            throw recipeFailure(err, input);
          });
          timings = recipeTimings(run.stdout);
          await saveBuild(cached, outDir, timings);
        }
        const built = await readdir(join(outDir, 'rpms', 'kmods', 'zfs')).catch(() => [] as string[]);
        if (
          kernelsCoveredByRpmFiles(
            [input.kernel],
            built.map((f) => `rpms/kmods/zfs/${f}`),
          ).length === 0
        ) {
          throw new PermanentError(
            FailureType.MissingModulePayload,
            `The akmods builder produced no kmod-zfs RPM for kernel ${input.kernel} (found: ${built.join(', ') || 'nothing'}). Check recipes/akmods/build-akmods.sh and the builder image.`,
          );
        }
        noteProgress({ step: `${input.kernel}: push` });
        await scratchImage({
          dir: outDir,
          labels: {
            ...cacheLabels({ kernels: [input.kernel], zfsVersion: input.zfs.version }),
            'ostree.linux': input.kernel,
          },
          tag: local,
          env,
        });
        const digest = await pushImage(
          { local, dest: input.dest, digestFile: join(outDir, '.digest'), tls: host.tlsArgs(input.dest), env },
          'podman',
        );
        return { kernel: input.kernel, digest, reusedBuild, timings };
      } finally {
        await rm(outDir, { recursive: true, force: true });
        await podman(['rmi', '--force', local], env).catch(() => undefined);
      }
    },

    /** Publishes the merged cache: a new image in `repo` whose layers are the sources' layers; returns its digest. */
    async publishAkmodsCache(input: {
      repo: string;
      tag: string;
      kernels: string[];
      zfsVersion: string;
      sources: { repo: string; digest: string }[];
    }): Promise<{ digest: string }> {
      await host.assertWritable(`${input.repo}:${input.tag}`, 'akmods cache');
      return registry.assembleImage({
        repo: input.repo,
        tag: input.tag,
        layersFrom: input.sources,
        labels: cacheLabels({ kernels: input.kernels, zfsVersion: input.zfsVersion }),
      });
    },
  };
}

/** The host build cache key of one akmods build: every input that can change its RPMs. */
export function buildKey(inputs: {
  tarball: string;
  builderId: string;
  recipe: string;
  kernel: string;
  version: string;
  fedora: string;
  experimental: boolean;
  userspace: boolean;
}): string {
  return createHash('sha256')
    .update(JSON.stringify({ ...inputs, layout: 1 }))
    .digest('hex');
}

async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/** Copies a finished build into the host cache; a concurrent or half-written copy is never visible. */
async function saveBuild(cached: string, outDir: string, timings: Record<string, number>): Promise<void> {
  if (existsSync(join(cached, 'rpms'))) return;
  const tmp = `${cached}.partial-${process.pid}-${Date.now()}`;
  try {
    await cp(join(outDir, 'rpms'), join(tmp, 'rpms'), { recursive: true });
    await writeFile(join(tmp, 'timings.json'), JSON.stringify(timings));
    await rename(tmp, cached);
  } catch {
    // Another worker on this host saved the same build first, or the disk is full: the cache is an optimisation.
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * The recipe's own `build-akmods: ERROR:` line, as a permanent BuildFailed naming the kernel; a
 * failure to install kernel-devel (the network) and failures outside the recipe stay retryable.
 */
function recipeFailure(err: Error, input: BuildKernelAkmodsInput): Error {
  const line = err.message.split('\n').find((l) => l.startsWith('build-akmods: ERROR:'));
  if (!line || /dnf install/.test(line)) return err;
  return new PermanentError(
    FailureType.BuildFailed,
    `Building kmod-zfs ${input.zfs.version} for kernel ${input.kernel} failed: ${line}`,
  );
}
