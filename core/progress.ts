/**
 * The pipeline's stage and outcome vocabulary, shared by the workflow, the CLI and the UI.
 */

/** Pipeline stages, in the order a run passes through them. */
export const Stage = {
  Resolve: 'resolve',
  Decide: 'decide',
  Akmods: 'akmods',
  Compose: 'compose',
  SmokeTest: 'smoke-test',
  Boot: 'boot',
  Approval: 'approval',
  Promote: 'promote',
  Record: 'record',
  Done: 'done',
} as const;

/** One of the stage names in {@link Stage}. */
export type Stage = (typeof Stage)[keyof typeof Stage];

/** Every stage in run order; a run never moves backwards in this list. */
export const STAGE_ORDER: readonly Stage[] = Object.freeze([
  Stage.Resolve,
  Stage.Decide,
  Stage.Akmods,
  Stage.Compose,
  Stage.SmokeTest,
  Stage.Boot,
  Stage.Approval,
  Stage.Promote,
  Stage.Record,
  Stage.Done,
]);

/** How a run ended. */
export const Outcome = {
  /** The candidate passed and is now stable. */
  Promoted: 'promoted',
  /** A candidate was built and tested but not promoted (e.g. branch runs, or promotion disabled). */
  CandidateOnly: 'candidate-only',
  /** Inputs equal the last promoted run: nothing to do. */
  Unchanged: 'unchanged',
  /** The compatibility check blocked the build; stable stays where it is. */
  Blocked: 'blocked',
  /** A stage failed (a verdict or an exhausted retry). */
  Failed: 'failed',
  /** An operator vetoed the promotion. */
  Vetoed: 'vetoed',
  /** An approver rejected the promotion. */
  Rejected: 'rejected',
  /** The approval window ran out. */
  Expired: 'expired',
  /** A newer run replaced this one before it finished. */
  Superseded: 'superseded',
} as const;

/** One of the outcome names in {@link Outcome}. */
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** Position of a stage in {@link STAGE_ORDER} (0-based). */
export function stageIndex(stage: Stage): number {
  return STAGE_ORDER.indexOf(stage);
}

/** True when `value` is one of the stage names. */
export function isStage(value: unknown): value is Stage {
  return typeof value === 'string' && (STAGE_ORDER as readonly string[]).includes(value);
}

/** True when `value` is one of the outcome names. */
export function isOutcome(value: unknown): value is Outcome {
  return typeof value === 'string' && (Object.values(Outcome) as string[]).includes(value);
}
