/**
 * Promotion saga: promote exactly the tested digest. Not cancellable half-way; a failure
 * part-way moves every tag it already moved back to its previous digest. Running it twice is
 * harmless (copies are by digest, signing and attesting skip what is already there).
 *
 * The audit tag is never overwritten: a promotion whose audit tag already names another digest
 * fails before it copies anything.
 *
 * Order: copy the digest into the stable repository untagged → sign and verify → attest
 * provenance → audit tag → stable tags → stable akmods tag. No public tag points at the
 * digest before it is signed.
 */
import { ApplicationFailure, CancellationScope, patched } from '@temporalio/workflow';
import {
  auditTagProblem,
  promotionSteps,
  restoreMoves,
  type PromotionPlan,
  type TagMove,
} from '../core/promotion-plan.ts';
import { FailureType } from '../core/errors.ts';
import type { PromotionRecord } from '../core/pipeline.ts';
import type { Acts } from './activities.ts';

/** Runs the saga; returns where everything points now. */
export function promotionSaga({ control }: Acts, plan: PromotionPlan): Promise<PromotionRecord> {
  return CancellationScope.nonCancellable(async () => {
    const { source, target, auditRef, readBefore, moves } = promotionSteps(plan);
    // Runs recorded before the guard existed replay without it.
    const guardAudit = patched('audit-tag-guard');
    const { [auditRef]: auditBefore, ...previous } = await control.readTagDigests.executeWithOptions(
      { summary: 'read the current stable digests (for restore)' },
      [{ refs: guardAudit ? [...readBefore, auditRef] : readBefore }],
    );
    const problem = guardAudit ? auditTagProblem(auditRef, auditBefore, plan.candidate.digest) : undefined;
    if (problem)
      throw ApplicationFailure.create({ type: FailureType.PolicyViolation, message: problem, nonRetryable: true });

    await control.copyImageByDigest.executeWithOptions(
      { summary: `copy ${plan.candidate.digest.slice(0, 19)} into ${plan.stableRepo}` },
      [{ from: source, to: target }],
    );
    const signed = await control.signImage.executeWithOptions({ summary: `sign ${target}` }, [
      { stream: plan.stream, ref: target },
    ]);
    await control.attestProvenance.executeWithOptions({ summary: `attest provenance of ${target}` }, [
      { stream: plan.stream, ref: target, predicate: plan.predicate },
    ]);
    await control.copyImageByDigest.executeWithOptions({ summary: `audit tag ${plan.auditTag}` }, [
      { from: target, to: auditRef },
    ]);

    const moved: TagMove[] = [];
    try {
      for (const move of moves) {
        moved.push(move);
        await control.copyImageByDigest.executeWithOptions({ summary: `move ${move.ref}` }, [
          { from: move.from, to: move.ref },
        ]);
      }
    } catch (err) {
      for (const restore of restoreMoves(moved, previous))
        await control.copyImageByDigest.executeWithOptions({ summary: `restore ${restore.to}` }, [restore]);
      throw err;
    }
    return {
      stableRepo: plan.stableRepo,
      digest: plan.candidate.digest,
      auditTag: plan.auditTag,
      stableTags: plan.stableTags,
      akmodsStable: { repo: plan.akmods.stableRepo, tag: plan.akmods.tag, digest: plan.akmods.digest },
      previous,
      ...(signed.verify ? { verify: signed.verify } : {}),
    };
  });
}
