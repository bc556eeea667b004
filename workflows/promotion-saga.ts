/**
 * Promotion saga: promote exactly the tested digest. Not cancellable half-way; a failure
 * part-way moves every tag it already moved back to its previous digest. Running it twice is
 * harmless (copies are by digest, signing and attesting skip what is already there).
 *
 * Order: copy the digest into the stable repository untagged → sign and verify → attest
 * provenance → audit tag → stable tags → stable akmods tag. No public tag points at the
 * digest before it is signed.
 */
import { CancellationScope } from '@temporalio/workflow';
import { digestRef, tagRef } from '../core/refs.ts';
import type { PromotionRecord } from '../core/pipeline.ts';
import type { Acts } from './activities.ts';

/** What to promote, all by digest. */
export interface PromotionPlan {
  stream: string;
  candidate: { repo: string; digest: string };
  stableRepo: string;
  stableTags: string[];
  auditTag: string;
  akmods: { repo: string; digest: string; stableRepo: string; tag: string };
  predicate: object;
}

/** Runs the saga; returns where everything points now. */
export function promotionSaga({ control }: Acts, plan: PromotionPlan): Promise<PromotionRecord> {
  return CancellationScope.nonCancellable(async () => {
    const stableRefs = plan.stableTags.map((t) => tagRef(plan.stableRepo, t));
    const akmodsRef = tagRef(plan.akmods.stableRepo, plan.akmods.tag);
    const previous = await control.readTagDigests.executeWithOptions(
      { summary: 'read the current stable digests (for restore)' },
      [{ refs: [...stableRefs, akmodsRef] }],
    );
    const target = digestRef(plan.stableRepo, plan.candidate.digest);

    await control.copyImageByDigest.executeWithOptions(
      { summary: `copy ${plan.candidate.digest.slice(0, 19)} into ${plan.stableRepo}` },
      [{ from: digestRef(plan.candidate.repo, plan.candidate.digest), to: target }],
    );
    await control.signImage.executeWithOptions({ summary: `sign ${target}` }, [{ stream: plan.stream, ref: target }]);
    await control.attestProvenance.executeWithOptions({ summary: `attest provenance of ${target}` }, [
      { stream: plan.stream, ref: target, predicate: plan.predicate },
    ]);
    await control.copyImageByDigest.executeWithOptions({ summary: `audit tag ${plan.auditTag}` }, [
      { from: target, to: tagRef(plan.stableRepo, plan.auditTag) },
    ]);

    const moves = [
      ...stableRefs.map((ref) => ({ ref, from: target, repo: plan.stableRepo })),
      { ref: akmodsRef, from: digestRef(plan.akmods.repo, plan.akmods.digest), repo: plan.akmods.stableRepo },
    ];
    const moved: typeof moves = [];
    try {
      for (const move of moves) {
        moved.push(move);
        await control.copyImageByDigest.executeWithOptions({ summary: `move ${move.ref}` }, [
          { from: move.from, to: move.ref },
        ]);
      }
    } catch (err) {
      for (const move of moved.reverse()) {
        const prev = previous[move.ref];
        if (prev)
          await control.copyImageByDigest.executeWithOptions({ summary: `restore ${move.ref}` }, [
            { from: digestRef(move.repo, prev), to: move.ref },
          ]);
      }
      throw err;
    }
    return {
      stableRepo: plan.stableRepo,
      digest: plan.candidate.digest,
      auditTag: plan.auditTag,
      stableTags: plan.stableTags,
      akmodsStable: { repo: plan.akmods.stableRepo, tag: plan.akmods.tag, digest: plan.akmods.digest },
      previous,
    };
  });
}
