/**
 * Akmods stage: check the cache, build the missing kernels' kmod RPMs in the builder image, and
 * publish one merged cache image whose layers are the per-kernel images' layers (assembled in the
 * registry: nothing is downloaded or re-uploaded).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { cacheCoverage, cacheLabels, kernelsFromCacheLabels, kernelsCoveredByRpmFiles, cacheCheckMessage, AKMODS_LABELS } from '../core/cache.ts';
import { parseImageRef, digestRef } from '../core/refs.ts';
import { isValidKernelRelease } from '../core/kernels.ts';
import { PermanentError, FailureType } from '../core/errors.ts';
import { scanLayers } from './layer-reader.ts';
import { builderRunArgs, podman, pullArgs, pushImage, scratchImage } from './podman.ts';
import { checkoutCommit } from './git.ts';
import { downloadOnce, releaseUrl } from './release-source.ts';
import type { ActivityDeps } from './deps.ts';

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
}

/** Activities of the akmods stage. */
export function akmodsActivities({ registry, host }: ActivityDeps) {
  return {
    /** Reads the cache's kernel coverage from its labels, or from its layers for legacy caches. */
    async checkAkmodsCache(input: { cacheRef: string; kernelRefs: Record<string, string>; kernels: string[]; zfsVersion: string; fedora: string }): Promise<AkmodsCacheCheck> {
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
        return { ...coverage, holds: [], perKernel: {}, message: cacheCheckMessage({ image: input.cacheRef, fedora: input.fedora, coverage }) };
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
        await scanLayers({ client: registry, ref: digestRef(name, image.digest), onEntry: (_i, e) => paths.push(e.name), signal: Context.current().cancellationSignal });
        holds = kernelsCoveredByRpmFiles(input.kernels, paths);
        via = 'layer-scan';
      }
      const coverage = cacheCoverage({ required: input.kernels, exists: true, covered: holds, cachedZfsVersion, zfsVersion: input.zfsVersion });
      const perKernel: Record<string, string> = {};
      for (const kernel of coverage.covered) {
        const ref = input.kernelRefs[kernel];
        if (!ref) continue;
        const k = await registry.getImage(ref).catch(() => undefined);
        if (k && k.labels['ostree.linux'] === kernel && k.labels[AKMODS_LABELS.zfsVersion] === input.zfsVersion) perKernel[kernel] = k.digest;
      }
      return {
        ...coverage,
        digest: image.digest,
        holds,
        perKernel,
        message: cacheCheckMessage({ image: input.cacheRef, fedora: input.fedora, coverage, via, cachedZfsVersion, zfsVersion: input.zfsVersion }),
      };
    },

    /** Builds one kernel's kmod RPMs in the builder image and pushes them as a per-kernel image; returns its digest. */
    async buildKernelAkmods(input: BuildKernelAkmodsInput): Promise<{ kernel: string; digest: string }> {
      if (!isValidKernelRelease(input.kernel)) throw new PermanentError(FailureType.InvalidInput, `Refusing to build akmods for kernel release ${JSON.stringify(input.kernel)}: not a kernel release.`);
      parseImageRef(input.builder, 'builderImage');
      parseImageRef(input.dest, 'akmods destination');
      const ctx = Context.current();
      const env = host.containersEnv();
      ctx.heartbeat({ kernel: input.kernel, step: 'recipe' });
      const checkout = await checkoutCommit({ url: input.recipe.git, commit: input.recipe.commit, cacheDir: join(host.workDir, 'recipes') });
      const tarball = await downloadOnce(releaseUrl(input.tarballUrl, input.zfs), join(host.workDir, 'zfs-src', input.zfs.tag, `zfs-${input.zfs.version}.tar.gz`), `source tarball of ${input.zfs.tag}`);
      ctx.heartbeat({ kernel: input.kernel, step: 'pull builder' });
      await podman(pullArgs(input.builder, host.tlsArgs(input.builder)), env);
      const outDir = await mkdtemp(join(host.workDir, 'akmods-out-'));
      const local = `localhost/kinoite-zfs-akmods-build:${ctx.info.activityId.replace(/[^a-zA-Z0-9_.-]/g, '-')}-${ctx.info.attempt}`;
      try {
        ctx.heartbeat({ kernel: input.kernel, step: 'build' });
        await podman(
          builderRunArgs({
            image: input.builder,
            recipeDir: join(checkout, input.recipe.path, 'akmods'),
            srcDir: join(tarball, '..'),
            outDir,
            kernel: input.kernel,
            zfsVersion: input.zfs.version,
            fedora: input.fedora,
            experimental: input.experimental,
            name: `kz-akmods-${process.pid}-${Date.now()}`,
          }),
          env,
        );
        const built = await readdir(join(outDir, 'rpms', 'kmods', 'zfs')).catch(() => [] as string[]);
        if (kernelsCoveredByRpmFiles([input.kernel], built.map((f) => `rpms/kmods/zfs/${f}`)).length === 0) {
          throw new PermanentError(FailureType.MissingModulePayload, `The akmods builder produced no kmod-zfs RPM for kernel ${input.kernel} (found: ${built.join(', ') || 'nothing'}). Check recipes/akmods/build-akmods.sh and the builder image.`);
        }
        ctx.heartbeat({ kernel: input.kernel, step: 'push' });
        await scratchImage({ dir: outDir, labels: { ...cacheLabels({ kernels: [input.kernel], zfsVersion: input.zfs.version }), 'ostree.linux': input.kernel }, tag: local, env });
        const digest = await pushImage({ local, dest: input.dest, digestFile: join(outDir, '.digest'), tls: host.tlsArgs(input.dest), env }, 'podman');
        return { kernel: input.kernel, digest };
      } finally {
        await rm(outDir, { recursive: true, force: true });
        await podman(['rmi', '--force', local], env).catch(() => undefined);
      }
    },

    /** Publishes the merged cache: a new image in `repo` whose layers are the sources' layers; returns its digest. */
    async publishAkmodsCache(input: { repo: string; tag: string; kernels: string[]; zfsVersion: string; sources: { repo: string; digest: string }[] }): Promise<{ digest: string }> {
      parseImageRef(`${input.repo}:${input.tag}`, 'akmods cache');
      return registry.assembleImage({ repo: input.repo, tag: input.tag, layersFrom: input.sources, labels: cacheLabels({ kernels: input.kernels, zfsVersion: input.zfsVersion }) });
    },
  };
}
