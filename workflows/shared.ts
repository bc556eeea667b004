/**
 * Message and search-attribute definitions shared by workflows, the worker and the client.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { RunProgress, StreamPlan, Trigger } from '../core/pipeline.ts';
import type { ApprovalRequest, PendingApproval, Release, Veto } from '../core/stream-rules.ts';
import type { Outcome, Stage } from '../core/progress.ts';
import type { Lock } from '../core/lock.ts';
import type { BlockedRun } from '../core/compat-hold.ts';

/** The live progress of a pipeline run: current stage, stage times, per-kernel akmods status. */
export const progressQuery = defineQuery<RunProgress>('progress');

/** Search attributes of pipeline runs (registered on the server by the set-up; see services/temporal-dev-server.ts). */
export const SearchAttr = {
  stream: defineSearchAttributeKey('KzStream', SearchAttributeType.KEYWORD),
  stage: defineSearchAttributeKey('KzStage', SearchAttributeType.KEYWORD),
  kernels: defineSearchAttributeKey('KzKernels', SearchAttributeType.KEYWORD_LIST),
  zfsRelease: defineSearchAttributeKey('KzZfsRelease', SearchAttributeType.KEYWORD),
  outcome: defineSearchAttributeKey('KzOutcome', SearchAttributeType.KEYWORD),
  candidateDigest: defineSearchAttributeKey('KzCandidateDigest', SearchAttributeType.KEYWORD),
  inputsHash: defineSearchAttributeKey('KzInputsHash', SearchAttributeType.KEYWORD),
  trigger: defineSearchAttributeKey('KzTrigger', SearchAttributeType.KEYWORD),
  commit: defineSearchAttributeKey('KzCommit', SearchAttributeType.KEYWORD),
  repository: defineSearchAttributeKey('KzRepository', SearchAttributeType.KEYWORD),
} as const;

/** Task queue names a run uses (from the config at start time). */
export interface TaskQueues {
  control: string;
  build: string;
}

/** A run's approval decision, sent by the stream to the waiting run. */
export type ApprovalDecision =
  | { kind: 'approved'; by: string }
  | { kind: 'rejected'; by: string; reason: string }
  | { kind: 'superseded'; by: string };

/** Run → stream: a candidate passed its tests and waits for approval. */
export const candidateReadySignal = defineSignal<[PendingApproval]>('candidateReady');
/** Run → stream: the run ended (any outcome). */
export const runFinishedSignal = defineSignal<[RunFinished]>('runFinished');
/** Stream → run: the stream was held (true) or released (false) while the run was in flight. */
export const holdChangedSignal = defineSignal<[boolean]>('holdChanged');
/** Stream → run: the approval decision. */
export const approvalDecisionSignal = defineSignal<[ApprovalDecision]>('approvalDecision');

/** What a run reports to its stream when it ends. */
export interface RunFinished {
  runWorkflowId: string;
  outcome: Outcome;
  message: string;
  release?: Release;
  /** The base's kernels, when the run got that far (for the kernel-to-stable lag). */
  kernels?: string[];
  /** Why a `blocked` run was blocked (starts or keeps the compatibility hold). */
  blocked?: BlockedRun;
  /** Warnings of the run (a base label that disagrees with its module folders, an optional boot check that failed). */
  warnings?: string[];
  /** How long each stage that completed took, in seconds (for the metrics). */
  stages?: { stage: Stage; seconds: number }[];
}

/** A request to run the pipeline for a stream. */
export interface TriggerRequest {
  trigger: Trigger & { requestId?: string };
  /** The stream's public settings from the sender's config (the newest wins). */
  plan?: StreamPlan;
  options?: { rebuildAkmods?: boolean; promote?: boolean };
  /** Replay these pinned inputs instead of resolving the floating ones. */
  lock?: Lock;
  /** The sender's task queues; a stream refuses triggers meant for other workers. */
  taskQueues?: TaskQueues;
}

/** What the stream answers to a trigger. */
export interface TriggerReply {
  status: 'started' | 'queued' | 'coalesced' | 'duplicate';
  /** The run this trigger started or will start (known at once unless queued). */
  runWorkflowId?: string;
  requestId: string;
}

/** Operator identity and reason on every stream operation. */
export interface Operator {
  by: string;
  reason?: string;
}

/** Trigger a run (coalesced while one is running; the same source+commit twice yields one run). */
export const triggerUpdate = defineUpdate<TriggerReply, [TriggerRequest]>('trigger');
/** Trigger a run from a Schedule or the Web UI (same rules as the Update). */
export const triggerSignal = defineSignal<[TriggerRequest]>('trigger');
/** Approve the pending candidate (by exact digest and inputs hash; approver must be allowed). */
export const approveUpdate = defineUpdate<{ approved: string }, [ApprovalRequest]>('approve');
/** Reject the pending candidate with a reason. */
export const rejectUpdate = defineUpdate<{ rejected: string }, [ApprovalRequest]>('reject');
/** Approve from the Web UI: same checks as the Update; an invalid one is recorded and ignored. */
export const approveSignal = defineSignal<[ApprovalRequest]>('approve');
/** Roll stable back to an earlier release (audit tag or digest); the stream then holds. */
export const rollbackUpdate = defineUpdate<Release, [Operator & { to: string }]>('rollback');
/** Veto an inputs hash, a kernel release or a ZFS release. */
export const vetoUpdate = defineUpdate<Veto, [Operator & { kind: Veto['kind']; value: string; reason: string }]>(
  'veto',
);
/** Lift a veto (same kind and value). */
export const unvetoUpdate = defineUpdate<Veto, [Operator & { kind: Veto['kind']; value: string }]>('unveto');
/** Hold the stream: runs build and test but do not promote. */
export const holdUpdate = defineUpdate<{ held: true }, [Operator]>('hold');
/** Release a hold. */
export const releaseUpdate = defineUpdate<{ held: false }, [Operator]>('release');
