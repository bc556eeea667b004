import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Outcome, STAGE_ORDER, Stage, isOutcome, isStage, stageIndex } from '../../core/progress.ts';

test('Stage names are the pipeline vocabulary', () => {
  assert.deepEqual(Object.values(Stage), [
    'resolve',
    'decide',
    'akmods',
    'compose',
    'smoke-test',
    'boot',
    'approval',
    'promote',
    'record',
    'done',
  ]);
});

test('STAGE_ORDER lists every stage once, from resolve to done', () => {
  assert.equal(new Set(STAGE_ORDER).size, STAGE_ORDER.length);
  assert.deepEqual([...STAGE_ORDER].sort(), Object.values(Stage).sort());
  assert.equal(STAGE_ORDER[0], Stage.Resolve);
  assert.equal(STAGE_ORDER.at(-1), Stage.Done);
});

test('STAGE_ORDER puts smoke-test before approval before promote', () => {
  assert.ok(stageIndex(Stage.SmokeTest) < stageIndex(Stage.Approval));
  assert.ok(stageIndex(Stage.Approval) < stageIndex(Stage.Promote));
  assert.ok(stageIndex(Stage.Akmods) < stageIndex(Stage.Compose));
});

test('STAGE_ORDER cannot be modified', () => {
  assert.throws(() => (STAGE_ORDER as Stage[]).push(Stage.Done));
});

test('Outcome names are the run results vocabulary', () => {
  assert.deepEqual(Object.values(Outcome), [
    'promoted',
    'candidate-only',
    'unchanged',
    'blocked',
    'failed',
    'vetoed',
    'rejected',
    'expired',
    'superseded',
  ]);
});

test('isStage and isOutcome accept only known names', () => {
  assert.equal(isStage('smoke-test'), true);
  assert.equal(isStage('SmokeTest'), false);
  assert.equal(isStage(undefined), false);
  assert.equal(isOutcome('candidate-only'), true);
  assert.equal(isOutcome('done'), false);
  assert.equal(isOutcome(3), false);
});
