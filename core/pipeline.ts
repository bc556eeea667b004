/**
 * The data a pipeline run carries from stage to stage, and the pure functions that derive
 * records from it (inputs identity, build-inputs and provenance documents, tag plans).
 * Shared by workflows, activities and the CLI.
 */
import type { Config, StreamSettings } from './config.ts';
import { canonicalJson, inputsHash } from './hash.ts';
import { fedoraVersionFromKernel, primaryKernel } from './kernels.ts';
import { akmodsCacheTag, akmodsKernelTag, auditTag, candidateTag, expandTagPattern } from './tags.ts';
import type { Outcome, Stage } from './progress.ts';
import { checkValue, type RuleName } from './validate.ts';
import { parseImageRef } from './refs.ts';
import { invalidInput, quoteValue } from './errors.ts';
import type { StreamContext, Release } from './stream-rules.ts';
import type { Lock } from './lock.ts';
import type { BootPolicy, KernelBoot } from './boot.ts';
import type { NotifyEvent } from './notify.ts';
import type { RetryBudget } from './retry-budget.ts';

/** Version of this pipeline; part of the inputs identity so a pipeline change rebuilds. */
export const PIPELINE_VERSION = '1';

/** The public settings of a stream a run works with (everything but host-local secrets). */
export type StreamPlan = Omit<StreamSettings, 'signing' | 'schedule' | 'notify' | 'retry'> & {
  /** Retry budgets by kind of work (absent in runs started before they existed: the defaults apply). */
  retry?: RetryBudget;
  /** Which events each webhook wants, by position in the config; URLs and secrets stay on the workers (a webhook URL can hold a token). */
  notify?: { events: NotifyEvent[] }[];
};

/**
 * A stream's plan from a config: what the workers run a stream with. Only the workers' own config
 * is read for this (the `loadStreamPlan` activity); a trigger names a stream, never its settings.
 */
export function streamPlanOf(config: Config, stream: string): StreamPlan | undefined {
  const s = Object.hasOwn(config.streams, stream) ? config.streams[stream] : undefined;
  if (!s) return undefined;
  const { signing: _signing, schedule: _schedule, notify, ...plan } = s;
  return { ...plan, notify: notify.map((w) => ({ events: [...w.events] })) };
}

/** The repositories (registry/path) a stream writes to: a worker pushes, copies and signs only into these. */
export function streamRepositories(plan: Pick<StreamPlan, 'images'>): string[] {
  const { candidate, stable, akmodsCandidate, akmodsStable } = plan.images;
  return [...new Set([candidate, stable, akmodsCandidate, akmodsStable].map((r) => parseImageRef(r).name))];
}

/** Why and by whom a run was started. */
export interface Trigger {
  /** cli, schedule, github, ... */
  source: string;
  /** Who asked (user, actor); informational. */
  by?: string;
  /** Commit that caused the run (e.g. the pushed recipe commit), if any. */
  commit?: string;
  /** Where a GitHub Actions job started the run. */
  github?: { repository: string; ref: string; runId: string; runUrl: string; eventName: string };
}

/** Input of one pipeline run workflow. */
export interface PipelineInput {
  /** Stream name (a key of `streams` in the config). */
  stream: string;
  /**
   * Ignored since patch plan-from-worker: the run reads its stream's settings from the workers' config.
   * Runs started before it carry the starter's copy here.
   */
  plan?: StreamPlan;
  /** Increasing run number of the stream; used in the audit tag. */
  runNumber: number;
  trigger: Trigger;
  options?: {
    /** Build akmods for every kernel even if the cache covers them. */
    rebuildAkmods?: boolean;
    /** false: build and test only (candidate-only run). @default true */
    promote?: boolean;
  };
  /** What the stream knows (last good release, vetoes, hold); absent for a standalone run. */
  context?: StreamContext;
  /** main (the default), branch (read-only, branch tags only) or pr (validation, nothing user-facing). */
  mode?: RunMode;
  /** Branch name for branch mode, PR number for pr mode. */
  branch?: string;
  pr?: number;
  /** Replay exactly these pinned inputs instead of resolving floating ones. */
  lock?: Lock;
}

/** How a run publishes. */
export type RunMode = 'main' | 'branch' | 'pr';

/** A digest-pinned image. */
export interface PinnedImage {
  /** The reference the run started from (may float). */
  ref: string;
  /** registry/repository */
  name: string;
  digest: string;
  /** name@digest */
  pinned: string;
}

/** The exact, digest-pinned things a run uses; their hash is the identity of "the same build". */
export interface RunInputs {
  base: PinnedImage & { tag: string; ostreeLinux: string; version: string };
  builder: PinnedImage;
  kernels: string[];
  kernel: string;
  fedora: string;
  zfs: { line: string; tag: string; version: string; linuxMin?: string; linuxMax?: string };
  recipe: { git: string; path: string; ref: string; commit: string };
  pipelineVersion: string;
}

/**
 * The inputs of a run from what the resolve stage pinned: the newest kernel is the primary one,
 * Fedora comes from it (the original's rule; images with other kernel naming fall back to the
 * base's version label). Notes say what the operator should know: a base whose `ostree.linux`
 * label names another kernel than its newest module folder.
 */
export function assembleInputs(resolved: {
  plan: Pick<StreamPlan, 'recipe'>;
  base: RunInputs['base'];
  builder: RunInputs['builder'];
  kernels: string[];
  zfs: RunInputs['zfs'];
  recipeCommit: string;
}): { inputs: RunInputs; notes: string[] } {
  const { plan, base, builder, kernels, zfs } = resolved;
  const kernel = primaryKernel(kernels);
  const fedora = fedoraVersionFromKernel(kernel) ?? base.version.split('.')[0] ?? '';
  const notes: string[] = [];
  if (base.ostreeLinux !== kernel)
    notes.push(`Base image label/kernel directory mismatch: label=${base.ostreeLinux} newest_dir=${kernel}`);
  const inputs: RunInputs = {
    base: {
      ref: base.ref,
      name: base.name,
      digest: base.digest,
      pinned: base.pinned,
      tag: base.tag,
      ostreeLinux: base.ostreeLinux,
      version: base.version,
    },
    builder,
    kernels,
    kernel,
    fedora,
    zfs,
    recipe: { git: plan.recipe.git, path: plan.recipe.path, ref: plan.recipe.ref, commit: resolved.recipeCommit },
    pipelineVersion: PIPELINE_VERSION,
  };
  return { inputs, notes };
}

/** The identity fields of the inputs (what must be equal for two runs to be "the same build"). */
export function inputsIdentity(inputs: RunInputs): object {
  return {
    base: inputs.base.digest,
    builder: inputs.builder.digest,
    kernels: inputs.kernels,
    zfs: inputs.zfs.version,
    recipe: inputs.recipe.commit,
    recipePath: inputs.recipe.path,
    pipeline: inputs.pipelineVersion,
  };
}

/** sha256 of the canonical JSON of the inputs identity. */
export function hashInputs(inputs: RunInputs): string {
  return inputsHash(inputsIdentity(inputs));
}

/**
 * The stream plan a replay resolves: the lock's base image, builder, ZFS line and recipe commit
 * replace the stream's (the builder and the line only when the lock has them). Without a lock, the
 * stream's plan as it is.
 */
export function planFromLock(plan: StreamPlan, lock: Lock | undefined): StreamPlan {
  if (!lock) return plan;
  const problem = lockScopeProblem(plan, lock);
  if (problem) throw invalidInput(problem);
  return {
    ...plan,
    baseImage: lock.base_image,
    builderImage: lock.build_container ?? plan.builderImage,
    zfs: { ...plan.zfs, line: lock.zfs_minor_version ?? plan.zfs.line },
    recipe: { ...plan.recipe, ref: lock.recipe_commit ?? lock.akmods_upstream_ref ?? plan.recipe.ref },
  };
}

/**
 * The plan a run resolves, with the recipe ref it builds: a replay builds the lock's commit
 * ({@link planFromLock}); a branch or PR run builds its trigger's commit (a commit of the configured
 * recipe repository: the location stays the workers', and the resolve stage fetches the commit from
 * there, refusing one it does not have); a main run builds `recipe.ref`, whatever commit its
 * trigger names, so only the configured branch ever reaches stable (a lock is how a main run
 * builds an exact commit).
 */
export function planForRun(plan: StreamPlan, run: { mode: RunMode; commit?: string; lock?: Lock }): StreamPlan {
  const p = planFromLock(plan, run.lock);
  if (run.mode === 'main' || !run.commit) return p;
  return { ...p, recipe: { ...p.recipe, ref: run.commit } };
}

/**
 * What a run says about the recipe commit it built when that is not the commit its trigger named:
 * a main run builds `recipe.ref`; a branch or PR run without a commit builds it too.
 */
export function recipeCommitNote(run: { mode: RunMode; commit?: string }, recipe: RunInputs['recipe']): string[] {
  if (run.mode !== 'main' && !run.commit)
    return [`No commit given: this ${run.mode} run built recipe.ref ${recipe.ref} at ${recipe.commit.slice(0, 12)}`];
  if (run.mode === 'main' && run.commit && !recipe.commit.startsWith(run.commit))
    return [
      `The trigger names commit ${run.commit.slice(0, 12)}; a main run builds recipe.ref ${recipe.ref} (at ${recipe.commit.slice(0, 12)})`,
    ];
  return [];
}

/**
 * Why a lock may not be replayed on this stream, or undefined: a lock pins digests of the stream's
 * own base and builder repositories; it cannot point a run at other images.
 */
export function lockScopeProblem(plan: Pick<StreamPlan, 'baseImage' | 'builderImage'>, lock: Lock): string | undefined {
  const pairs: [string, string | undefined, string][] = [
    ['base_image', lock.base_image, plan.baseImage],
    ['build_container', lock.build_container, plan.builderImage],
  ];
  for (const [field, locked, configured] of pairs) {
    if (!locked || locked.includes('REPLACE_ME')) continue;
    const [a, b] = [parseImageRef(locked, `lock ${field}`).name, parseImageRef(configured).name];
    if (a !== b)
      return `${field}: ${quoteValue(locked)} is not in the stream's repository ${b}; a lock pins digests of the configured images and cannot choose other ones (change the image in the workers' config instead)`;
  }
  return undefined;
}

/** Every tag a main run writes, derived in one place. */
export interface TagPlan {
  candidate: string;
  akmodsCache: string;
  akmodsKernel: Record<string, string>;
  audit: string;
  stable: string[];
}

/** The tags of a run: candidate `<sha7>-<fedora>`, akmods `main-<fedora>`, audit `stable-<run>-<sha7>`, stable tags. */
export function tagPlan(input: { plan: StreamPlan; inputs: RunInputs; runNumber: number }): TagPlan {
  const sha7 = input.inputs.recipe.commit.slice(0, 7);
  const fedora = input.inputs.fedora;
  const prefix = input.plan.images.akmodsTagPrefix;
  return {
    candidate: candidateTag({ sha7, fedora }),
    akmodsCache: akmodsCacheTag({ prefix, fedora }),
    akmodsKernel: Object.fromEntries(
      input.inputs.kernels.map((k) => [k, akmodsKernelTag({ prefix, fedora, kernel: k })]),
    ),
    audit: auditTag({ run: input.runNumber, sha7 }),
    stable: [...new Set(input.plan.images.stableTags.map((p) => expandTagPattern(p, { fedora })))],
  };
}

/** Labels written on the candidate (and so on the stable image): the inputs, readable with skopeo inspect. */
export function imageLabels(inputs: RunInputs, hash: string): Record<string, string> {
  return {
    'io.github.kinoite-zfs.inputs-hash': hash,
    'io.github.kinoite-zfs.kernel-releases': inputs.kernels.join(' '),
    'io.github.kinoite-zfs.zfs-version': inputs.zfs.version,
    'io.github.kinoite-zfs.base-digest': inputs.base.digest,
    'io.github.kinoite-zfs.recipe-commit': inputs.recipe.commit,
    'org.opencontainers.image.revision': inputs.recipe.commit,
    'org.opencontainers.image.base.digest': inputs.base.digest,
    'org.opencontainers.image.base.name': `${inputs.base.name}:${inputs.base.tag}`,
  };
}

/** Where the run is and how each stage went; the CLI and UI show it. */
export interface StageRecord {
  stage: Stage;
  status: 'running' | 'done' | 'failed' | 'skipped';
  startedAt: string;
  endedAt?: string;
  detail?: string;
}

/** Progress of a run, returned by the `progress` query. */
export interface RunProgress {
  stream: string;
  stage: Stage;
  stages: StageRecord[];
  kernels: string[];
  zfsVersion?: string;
  candidateDigest?: string;
  inputsHash?: string;
  akmods: { kernel: string; status: 'cached' | 'building' | 'built' | 'failed' }[];
  /** The booted check: the policy used and each kernel's verdict. */
  boot?: BootRecord;
  /** Builds no build host has taken yet, as "no build host has taken this for N minutes: …" (retry.buildHostWait). */
  waiting?: string[];
  outcome?: Outcome;
  message?: string;
}

/** The booted check of a run: the stream's policy and each kernel's verdict. */
export interface BootRecord {
  policy: BootPolicy;
  kernels: KernelBoot[];
  warnings: string[];
}

/** The digests a promotion wrote. */
export interface PromotionRecord {
  stableRepo: string;
  digest: string;
  auditTag: string;
  stableTags: string[];
  akmodsStable: { repo: string; tag: string; digest: string };
  previous: Record<string, string | null>;
  /** The `cosign verify` command for the stable image, built on the worker from its own config (absent in runs from before it). */
  verify?: string;
}

/** What a finished run returns (and keeps in history). */
export interface PipelineResult {
  stream: string;
  outcome: Outcome;
  message: string;
  inputsHash?: string;
  inputs?: RunInputs;
  /** The candidate; `verify` (the `cosign verify` command, built on the worker) when the run signed it. */
  candidate?: { repo: string; tag: string; digest: string; verify?: string };
  akmods?: { repo: string; tag: string; digest: string; built: string[]; reused: string[] };
  promotion?: PromotionRecord;
  /** The booted check of the candidate (absent when the run ended before it). */
  boot?: BootRecord;
  buildInputs?: object;
  provenance?: object;
  /** The release this run made, when it promoted. */
  release?: Release;
  stages: StageRecord[];
}

/** Run context recorded in build-inputs and provenance (workflow identity instead of a GitHub run). */
export interface RunContext {
  workflowId: string;
  runId: string;
  runNumber: number;
  trigger: Trigger;
  generatedAt: string;
}

/** The original's build-inputs.json (§6.1) plus the inputs hash, ZFS release and workflow identity. */
export function buildInputsRecord(ctx: RunContext, inputs: RunInputs, hash: string): object {
  return {
    schema_version: 1,
    generated_at: ctx.generatedAt,
    workflow: { id: ctx.workflowId, run_id: ctx.runId, run_number: ctx.runNumber },
    trigger: ctx.trigger,
    inputs_hash: hash,
    inputs: {
      fedora_version: inputs.fedora,
      kernel_release: inputs.kernel,
      kernel_releases: inputs.kernels,
      base_image_ref: inputs.base.ref,
      base_image_name: inputs.base.name,
      base_image_tag: inputs.base.tag,
      base_image_pinned: inputs.base.pinned,
      base_image_digest: inputs.base.digest,
      build_container_ref: inputs.builder.ref,
      build_container_pinned: inputs.builder.pinned,
      build_container_digest: inputs.builder.digest,
      zfs_minor_version: inputs.zfs.line,
      zfs_release: inputs.zfs.version,
      recipe_git: inputs.recipe.git,
      recipe_ref: inputs.recipe.ref,
      recipe_commit: inputs.recipe.commit,
      akmods_upstream_ref: inputs.recipe.commit,
      pipeline_version: inputs.pipelineVersion,
    },
  };
}

/** The original's build-provenance.json (§6.2) with the promoted digests. */
export function provenanceRecord(input: {
  ctx: RunContext;
  inputs: RunInputs;
  hash: string;
  candidate: { repo: string; tag: string; digest: string };
  akmods: { repo: string; tag: string; digest: string };
  promotion?: Omit<PromotionRecord, 'previous'>;
  promotionResult: string;
}): object {
  const ref = (repo: string, tag: string, digest: string) => ({
    tag,
    tag_ref: `${repo}:${tag}`,
    digest,
    digest_ref: `${repo}@${digest}`,
  });
  const b = buildInputsRecord(input.ctx, input.inputs, input.hash) as { inputs: Record<string, unknown> };
  return {
    ...b,
    candidate: {
      image: ref(input.candidate.repo, input.candidate.tag, input.candidate.digest),
      akmods: ref(input.akmods.repo, input.akmods.tag, input.akmods.digest),
    },
    stable: input.promotion
      ? {
          promotion_result: 'success',
          promoted: true,
          audit_tag: input.promotion.auditTag,
          image: ref(input.promotion.stableRepo, input.promotion.stableTags[0]!, input.promotion.digest),
          tags: input.promotion.stableTags,
          akmods: ref(
            input.promotion.akmodsStable.repo,
            input.promotion.akmodsStable.tag,
            input.promotion.akmodsStable.digest,
          ),
        }
      : { promotion_result: input.promotionResult, promoted: false },
  };
}

/** A SLSA provenance v1 predicate for the promoted image (what `cosign attest --type slsaprovenance1` carries). */
export function slsaPredicate(input: { ctx: RunContext; inputs: RunInputs; hash: string; builderId: string }): object {
  const i = input.inputs;
  return {
    buildDefinition: {
      buildType: 'urn:kinoite-zfs:buildtype:pipeline-run:v1',
      externalParameters: {
        baseImage: i.base.ref,
        builderImage: i.builder.ref,
        zfsLine: i.zfs.line,
        recipe: { git: i.recipe.git, ref: i.recipe.ref, path: i.recipe.path },
      },
      internalParameters: {
        inputsHash: input.hash,
        pipelineVersion: i.pipelineVersion,
        kernels: i.kernels,
        zfsRelease: i.zfs.version,
        fedora: i.fedora,
      },
      resolvedDependencies: [
        {
          uri: `oci://${i.base.name}`,
          digest: { sha256: i.base.digest.replace(/^sha256:/, '') },
          annotations: { tag: i.base.tag },
        },
        { uri: `oci://${i.builder.name}`, digest: { sha256: i.builder.digest.replace(/^sha256:/, '') } },
        { uri: `git+${i.recipe.git}`, digest: { gitCommit: i.recipe.commit } },
        { uri: `zfs:${i.zfs.tag}` },
      ],
    },
    runDetails: {
      builder: { id: input.builderId },
      metadata: { invocationId: `${input.ctx.workflowId}/${input.ctx.runId}`, startedOn: input.ctx.generatedAt },
    },
  };
}

/** Stable JSON text for files (2-space indent, trailing newline). */
export function prettyJson(value: unknown): string {
  return `${JSON.stringify(JSON.parse(canonicalJson(value)), null, 2)}\n`;
}

/**
 * Checks every value of a plan with the config check's rules (core/validate.ts) before any
 * activity runs (a plan can reach a workflow without passing the config loader, e.g. started from
 * the Web UI, and a lock replaces some of its values).
 * @throws PermanentError InvalidInput `field: "value" problem`, naming the first bad field.
 */
export function validatePlan(plan: StreamPlan): void {
  const checks: [RuleName, string | undefined, string][] = [
    ['imageRef', plan.baseImage, 'baseImage'],
    ['imageRef', plan.builderImage, 'builderImage'],
    ...(['candidate', 'stable', 'akmodsCandidate', 'akmodsStable'] as const).map((key): [RuleName, string, string] => [
      'repository',
      plan.images[key],
      `images.${key}`,
    ]),
    ...plan.images.stableTags.map((t, i): [RuleName, string, string] => ['tagPattern', t, `images.stableTags.${i}`]),
    ['tagPrefix', plan.images.akmodsTagPrefix, 'images.akmodsTagPrefix'],
    ['recipeLocation', plan.recipe.git, 'recipe.git'],
    ['gitRef', plan.recipe.ref, 'recipe.ref'],
    ['recipePath', plan.recipe.path, 'recipe.path'],
    ['zfsLine', plan.zfs.line, 'zfs.line'],
    ['httpUrl', plan.zfs.source.releasesUrl, 'zfs.source.releasesUrl'],
    ['releaseUrlTemplate', plan.zfs.source.metaUrl, 'zfs.source.metaUrl'],
    ['releaseUrlTemplate', plan.zfs.source.tarballUrl, 'zfs.source.tarballUrl'],
    // Optional in plans recorded before these settings existed.
    ['duration', plan.zfs.recheckEvery, 'zfs.recheckEvery'],
    ['duration', plan.promotion?.timeout, 'promotion.timeout'],
    ['duration', plan.smoke?.bootTimeout, 'smoke.bootTimeout'],
  ];
  for (const [rule, value, field] of checks) if (value !== undefined) checkValue(rule, value, field);
}
