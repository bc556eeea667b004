/**
 * Resolve stage: every input pinned (base and builder by digest, kernels from the base's layers,
 * the ZFS release and its META, the recipe commit), then the inputs hash.
 */
import { fedoraVersionFromKernel, primaryKernel } from '../core/kernels.ts';
import { hashInputs, validatePlan, PIPELINE_VERSION, type RunInputs, type StreamPlan } from '../core/pipeline.ts';
import type { Acts } from './activities.ts';
import type { Lock } from '../core/lock.ts';

/** Pinned inputs, their hash, and notes for the log. */
export interface Resolved {
  inputs: RunInputs;
  hash: string;
  notes: string[];
}

/** Resolves the inputs of a run from the stream plan, or replays the pinned inputs of a lock. */
export async function resolveInputs({ control }: Acts, streamPlan: StreamPlan, lock?: Lock): Promise<Resolved> {
  const plan: StreamPlan = lock
    ? {
        ...streamPlan,
        baseImage: lock.base_image,
        builderImage: lock.build_container ?? streamPlan.builderImage,
        zfs: { ...streamPlan.zfs, line: lock.zfs_minor_version ?? streamPlan.zfs.line },
        recipe: { ...streamPlan.recipe, ref: lock.recipe_commit ?? lock.akmods_upstream_ref ?? streamPlan.recipe.ref },
      }
    : streamPlan;
  validatePlan(plan);
  const [base, builder, zfs, recipe] = await Promise.all([
    control.inspectBaseImage.executeWithOptions({ summary: `pin base ${plan.baseImage}` }, [{ ref: plan.baseImage }]),
    control.resolveImageDigest.executeWithOptions({ summary: `pin builder ${plan.builderImage}` }, [
      { ref: plan.builderImage, field: 'builderImage' },
    ]),
    control.resolveZfsRelease.executeWithOptions(
      { summary: `pick OpenZFS ${lock?.zfs_release ?? `${plan.zfs.line}.x`}` },
      [{ line: plan.zfs.line, source: plan.zfs.source, ...(lock?.zfs_release ? { pin: lock.zfs_release } : {}) }],
    ),
    control.resolveRecipeCommit.executeWithOptions({ summary: `pin recipe ${plan.recipe.ref}` }, [
      { git: plan.recipe.git, ref: plan.recipe.ref },
    ]),
  ]);
  const { kernels } = await control.listBaseKernels.executeWithOptions({ summary: `list kernels of ${base.pinned}` }, [
    { pinned: base.pinned, digest: base.digest },
  ]);
  const kernel = primaryKernel(kernels);
  // Fedora from the newest kernel (the original's rule); images with other kernel naming fall back to the version label.
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
    recipe: { git: plan.recipe.git, path: plan.recipe.path, ref: plan.recipe.ref, commit: recipe.commit },
    pipelineVersion: PIPELINE_VERSION,
  };
  return { inputs, hash: hashInputs(inputs), notes };
}
