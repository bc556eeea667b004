/**
 * The field sets of the original pipeline's files (shared/reference/original-pipeline.md §6.1-6.3),
 * written out for the tests: never taken from the code under test.
 */

/** Top level of build-inputs.json and build-provenance.json. */
export const TOP = ['schema_version', 'generated_at', 'repository', 'workflow', 'run', 'inputs'];
/** `run` of both files. */
export const RUN = ['id', 'attempt', 'number', 'ref', 'sha', 'actor'];
const SHARED = [
  'base_image_ref',
  'base_image_name',
  'base_image_tag',
  'base_image_pinned',
  'base_image_digest',
  'build_container_ref',
  'build_container_pinned',
  'build_container_digest',
  'zfs_minor_version',
  'akmods_upstream_ref',
];
/** `inputs` of build-inputs.json (§6.1). */
export const INPUTS_61 = [
  'use_input_lock',
  'lock_file_path',
  'fedora_version',
  'kernel_release',
  'kernel_releases',
  ...SHARED,
];
/** `inputs` of build-provenance.json (§6.2): no kernel_release, use_input_lock or lock_file_path. */
export const INPUTS_62 = ['fedora_version', 'kernel_releases', ...SHARED];
/** Each image record of build-provenance.json. */
export const IMAGE = ['tag', 'tag_ref', 'digest', 'digest_ref'];
/** `stable` of a promoted run's build-provenance.json. */
export const STABLE_PROMOTED = ['promotion_result', 'promoted', 'audit_tag', 'image', 'akmods'];
/** ci/inputs.lock.json (§6.3), in its order. */
export const LOCK_63 = [
  'version',
  'description',
  'base_image',
  'build_container',
  'zfs_minor_version',
  'akmods_upstream_ref',
];

/** The sorted keys of an object (to compare field sets). */
export const keys = (o: unknown): string[] => Object.keys(o as object).sort();
/** A sorted copy. */
export const sorted = (a: readonly string[]): string[] => [...a].sort();
