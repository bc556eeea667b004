/**
 * Rollback: move every stable tag, and the stable akmods tag, back to an earlier release by
 * digest, after verifying that release's signature. Not cancellable half-way.
 */
import { CancellationScope } from '@temporalio/workflow';
import { rollbackSteps } from '../core/promotion-plan.ts';
import type { StreamPlan } from '../core/pipeline.ts';
import type { Release } from '../core/stream-rules.ts';
import type { Acts } from './activities.ts';

/** Rolls stable back to `target`. */
export function rollbackSaga(
  { control }: Acts,
  input: { stream: string; plan: StreamPlan; target: Release },
): Promise<void> {
  const { verify, moves } = rollbackSteps(input.plan.images, input.target);
  return CancellationScope.nonCancellable(async () => {
    // Verify first: a rollback never points stable at a digest whose signature does not verify.
    await control.verifyImageSignature.executeWithOptions({ summary: `verify ${verify} before rollback` }, [
      { stream: input.stream, ref: verify },
    ]);
    for (const move of moves)
      await control.copyImageByDigest.executeWithOptions({ summary: `roll back ${move.repo}:${move.tag}` }, [
        { from: move.from, to: move.to },
      ]);
  });
}
