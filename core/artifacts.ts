/**
 * The original pipeline's workflow artifacts as files (docs/artifacts.md): `build-inputs.json`
 * (§6.1, every run whose inputs were resolved: promoted, candidate-only, unchanged, blocked,
 * failed) and `build-provenance.json` (§6.2, runs whose candidate passed its checks). Same field
 * names, types and formatting as the original, mapped from what a run records. Pure.
 */
import type { PipelineResult, RunInputs } from './pipeline.ts';

/** The GitHub-shaped identity of a run (`repository`, `workflow`, `run.*` of §6.1). */
export interface ArtifactRun {
  repository: string;
  workflow: string;
  run: { id: number; attempt: number; number: number; ref: string; sha: string; actor: string };
}

/** How the run's inputs were chosen (§6.1 `use_input_lock`, `lock_file_path`). */
export interface LockUse {
  useInputLock: boolean;
  lockFilePath: string;
}

/** The original's lock path, recorded as `lock_file_path` when no lock was read (it was its input's default). */
export const DEFAULT_LOCK_FILE = 'ci/inputs.lock.json';

/** `YYYY-MM-DDTHH:MM:SSZ`: UTC, seconds precision. */
export function artifactTime(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A whole number from a decimal string; 0 when it is not one. */
const int = (v: string | undefined): number => {
  const n = Number(v);
  return v && /^\d+$/.test(v) && Number.isSafeInteger(n) ? n : 0;
};

/**
 * The run identity: the GitHub job's (`GITHUB_*`) when the CLI runs in GitHub Actions; otherwise
 * values from the run itself: the recipe repository, the Temporal workflow id, the stream's run
 * number, the recipe ref and commit, and who triggered it.
 */
export function artifactRun(
  env: NodeJS.ProcessEnv,
  run: { workflowId: string; inputs: RunInputs; by: string },
): ArtifactRun {
  const runNumber = int(/\/run-(\d+)$/.exec(run.workflowId)?.[1]);
  if (env.GITHUB_ACTIONS === 'true')
    return {
      repository: env.GITHUB_REPOSITORY ?? '',
      workflow: env.GITHUB_WORKFLOW ?? '',
      run: {
        id: int(env.GITHUB_RUN_ID),
        attempt: int(env.GITHUB_RUN_ATTEMPT) || 1,
        number: int(env.GITHUB_RUN_NUMBER),
        ref: env.GITHUB_REF ?? '',
        sha: env.GITHUB_SHA ?? '',
        actor: env.GITHUB_ACTOR ?? '',
      },
    };
  return {
    repository: run.inputs.recipe.git,
    workflow: run.workflowId,
    run: {
      id: runNumber,
      attempt: 1,
      number: runNumber,
      ref: run.inputs.recipe.ref,
      sha: run.inputs.recipe.commit,
      actor: run.by,
    },
  };
}

/** The major.minor line of the OpenZFS release a run used (`2.4.4` → `2.4`). */
export function zfsMinorVersion(zfs: Pick<RunInputs['zfs'], 'line' | 'version'>): string {
  return /^\d+\.\d+/.exec(zfs.version)?.[0] ?? zfs.line;
}

/**
 * The inputs both documents share. `zfs_minor_version` is the line of the OpenZFS release the run
 * used; `akmods_upstream_ref` is the recipe commit, whose `akmods/` folder builds the akmods (the
 * original pinned its akmods fork there).
 */
function sharedInputs(i: RunInputs) {
  return {
    base_image_ref: i.base.ref,
    base_image_name: i.base.name,
    base_image_tag: i.base.tag,
    base_image_pinned: i.base.pinned,
    base_image_digest: i.base.digest,
    build_container_ref: i.builder.ref,
    build_container_pinned: i.builder.pinned,
    build_container_digest: i.builder.digest,
    zfs_minor_version: zfsMinorVersion(i.zfs),
    akmods_upstream_ref: i.recipe.commit,
  };
}

/** The fields both documents start with. */
function header(run: ArtifactRun, at: Date) {
  return {
    schema_version: 1,
    generated_at: artifactTime(at),
    repository: run.repository,
    workflow: run.workflow,
    run: run.run,
  };
}

/** `build-inputs.json` (§6.1). */
export function buildInputsDocument(a: { run: ArtifactRun; at: Date; inputs: RunInputs; lock: LockUse }): object {
  const i = a.inputs;
  return {
    ...header(a.run, a.at),
    inputs: {
      use_input_lock: a.lock.useInputLock,
      lock_file_path: a.lock.lockFilePath,
      fedora_version: i.fedora,
      kernel_release: i.kernel,
      kernel_releases: i.kernels,
      ...sharedInputs(i),
    },
  };
}

/** Tag, tag reference, digest and digest reference of one image (no transport prefix). */
function imageRecord(repo: string, tag: string, digest: string) {
  return { tag, tag_ref: `${repo}:${tag}`, digest, digest_ref: `${repo}@${digest}` };
}

/**
 * `build-provenance.json` (§6.2) of a run whose candidate passed its checks, or undefined for any
 * other run (the original published it only then). Promoted: `stable` holds the digests written;
 * otherwise `{ promotion_result, promoted: false }` with why it did not promote (`skipped` for a
 * candidate-only run, `rejected` or `expired` for an approval that did not come).
 */
export function provenanceDocument(a: {
  run: ArtifactRun;
  at: Date;
  result: Partial<PipelineResult>;
}): object | undefined {
  const { inputs: i, candidate, akmods, promotion, outcome } = a.result;
  if (!i || !candidate || !akmods) return undefined;
  const result = promotion ? 'success' : outcome === 'candidate-only' ? 'skipped' : outcome;
  if (!result || !['success', 'skipped', 'rejected', 'expired'].includes(result)) return undefined;
  return {
    ...header(a.run, a.at),
    inputs: { fedora_version: i.fedora, kernel_releases: i.kernels, ...sharedInputs(i) },
    candidate: {
      image: imageRecord(candidate.repo, candidate.tag, candidate.digest),
      akmods: imageRecord(akmods.repo, akmods.tag, akmods.digest),
    },
    stable: promotion
      ? {
          promotion_result: 'success',
          promoted: true,
          audit_tag: promotion.auditTag,
          image: imageRecord(promotion.stableRepo, promotion.stableTags[0]!, promotion.digest),
          akmods: imageRecord(promotion.akmodsStable.repo, promotion.akmodsStable.tag, promotion.akmodsStable.digest),
        }
      : { promotion_result: result, promoted: false },
  };
}

/** The original's file format: 2-space indent and a trailing newline, keys in the original's order. */
export function artifactJson(doc: object): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
