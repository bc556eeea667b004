/**
 * The replay lock (`inputs.lock.json`) in two formats: the original's `ci/inputs.lock.json`
 * (version, description, base_image, build_container, zfs_minor_version, akmods_upstream_ref)
 * and this project's, which adds the exact ZFS release, the recipe commit, the kernels and the
 * inputs hash. One strict schema reads both (an original lock is a project lock without the
 * additions); placeholders and mismatches are refused with the original's messages, everything
 * else with the rules of core/validate.ts, naming the field, before anything runs.
 */
import { z } from 'zod';
import type { RunInputs } from './pipeline.ts';
import { ruled } from './config.ts';
import { refusal } from './validate.ts';
import { quoteValue } from './errors.ts';
import { pickZfsRelease, type ReleaseInfo } from './compat.ts';
import { zfsMinorVersion } from './artifacts.ts';
import { formatIssues } from './config-parse.ts';

/** The lock file schema. */
export const Lock = z.strictObject({
  version: z.literal(1).default(1).describe('Lock format version.'),
  description: z.string().optional().describe('Free text.'),
  base_image: z.string().min(1, 'Lock file missing required field: base_image').describe('Digest-pinned base image.'),
  build_container: z.string().optional().describe('Digest-pinned builder image.'),
  zfs_minor_version: ruled('zfsLine').optional().describe('ZFS release line, e.g. 2.4.'),
  zfs_release: z
    .string()
    .regex(/^\d+\.\d+\.\d+$/)
    .optional()
    .describe('Exact OpenZFS release to build, e.g. 2.4.4.'),
  akmods_upstream_ref: ruled('gitCommit')
    .optional()
    .describe('Recipe commit whose akmods/ folder builds the akmods (the original pinned its akmods fork here).'),
  recipe_commit: ruled('gitCommit').optional().describe('Exact recipe commit.'),
  kernel_releases: z
    .array(z.string())
    .optional()
    .describe('Kernels of the base (informational; checked after resolve).'),
  inputs_hash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional()
    .describe('Inputs hash of the run this lock came from.'),
});

/** A parsed lock. */
export type Lock = z.infer<typeof Lock>;

/** The fields of the original's `ci/inputs.lock.json` (reference §6.3), in its order. */
export const ORIGINAL_LOCK_FIELDS = [
  'version',
  'description',
  'base_image',
  'build_container',
  'zfs_minor_version',
  'akmods_upstream_ref',
] as const;

/** The original's lock: only its own fields. */
export type OriginalLock = Pick<Lock, (typeof ORIGINAL_LOCK_FIELDS)[number]>;

/** Which format a lock file is in: `original` when it has only the original's fields. */
export function lockFormat(raw: unknown): 'original' | 'kinoite-zfs' {
  const keys = raw && typeof raw === 'object' ? Object.keys(raw) : [];
  return keys.every((k) => (ORIGINAL_LOCK_FIELDS as readonly string[]).includes(k)) ? 'original' : 'kinoite-zfs';
}

/** The one-line refusal of an unknown lock field, naming it and the fields a lock has. */
export function unknownLockFields(keys: readonly string[]): string {
  const known = Object.keys(Lock.shape);
  return `unknown field(s) ${keys.map((k) => `"${k}"`).join(', ')}: an original ci/inputs.lock.json has ${ORIGINAL_LOCK_FIELDS.join(', ')}; a lock exported by kinoite-zfs also ${known.filter((k) => !(ORIGINAL_LOCK_FIELDS as readonly string[]).includes(k)).join(', ')}`;
}

/**
 * Parses a lock file's JSON: the lock, or one line per schema problem (an unknown field named with
 * the fields a lock has; a missing base_image in the original's words).
 */
export function parseLock(raw: unknown): { lock: Lock; problems?: undefined } | { problems: string[] } {
  const parsed = Lock.safeParse(raw);
  if (parsed.success) return { lock: parsed.data };
  const lines = formatIssues(parsed.error);
  return {
    problems: parsed.error.issues.map((issue, i) =>
      issue.code === 'unrecognized_keys'
        ? unknownLockFields(issue.keys)
        : lines[i]!.replace(/^base_image: required field is missing.*/, 'Lock file missing required field: base_image'),
    ),
  };
}

/** Why a lock cannot be replayed, in the original's words where it had them; empty when fine. */
export function lockProblems(lock: Lock, builderOverride?: string): string[] {
  const out: string[] = [];
  for (const field of ['base_image', 'build_container'] as const) {
    const value = lock[field];
    if (value === undefined) continue;
    if (value.includes('REPLACE_ME')) out.push(`Lock file ${field} still contains placeholder value`);
    else {
      const refused = refusal('pinnedImageRef', value);
      if (refused) out.push(`${field}: ${refused}`);
    }
  }
  if (builderOverride && lock.build_container && builderOverride !== lock.build_container) {
    out.push(
      `Replay mismatch: build container input (${builderOverride}) does not match lock file (${lock.build_container}). Set workflow input build_container_image=${lock.build_container} when use_input_lock=true.`,
    );
  }
  if (lock.recipe_commit && lock.akmods_upstream_ref && lock.recipe_commit !== lock.akmods_upstream_ref)
    out.push(
      `akmods_upstream_ref: ${quoteValue(lock.akmods_upstream_ref)} differs from recipe_commit ${quoteValue(lock.recipe_commit)}; both name the recipe commit to replay, give one`,
    );
  if (lock.zfs_release && lock.zfs_minor_version && !lock.zfs_release.startsWith(`${lock.zfs_minor_version}.`))
    out.push(
      `zfs_release: ${quoteValue(lock.zfs_release)} is not in zfs_minor_version ${quoteValue(lock.zfs_minor_version)}; give a release of that line`,
    );
  return out;
}

/**
 * Why the stream's OpenZFS release source (`source`, which lists `releases`) cannot satisfy the
 * lock's ZFS pin, or undefined: its line has no release there, or its exact release is not listed.
 */
export function lockZfsProblem(
  lock: Pick<Lock, 'zfs_minor_version' | 'zfs_release'>,
  releases: readonly ReleaseInfo[],
  source: string,
): string | undefined {
  if (lock.zfs_release) {
    return releases.some((r) => r.tag === `zfs-${lock.zfs_release}`)
      ? undefined
      : `zfs_release: ${quoteValue(lock.zfs_release)} is not a release the OpenZFS release source lists (${source}); export a lock from a newer run`;
  }
  if (!lock.zfs_minor_version || pickZfsRelease({ line: lock.zfs_minor_version, releases })) return undefined;
  return `zfs_minor_version: ${quoteValue(lock.zfs_minor_version)} has no OpenZFS release at ${source} (it lists ${
    releases
      .map((r) => r.tag)
      .slice(0, 8)
      .join(', ') || 'none'
  }); give a line the release source has, e.g. the zfs_minor_version of a newer build-inputs.json`;
}

/**
 * The original's `ci/inputs.lock.json` of a finished run's inputs (`lock export --format original`):
 * what an operator of the original copied by hand from a build-inputs artifact.
 */
export function originalLockFromInputs(inputs: RunInputs, description: string): OriginalLock {
  return {
    version: 1,
    description,
    base_image: inputs.base.pinned,
    build_container: inputs.builder.pinned,
    zfs_minor_version: zfsMinorVersion(inputs.zfs),
    akmods_upstream_ref: inputs.recipe.commit,
  };
}

/** The lock of a finished run's inputs. */
export function lockFromInputs(inputs: RunInputs, hash: string, description: string): Lock {
  return {
    version: 1,
    description,
    base_image: inputs.base.pinned,
    build_container: inputs.builder.pinned,
    zfs_minor_version: inputs.zfs.line,
    zfs_release: inputs.zfs.version,
    akmods_upstream_ref: inputs.recipe.commit,
    recipe_commit: inputs.recipe.commit,
    kernel_releases: inputs.kernels,
    inputs_hash: hash,
  };
}
