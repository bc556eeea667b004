/**
 * The akmods stage's decisions: after the cache check, which kernels to build and which to reuse;
 * after the builds, which images the merged cache is assembled from and which kernels it holds;
 * what the stage says about it. The workflow (workflows/ensure-akmods.ts) runs the activities.
 */
import { sortKernels } from './kernels.ts';
import { digestRef } from './refs.ts';

/** What the cache check reported, as far as the plan needs it. */
export interface CacheCheckView {
  status: 'reusable' | 'stale' | 'missing_image';
  /** Required kernels the cache lacks. */
  missing: string[];
  /** Digest of the cache image, when it exists. */
  digest?: string;
  /** Kernels the cache image holds, whether required or not. */
  holds: string[];
  /** Per-kernel image digests of covered kernels whose per-kernel tags still match. */
  perKernel: Record<string, string>;
}

/** One kernel build of the plan. */
export interface KernelBuild {
  kernel: string;
  /** The userspace RPMs are the same for every kernel: one build (the first) carries them into the merged cache. */
  userspace: boolean;
}

/** The verdict of {@link akmodsBuildPlan}. */
export type AkmodsBuildPlan =
  { reuse: true; digest: string } | { reuse: false; builds: KernelBuild[]; toBuild: string[]; reused: string[] };

/**
 * Reuse the cache as it is when it covers every kernel (and no rebuild was asked for); otherwise
 * build the missing kernels (every kernel with `rebuild`) and reuse the others.
 */
export function akmodsBuildPlan(input: {
  kernels: string[];
  rebuild: boolean;
  cache: CacheCheckView;
}): AkmodsBuildPlan {
  const { kernels, rebuild, cache } = input;
  if (cache.status === 'reusable' && !rebuild && cache.digest) return { reuse: true, digest: cache.digest };
  const toBuild = rebuild ? kernels : cache.missing;
  const reused = kernels.filter((k) => !toBuild.includes(k));
  return {
    reuse: false,
    builds: toBuild.map((kernel) => ({ kernel, userspace: kernel === toBuild[0] })),
    toBuild,
    reused,
  };
}

/** The merged cache to publish: its source images (in layer order) and the kernels it holds. */
export interface AkmodsMergePlan {
  sources: { repo: string; digest: string }[];
  /** Natural-sorted. */
  kernels: string[];
}

/**
 * What the merged cache is assembled from. Reused kernels come from their per-kernel images when
 * those still match; otherwise from the whole old cache (which then also brings every kernel it
 * holds). Then the per-kernel images just built, in build order.
 */
export function akmodsMergePlan(input: {
  repo: string;
  toBuild: string[];
  reused: string[];
  cache: Pick<CacheCheckView, 'digest' | 'holds' | 'perKernel'>;
  built: { digest: string }[];
}): AkmodsMergePlan {
  const { repo, toBuild, reused, cache, built } = input;
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
  return { sources, kernels: sortKernels(holds) };
}

/** The stage's lines after a build: one per built kernel, then the published cache. */
export function akmodsBuildMessage(input: {
  repo: string;
  digest: string;
  toBuild: string[];
  reused: string[];
  built: { kernel: string; reusedBuild: boolean; timings?: Record<string, number> }[];
}): string[] {
  const builds = input.built.map(
    (b) => `${b.kernel}: ${b.reusedBuild ? 'same inputs built before on this host, reused' : buildTimes(b.timings)}`,
  );
  return [
    ...builds,
    `Published merged akmods cache: ${digestRef(input.repo, input.digest)} (built ${input.toBuild.join(', ') || 'none'}; reused ${input.reused.join(', ') || 'none'})`,
  ];
}

/** `built (configure 189s, build 312s, …)` from a build's step timings; `built` when it has none. */
export function buildTimes(t: Record<string, number> | undefined): string {
  // Results recorded before builds reported timings have none.
  const parts = Object.entries(t ?? {}).map(([step, sec]) => `${step} ${sec}s`);
  return parts.length ? `built (${parts.join(', ')})` : 'built';
}

/**
 * Branch and PR runs only reuse the stream's cache: why they cannot (the original's guidance), or
 * undefined when the cache covers every kernel.
 */
export function sharedAkmodsProblem(input: {
  source: string;
  stream: string;
  cache: Pick<CacheCheckView, 'status' | 'digest' | 'missing'>;
}): string | undefined {
  const { source, stream, cache } = input;
  if (cache.status === 'reusable' && cache.digest) return undefined;
  return `Shared akmods source tag ${source} is missing or stale for kernels ${cache.missing.join(' ')}. Run a main build with a fresh akmods cache (kinoite-zfs run --stream ${stream} --rebuild-akmods), then rerun this build.`;
}
