/**
 * The replay lock (`inputs.lock.json`): the original's fields plus the exact ZFS release, the
 * recipe commit, the kernels and the inputs hash. Parsed strictly; placeholders and mismatches
 * are refused with the original's messages before anything runs.
 */
import { z } from 'zod';
import type { RunInputs } from './pipeline.ts';
import { ruled } from './config.ts';

const digestRef = z.string().regex(/^[a-z0-9][a-z0-9._:/-]*@sha256:[0-9a-f]{64}$/, {
  message: 'must be a digest-pinned image reference (name@sha256:…)',
});

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
  akmods_upstream_ref: z.string().optional().describe('Recipe commit (the original pinned its akmods fork here).'),
  recipe_commit: z
    .string()
    .regex(/^[0-9a-f]{40}$/)
    .optional()
    .describe('Exact recipe commit.'),
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

/** Why a lock cannot be replayed, in the original's words where it had them; empty when fine. */
export function lockProblems(lock: Lock, builderOverride?: string): string[] {
  const out: string[] = [];
  if (lock.base_image.includes('REPLACE_ME')) out.push('Lock file base_image still contains placeholder value');
  if (lock.build_container?.includes('REPLACE_ME'))
    out.push('Lock file build_container still contains placeholder value');
  if (!digestRef.safeParse(lock.base_image).success && !lock.base_image.includes('REPLACE_ME'))
    out.push(`Lock file base_image must be pinned by digest (name@sha256:…), got ${lock.base_image}`);
  if (
    lock.build_container &&
    !lock.build_container.includes('REPLACE_ME') &&
    !digestRef.safeParse(lock.build_container).success
  )
    out.push(`Lock file build_container must be pinned by digest, got ${lock.build_container}`);
  if (builderOverride && lock.build_container && builderOverride !== lock.build_container) {
    out.push(
      `Replay mismatch: build container input (${builderOverride}) does not match lock file (${lock.build_container}). Set workflow input build_container_image=${lock.build_container} when use_input_lock=true.`,
    );
  }
  const commit = lock.recipe_commit ?? lock.akmods_upstream_ref;
  if (commit !== undefined && !/^[0-9a-f]{40}$/.test(commit))
    out.push(`Lock file recipe commit must be a full 40-character commit, got ${commit}`);
  return out;
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
