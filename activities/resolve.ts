/**
 * Resolve stage: pin the base and builder images by digest, list the base's kernels from its
 * layers (memoised by digest), pick the ZFS release and read its META, pin the recipe commit.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { parseImageRef, sourceTagOf, digestRef, tagRef } from '../core/refs.ts';
import { immutableBaseTagCandidates } from '../core/tags.ts';
import { fedoraVersionFromKernel, primaryKernel, sortKernels } from '../core/kernels.ts';
import { LayerScan } from '../core/layers.ts';
import { parseMeta, pickZfsRelease } from '../core/compat.ts';
import { PermanentError, FailureType } from '../core/errors.ts';
import { checkValue } from '../core/validate.ts';
import type { PinnedImage } from '../core/pipeline.ts';
import type { StreamPlan } from '../core/pipeline.ts';
import { scanLayers } from './layer-reader.ts';
import { fetchReleases, fetchText, releaseUrl } from './release-source.ts';
import { checkoutCommit, resolveCommit } from './git.ts';
import type { ActivityDeps } from './deps.ts';
import { noteProgress } from './progress.ts';

/** The base image, pinned, with the immutable tag that maps to the same digest. */
export interface BaseImage extends PinnedImage {
  tag: string;
  ostreeLinux: string;
  version: string;
  layers: string[];
}

/** Activities of the resolve stage. */
export function resolveActivities({ registry, host }: ActivityDeps) {
  return {
    /** Pins the base image by digest and finds its immutable date tag (fails closed when none maps to the digest). */
    async inspectBaseImage(input: { ref: string }): Promise<BaseImage> {
      const parsed = parseImageRef(input.ref, 'baseImage');
      const image = await registry.getImage(input.ref).catch((err) => {
        if (err instanceof PermanentError && err.type === FailureType.ImageNotFound) {
          throw new PermanentError(
            FailureType.ImageNotFound,
            `Failed to resolve base image digest for ${input.ref}: the registry does not have it. Check baseImage in the config.`,
          );
        }
        throw err;
      });
      const ostreeLinux = image.labels['ostree.linux'];
      if (!ostreeLinux)
        throw new PermanentError(FailureType.InvalidInput, `Failed to read ostree.linux label from ${input.ref}`);
      const version = image.labels['org.opencontainers.image.version'] ?? '';
      const digest = image.indexDigest ?? image.digest;
      const fedora = fedoraVersionFromKernel(ostreeLinux) ?? version.split('.')[0] ?? '';
      const candidates = immutableBaseTagCandidates({
        sourceTag: sourceTagOf(input.ref),
        versionLabel: version,
        fedora,
      });
      let tag: string | undefined;
      for (const candidate of candidates) {
        if ((await registry.resolveDigest(tagRef(parsed.name, candidate)).catch(() => undefined)) === digest) {
          tag = candidate;
          break;
        }
      }
      if (!tag)
        throw new PermanentError(
          FailureType.InvalidInput,
          `Failed to map digest ${digest} to an immutable tag. Tried candidate tags: ${candidates.join(' ')}`,
        );
      return {
        ref: input.ref,
        name: parsed.name,
        digest,
        pinned: digestRef(parsed.name, digest),
        tag,
        ostreeLinux,
        version,
        layers: image.layers.map((l) => l.digest),
      };
    },

    /** Pins any image (the builder) by digest. */
    async resolveImageDigest(input: { ref: string; field: string }): Promise<PinnedImage> {
      const parsed = parseImageRef(input.ref, input.field);
      const digest = await registry.resolveDigest(input.ref);
      if (!digest)
        throw new PermanentError(
          FailureType.ImageNotFound,
          `Failed to resolve ${input.field} digest for ${input.ref}: the registry does not have it.`,
        );
      return { ref: input.ref, name: parsed.name, digest, pinned: digestRef(parsed.name, digest) };
    },

    /**
     * Lists the kernels under /usr/lib/modules of a digest-pinned base, honouring whiteouts.
     * Memoised by digest on this host: a second call for the same digest reads no layer.
     */
    async listBaseKernels(input: {
      pinned: string;
      digest: string;
    }): Promise<{ kernels: string[]; layersRead: number; memoised: boolean }> {
      const memo = join(host.workDir, 'kernel-memo', `${input.digest.replace(':', '-')}.json`);
      if (existsSync(memo))
        return { kernels: JSON.parse(await readFile(memo, 'utf8')).kernels, layersRead: 0, memoised: true };
      const scan = new LayerScan();
      const ctx = Context.current();
      const { layersRead } = await scanLayers({
        client: registry,
        ref: input.pinned,
        onLayer: (i) => {
          scan.beginLayer();
          noteProgress({ step: `layer ${i}` });
        },
        onEntry: (_i, e) => scan.entry(e),
        signal: ctx.cancellationSignal,
      });
      const kernels = sortKernels(scan.kernels());
      primaryKernel(kernels); // throws the original's message when there is none
      await mkdir(join(host.workDir, 'kernel-memo'), { recursive: true });
      await writeFile(`${memo}.tmp`, JSON.stringify({ digest: input.digest, kernels }));
      await rename(`${memo}.tmp`, memo);
      return { kernels, layersRead, memoised: false };
    },

    /** Picks the newest release of the configured line (or exactly `pin`, when replaying a lock) and reads its META. */
    async resolveZfsRelease(input: { line: string; source: StreamPlan['zfs']['source']; pin?: string }) {
      checkValue('zfsLine', input.line, 'zfs.line');
      checkValue('httpUrl', input.source.releasesUrl, 'zfs.source.releasesUrl');
      checkValue('releaseUrlTemplate', input.source.metaUrl, 'zfs.source.metaUrl');
      const releases = await fetchReleases(input.source.releasesUrl);
      const picked = input.pin
        ? releases.some((r) => r.tag === `zfs-${input.pin}`)
          ? { tag: `zfs-${input.pin}`, version: input.pin }
          : undefined
        : pickZfsRelease({ line: input.line, releases });
      if (!picked && input.pin)
        throw new PermanentError(
          FailureType.InvalidInput,
          `The lock pins OpenZFS ${input.pin}, which ${input.source.releasesUrl} does not list.`,
        );
      if (!picked)
        throw new PermanentError(
          FailureType.InvalidInput,
          `No OpenZFS release in line ${input.line} at ${input.source.releasesUrl} (found: ${
            releases
              .map((r) => r.tag)
              .slice(0, 8)
              .join(', ') || 'none'
          }). Check zfs.line in the config.`,
        );
      const meta = parseMeta(await fetchText(releaseUrl(input.source.metaUrl, picked), `META of ${picked.tag}`));
      return {
        line: input.line,
        tag: picked.tag,
        version: picked.version,
        linuxMin: meta.linuxMin,
        linuxMax: meta.linuxMax,
      };
    },

    /**
     * Pins the recipe ref to a commit. A full commit id (a branch or PR run's, a lock's) is fetched
     * from the repository, so one it does not have is refused here, before anything is built.
     */
    async resolveRecipeCommit(input: { git: string; ref: string }): Promise<{ commit: string }> {
      const commit = await resolveCommit(input.git, input.ref);
      if (commit === input.ref)
        await checkoutCommit({ url: input.git, commit, cacheDir: join(host.workDir, 'recipes') });
      return { commit };
    },
  };
}
