/**
 * Resolve stage: every input pinned (base and builder by digest, kernels from the base's layers,
 * the ZFS release and its META, the recipe commit), then the inputs hash.
 */
import { assembleInputs, hashInputs, planForRun, validatePlan } from '../core/pipeline.ts';
import type { RunInputs, RunMode, StreamPlan } from '../core/pipeline.ts';
import type { Acts } from './activities.ts';
import type { Lock } from '../core/lock.ts';

/** Pinned inputs, their hash, and notes for the log. */
export interface Resolved {
  inputs: RunInputs;
  hash: string;
  notes: string[];
}

/**
 * Resolves the inputs of a run from the stream plan, or replays the pinned inputs of a lock; a
 * branch or PR run given its trigger's commit builds that commit ({@link planForRun}).
 */
export async function resolveInputs(
  { control }: Acts,
  streamPlan: StreamPlan,
  lock?: Lock,
  run: { mode: RunMode; commit?: string } = { mode: 'main' },
): Promise<Resolved> {
  const plan = planForRun(streamPlan, { ...run, lock });
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
  const { inputs, notes } = assembleInputs({ plan, base, builder, kernels, zfs, recipeCommit: recipe.commit });
  return { inputs, hash: hashInputs(inputs), notes };
}
