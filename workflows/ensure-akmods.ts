/**
 * Akmods stage: reuse the candidate cache when it covers every kernel; otherwise build only the
 * missing kernels (in parallel, on the build queue) and publish one merged cache image.
 * The stable akmods tag is never written here.
 */
import { digestRef } from '../core/refs.ts';
import { akmodsBuildMessage, akmodsBuildPlan, akmodsMergePlan, sharedAkmodsProblem } from '../core/akmods-plan.ts';
import { PermanentError, FailureType } from '../core/errors.ts';
import type { RunInputs, StreamPlan, TagPlan } from '../core/pipeline.ts';
import type { Acts } from './activities.ts';
import { onBuildHost } from './build-host.ts';
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
  const buildPlan = akmodsBuildPlan({ kernels: inputs.kernels, rebuild: args.rebuild, cache });
  if (buildPlan.reuse) {
    for (const k of inputs.kernels) state.akmods(k, 'cached');
    const { digest } = buildPlan;
    return { repo, tag: tags.akmodsCache, digest, built: [], reused: inputs.kernels, message: cache.message };
  }
  const { toBuild, reused } = buildPlan;
  for (const k of reused) state.akmods(k, 'cached');
  const built = await Promise.all(
    buildPlan.builds.map(async ({ kernel, userspace }) => {
      state.akmods(kernel, 'building');
      try {
        const r = await onBuildHost(acts, state, `build kmod-zfs ${inputs.zfs.version} for ${kernel}`, (o) =>
          acts.build.buildKernelAkmods.executeWithOptions(o, [
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
              userspace,
              network: plan.builderNetwork,
            },
          ]),
        );
        state.akmods(kernel, 'built');
        return r;
      } catch (err) {
        state.akmods(kernel, 'failed');
        throw err;
      }
    }),
  );
  const merge = akmodsMergePlan({ repo, toBuild, reused, cache, built });
  const { digest } = await acts.control.publishAkmodsCache.executeWithOptions(
    { summary: `publish merged akmods ${repo}:${tags.akmodsCache}` },
    [{ repo, tag: tags.akmodsCache, kernels: merge.kernels, zfsVersion: inputs.zfs.version, sources: merge.sources }],
  );
  return {
    repo,
    tag: tags.akmodsCache,
    digest,
    built: toBuild,
    reused,
    message: [...cache.message, ...akmodsBuildMessage({ repo, digest, toBuild, reused, built })],
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
  const problem = sharedAkmodsProblem({ source, stream: args.stream, cache });
  if (problem || !cache.digest) throw new PermanentError(FailureType.PolicyViolation, problem!);
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
