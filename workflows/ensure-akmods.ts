/**
 * Akmods stage: reuse the candidate cache when it covers every kernel; otherwise build only the
 * missing kernels (in parallel, on the build queue) and publish one merged cache image.
 * The stable akmods tag is never written here.
 */
import { digestRef } from '../core/refs.ts';
import { sortKernels } from '../core/kernels.ts';
import { PermanentError, FailureType } from '../core/errors.ts';
import type { RunInputs, StreamPlan, TagPlan } from '../core/pipeline.ts';
import type { Acts } from './activities.ts';
import type { RunState } from './run-state.ts';

/** The akmods cache the run composes from. */
export interface AkmodsResult {
  repo: string;
  tag: string;
  digest: string;
  built: string[];
  reused: string[];
  message: string[];
}

/** Ensures the candidate akmods cache covers every kernel of the inputs; returns its digest. */
export async function ensureAkmods(
  acts: Acts,
  state: RunState,
  args: {
    stream: string;
    plan: StreamPlan;
    inputs: RunInputs;
    tags: TagPlan;
    rebuild: boolean;
    experimental?: boolean;
  },
): Promise<AkmodsResult> {
  const { plan, inputs, tags } = args;
  const repo = plan.images.akmodsCandidate;
  const kernelRefs = Object.fromEntries(inputs.kernels.map((k) => [k, `${repo}:${tags.akmodsKernel[k]}`]));
  const cache = await acts.control.checkAkmodsCache.executeWithOptions(
    { summary: `check akmods cache ${repo}:${tags.akmodsCache}` },
    [
      {
        cacheRef: `${repo}:${tags.akmodsCache}`,
        kernelRefs,
        kernels: inputs.kernels,
        zfsVersion: inputs.zfs.version,
        fedora: inputs.fedora,
      },
    ],
  );
  if (cache.status === 'reusable' && !args.rebuild && cache.digest) {
    for (const k of inputs.kernels) state.akmods(k, 'cached');
    return {
      repo,
      tag: tags.akmodsCache,
      digest: cache.digest,
      built: [],
      reused: inputs.kernels,
      message: cache.message,
    };
  }
  const toBuild = args.rebuild ? inputs.kernels : cache.missing;
  const reused = inputs.kernels.filter((k) => !toBuild.includes(k));
  for (const k of reused) state.akmods(k, 'cached');
  const built = await Promise.all(
    toBuild.map(async (kernel) => {
      state.akmods(kernel, 'building');
      try {
        const r = await acts.build.buildKernelAkmods.executeWithOptions(
          { summary: `build kmod-zfs ${inputs.zfs.version} for ${kernel}` },
          [
            {
              stream: args.stream,
              builder: inputs.builder.pinned,
              kernel,
              fedora: inputs.fedora,
              zfs: { tag: inputs.zfs.tag, version: inputs.zfs.version },
              tarballUrl: plan.zfs.source.tarballUrl,
              recipe: { git: inputs.recipe.git, commit: inputs.recipe.commit, path: inputs.recipe.path },
              dest: kernelRefs[kernel]!,
              experimental: args.experimental,
              // The userspace RPMs are the same for every kernel: one build carries them into the merged cache.
              userspace: kernel === toBuild[0],
              network: plan.builderNetwork,
            },
          ],
        );
        state.akmods(kernel, 'built');
        return r;
      } catch (err) {
        state.akmods(kernel, 'failed');
        throw err;
      }
    }),
  );
  // Reused kernels come from their per-kernel images when those still match; otherwise from the whole old cache.
  const sources: { repo: string; digest: string }[] = [];
  let holds = [...toBuild];
  const fromOldCache = reused.filter((k) => !cache.perKernel[k]);
  if (fromOldCache.length && cache.digest) {
    sources.push({ repo, digest: cache.digest });
    holds = holds.concat(cache.holds);
  }
  for (const k of reused) if (cache.perKernel[k]) sources.push({ repo, digest: cache.perKernel[k]! });
  holds = holds.concat(reused);
  for (const b of built) sources.push({ repo, digest: b.digest });
  const { digest } = await acts.control.publishAkmodsCache.executeWithOptions(
    { summary: `publish merged akmods ${repo}:${tags.akmodsCache}` },
    [{ repo, tag: tags.akmodsCache, kernels: sortKernels(holds), zfsVersion: inputs.zfs.version, sources }],
  );
  const builds = built.map(
    (b) => `${b.kernel}: ${b.reusedBuild ? 'same inputs built before on this host, reused' : buildTimes(b.timings)}`,
  );
  return {
    repo,
    tag: tags.akmodsCache,
    digest,
    built: toBuild,
    reused,
    message: [
      ...cache.message,
      ...builds,
      `Published merged akmods cache: ${digestRef(repo, digest)} (built ${toBuild.join(', ') || 'none'}; reused ${reused.join(', ') || 'none'})`,
    ],
  };
}

/**
 * Branch and PR runs: read-only use of the stream's akmods cache. Never builds; fails closed with
 * the original's guidance when the cache is missing or misses a kernel. A branch run publishes a
 * branch-scoped alias of the cache (by digest); a PR run writes nothing.
 */
export async function reuseSharedAkmods(
  acts: Acts,
  state: RunState,
  args: { stream: string; plan: StreamPlan; inputs: RunInputs; tags: TagPlan; aliasTag?: string },
): Promise<AkmodsResult> {
  const { plan, inputs, tags } = args;
  const repo = plan.images.akmodsCandidate;
  const source = `${repo}:${tags.akmodsCache}`;
  const cache = await acts.control.checkAkmodsCache.executeWithOptions(
    { summary: `check shared akmods ${source} (read-only)` },
    [
      {
        cacheRef: source,
        kernelRefs: {},
        kernels: inputs.kernels,
        zfsVersion: inputs.zfs.version,
        fedora: inputs.fedora,
      },
    ],
  );
  if (cache.status !== 'reusable' || !cache.digest) {
    throw new PermanentError(
      FailureType.PolicyViolation,
      `Shared akmods source tag ${source} is missing or stale for kernels ${cache.missing.join(' ')}. Run a main build with a fresh akmods cache (kinoite-zfs run --stream ${args.stream} --rebuild-akmods), then rerun this build.`,
    );
  }
  for (const k of inputs.kernels) state.akmods(k, 'cached');
  const message = [
    ...cache.message,
    `Read-only validation will reuse ${source} for kernels ${inputs.kernels.join(' ')}.`,
  ];
  if (args.aliasTag) {
    await acts.control.copyImageByDigest.executeWithOptions({ summary: `branch akmods alias ${args.aliasTag}` }, [
      { from: digestRef(repo, cache.digest), to: `${repo}:${args.aliasTag}` },
    ]);
    message.push(`Published branch akmods alias: ${source} -> ${repo}:${args.aliasTag}`);
  }
  return {
    repo,
    tag: args.aliasTag ?? tags.akmodsCache,
    digest: cache.digest,
    built: [],
    reused: inputs.kernels,
    message,
  };
}

/** `configure 189s, build 312s, …` from a build's step timings. */
function buildTimes(t: Record<string, number> | undefined): string {
  // Results recorded before builds reported timings have none.
  const parts = Object.entries(t ?? {}).map(([step, sec]) => `${step} ${sec}s`);
  return parts.length ? `built (${parts.join(', ')})` : 'built';
}
