/**
 * Which tags a promotion and a rollback write, in which order, and how a failed promotion is
 * undone: the promotion saga (workflows/promotion-saga.ts) and the rollback saga
 * (workflows/rollback-saga.ts) only run these copies.
 */
import { digestRef, tagRef } from './refs.ts';

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

/** One tag move: copy `from` (by digest) to the tag `ref` of `repo`. */
export interface TagMove {
  ref: string;
  from: string;
  repo: string;
}

/** The promotion's references and public tag moves. */
export interface PromotionSteps {
  /** The candidate by digest in the candidate repository (copied untagged into the stable one). */
  source: string;
  /** The candidate by digest in the stable repository: what is signed, attested and tagged. */
  target: string;
  /** The audit tag, written after signing and before the public tags. */
  auditRef: string;
  /** The public tags whose digests are read first, to restore them on failure. */
  readBefore: string[];
  /** The stable tags, then the stable akmods tag: moved in this order, restored newest first. */
  moves: TagMove[];
}

/** The refs and moves of a promotion, in the saga's order. */
export function promotionSteps(plan: PromotionPlan): PromotionSteps {
  const stableRefs = plan.stableTags.map((t) => tagRef(plan.stableRepo, t));
  const akmodsRef = tagRef(plan.akmods.stableRepo, plan.akmods.tag);
  const target = digestRef(plan.stableRepo, plan.candidate.digest);
  return {
    source: digestRef(plan.candidate.repo, plan.candidate.digest),
    target,
    auditRef: tagRef(plan.stableRepo, plan.auditTag),
    readBefore: [...stableRefs, akmodsRef],
    moves: [
      ...stableRefs.map((ref) => ({ ref, from: target, repo: plan.stableRepo })),
      { ref: akmodsRef, from: digestRef(plan.akmods.repo, plan.akmods.digest), repo: plan.akmods.stableRepo },
    ],
  };
}

/**
 * Undoing the moves already made (`moved`, in the order they were made, the failed one last):
 * each tag back to the digest it had before, newest first. A tag that did not exist before the
 * saga stays on the new, signed digest.
 */
export function restoreMoves(
  moved: readonly TagMove[],
  previous: Readonly<Record<string, string | null | undefined>>,
): { from: string; to: string }[] {
  return [...moved]
    .reverse()
    .filter((m) => !!previous[m.ref])
    .map((m) => ({ from: digestRef(m.repo, previous[m.ref]!), to: m.ref }));
}

/**
 * Why a promotion must not write its audit tag (`stable-<run>-<sha7>`): the tag already names
 * another digest, so writing it would rewrite the record of an earlier promotion (the stream's run
 * numbers started over). Undefined when the tag is free, or already names this very candidate (a
 * saga run again for the same candidate changes nothing).
 */
export function auditTagProblem(
  auditRef: string,
  existing: string | null | undefined,
  candidateDigest: string,
): string | undefined {
  if (!existing || existing === candidateDigest) return undefined;
  return (
    `The audit tag ${auditRef} already names ${existing}, not the candidate ${candidateDigest}: audit tags are never ` +
    `overwritten, so the promotion stopped before copying, signing or moving any tag. The stream's run numbers ` +
    `repeat an earlier promotion's (was the stream started again without its run count?); run again: the next run ` +
    `gets the next number (kinoite-zfs status shows the count).`
  );
}

/** A rollback: the digest to verify first, then the stable tags and the stable akmods tag to move back. */
export function rollbackSteps(
  images: { stable: string; akmodsCandidate: string; akmodsStable: string },
  target: { digest: string; stableTags: string[]; akmodsDigest: string; akmodsTag: string },
): { verify: string; moves: { from: string; to: string; tag: string; repo: string }[] } {
  const verify = digestRef(images.stable, target.digest);
  return {
    verify,
    moves: [
      ...target.stableTags.map((tag) => ({ from: verify, to: tagRef(images.stable, tag), tag, repo: images.stable })),
      {
        from: digestRef(images.akmodsCandidate, target.akmodsDigest),
        to: tagRef(images.akmodsStable, target.akmodsTag),
        tag: target.akmodsTag,
        repo: images.akmodsStable,
      },
    ],
  };
}
