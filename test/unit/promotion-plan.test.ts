/**
 * Which tags a promotion and a rollback write, in which order, and how a failed promotion is
 * undone (core/promotion-plan.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  auditTagProblem,
  promotionSteps,
  restoreMoves,
  rollbackSteps,
  type PromotionPlan,
} from '../../core/promotion-plan.ts';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const plan: PromotionPlan = {
  stream: 's',
  candidate: { repo: 'r.io/o/c', digest: D('c') },
  stableRepo: 'r.io/o/s',
  stableTags: ['latest', '43'],
  auditTag: 'stable-7-ccccccc',
  akmods: { repo: 'r.io/o/ac', digest: D('a'), stableRepo: 'r.io/o/as', tag: 'main-43' },
  predicate: {},
};

test('promotionSteps: copy by digest, audit tag, then the stable tags, then the stable akmods tag', () => {
  const steps = promotionSteps(plan);
  assert.equal(steps.source, `r.io/o/c@${D('c')}`);
  assert.equal(steps.target, `r.io/o/s@${D('c')}`);
  assert.equal(steps.auditRef, 'r.io/o/s:stable-7-ccccccc');
  assert.deepEqual(steps.readBefore, ['r.io/o/s:latest', 'r.io/o/s:43', 'r.io/o/as:main-43']);
  assert.deepEqual(steps.moves, [
    { ref: 'r.io/o/s:latest', from: `r.io/o/s@${D('c')}`, repo: 'r.io/o/s' },
    { ref: 'r.io/o/s:43', from: `r.io/o/s@${D('c')}`, repo: 'r.io/o/s' },
    { ref: 'r.io/o/as:main-43', from: `r.io/o/ac@${D('a')}`, repo: 'r.io/o/as' },
  ]);
});

test('promotionSteps never moves a public tag from a tag: every source is a digest', () => {
  for (const m of promotionSteps(plan).moves) assert.match(m.from, /@sha256:[0-9a-f]{64}$/);
});

test('restoreMoves puts every moved tag back, newest first, and leaves tags that did not exist before', () => {
  const { moves } = promotionSteps(plan);
  const previous = { 'r.io/o/s:latest': D('1'), 'r.io/o/s:43': null, 'r.io/o/as:main-43': D('2') };
  assert.deepEqual(restoreMoves(moves, previous), [
    { from: `r.io/o/as@${D('2')}`, to: 'r.io/o/as:main-43' },
    { from: `r.io/o/s@${D('1')}`, to: 'r.io/o/s:latest' },
  ]);
  assert.deepEqual(restoreMoves(moves.slice(0, 1), previous), [{ from: `r.io/o/s@${D('1')}`, to: 'r.io/o/s:latest' }]);
  assert.deepEqual(restoreMoves([], previous), []);
  assert.equal(moves.length, 3, 'the moves given are not changed');
});

test('rollbackSteps verifies the target digest, then moves the stable tags and the stable akmods tag back', () => {
  const steps = rollbackSteps(
    { stable: 'r.io/o/s', akmodsCandidate: 'r.io/o/ac', akmodsStable: 'r.io/o/as' },
    { digest: D('9'), stableTags: ['latest', '43'], akmodsDigest: D('8'), akmodsTag: 'main-43' },
  );
  assert.equal(steps.verify, `r.io/o/s@${D('9')}`);
  assert.deepEqual(steps.moves, [
    { from: `r.io/o/s@${D('9')}`, to: 'r.io/o/s:latest', tag: 'latest', repo: 'r.io/o/s' },
    { from: `r.io/o/s@${D('9')}`, to: 'r.io/o/s:43', tag: '43', repo: 'r.io/o/s' },
    { from: `r.io/o/ac@${D('8')}`, to: 'r.io/o/as:main-43', tag: 'main-43', repo: 'r.io/o/as' },
  ]);
});

test('auditTagProblem refuses an audit tag that names another digest, naming the tag and both digests', () => {
  const problem = auditTagProblem('r.io/o/s:stable-7-ccccccc', D('e'), D('c'));
  assert.match(
    problem!,
    /^The audit tag r\.io\/o\/s:stable-7-ccccccc already names sha256:e{64}, not the candidate sha256:c{64}/,
  );
  assert.match(problem!, /never overwritten/);
});

test('auditTagProblem allows a free audit tag and one that already names this candidate (a saga run again)', () => {
  assert.equal(auditTagProblem('r.io/o/s:stable-7-ccccccc', null, D('c')), undefined);
  assert.equal(auditTagProblem('r.io/o/s:stable-7-ccccccc', undefined, D('c')), undefined);
  assert.equal(auditTagProblem('r.io/o/s:stable-7-ccccccc', D('c'), D('c')), undefined);
});
