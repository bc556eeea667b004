/**
 * Rollback: move every stable tag, and the stable akmods tag, back to an earlier release by
 * digest, after verifying that release's signature. Not cancellable half-way.
 */
import { CancellationScope } from '@temporalio/workflow';
import { digestRef, tagRef } from '../core/refs.ts';
import type { StreamPlan } from '../core/pipeline.ts';
import type { Release } from '../core/stream-rules.ts';
import type { Acts } from './activities.ts';

/** Rolls stable back to `target`. */
export function rollbackSaga(
  { control }: Acts,
  input: { stream: string; plan: StreamPlan; target: Release },
): Promise<void> {
  const { plan, target } = input;
  return CancellationScope.nonCancellable(async () => {
    const ref = digestRef(plan.images.stable, target.digest);
    // Verify first: a rollback never points stable at a digest whose signature does not verify.
    await control.verifyImageSignature.executeWithOptions({ summary: `verify ${ref} before rollback` }, [
      { stream: input.stream, ref },
    ]);
    for (const tag of target.stableTags)
      await control.copyImageByDigest.executeWithOptions({ summary: `roll back ${plan.images.stable}:${tag}` }, [
        { from: ref, to: tagRef(plan.images.stable, tag) },
      ]);
    await control.copyImageByDigest.executeWithOptions(
      { summary: `roll back ${plan.images.akmodsStable}:${target.akmodsTag}` },
      [
        {
          from: digestRef(plan.images.akmodsCandidate, target.akmodsDigest),
          to: tagRef(plan.images.akmodsStable, target.akmodsTag),
        },
      ],
    );
  });
}
