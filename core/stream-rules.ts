/**
 * Pure rules of a stream: what a run may do given the stream's state (unchanged, vetoed, held),
 * whether an approval request matches the pending candidate, trigger identity, bounded lists.
 */
import type { RunInputs } from './pipeline.ts';
import { Outcome } from './progress.ts';
import { durationMs } from './validate.ts';

// Workflows read durations from here; the rule itself is the table's (core/validate.ts).
export { durationMs };
import type { Lock } from './lock.ts';

/** A durable "never promote this" mark. */
export interface Veto {
  kind: 'inputs' | 'kernel' | 'zfs';
  /** An inputs hash, a kernel release or a ZFS version. */
  value: string;
  by: string;
  reason: string;
  at: string;
}

/** One promoted (or rolled-back-to) stable state. */
export interface Release {
  kind: 'promotion' | 'rollback';
  digest: string;
  inputsHash: string;
  kernels: string[];
  zfsVersion: string;
  auditTag: string;
  akmodsDigest: string;
  /** The stable akmods tag this release moved (e.g. main-43). */
  akmodsTag: string;
  stableTags: string[];
  at: string;
  approvedBy: string;
  runWorkflowId: string;
}

/**
 * What the stream records about a promotion: the promoted digest and its inputs, the audit tag,
 * the stable tags and the stable akmods tag it moved, who approved it (`policy:auto` when no one
 * had to), when, and the run.
 */
export function promotionRelease(input: {
  digest: string;
  inputsHash: string;
  inputs: Pick<RunInputs, 'kernels' | 'zfs'>;
  tags: { audit: string; stable: string[] };
  akmods: { digest: string; tag: string };
  at: string;
  approvedBy: string;
  runWorkflowId: string;
}): Release {
  return {
    kind: 'promotion',
    digest: input.digest,
    inputsHash: input.inputsHash,
    kernels: input.inputs.kernels,
    zfsVersion: input.inputs.zfs.version,
    auditTag: input.tags.audit,
    akmodsDigest: input.akmods.digest,
    akmodsTag: input.akmods.tag,
    stableTags: input.tags.stable,
    at: input.at,
    approvedBy: input.approvedBy,
    runWorkflowId: input.runWorkflowId,
  };
}

/**
 * What the stream records about a rollback, and the hold it puts the stream in: the release rolled
 * back to, again, by whom and when; stable then stays there until an operator releases the stream.
 */
export function rollbackRelease(
  target: Release,
  input: { by: string; reason?: string; at: string },
): { release: Release; hold: { by: string; reason: string; at: string } } {
  return {
    release: { ...target, kind: 'rollback', at: input.at, approvedBy: input.by },
    hold: {
      by: input.by,
      reason: `rolled back to ${target.auditTag}${input.reason ? `: ${input.reason}` : ''}`,
      at: input.at,
    },
  };
}

/**
 * The hold a rollback puts the stream in from the moment it is asked for: while it waits for a
 * promotion in progress, no approval is accepted and no run that has not begun promoting promotes.
 */
export function rollbackRequestedHold(
  target: Release,
  input: { by: string; reason?: string; at: string },
): { by: string; reason: string; at: string } {
  return {
    by: input.by,
    reason: `rollback to ${target.auditTag} requested${input.reason ? `: ${input.reason}` : ''}`,
    at: input.at,
  };
}

/** A candidate waiting for a human. */
export interface PendingApproval {
  runWorkflowId: string;
  digest: string;
  inputsHash: string;
  kernels: string[];
  zfsVersion: string;
  since: string;
  deadline: string;
}

/** What a stream tells a run before it starts. */
export interface StreamContext {
  lastGoodInputsHash?: string;
  vetoes: Veto[];
  held: boolean;
  /** Workflow id of the stream, for signals back. */
  streamWorkflowId?: string;
}

/** Verdict of {@link runGate}. */
export type RunGate = { go: true } | { go: false; outcome: 'unchanged' | 'vetoed'; message: string };

/** Decides, right after inputs are resolved, whether a run builds at all. */
export function runGate(ctx: StreamContext, inputs: Pick<RunInputs, 'kernels' | 'zfs'>, hash: string): RunGate {
  if (ctx.lastGoodInputsHash === hash) {
    return {
      go: false,
      outcome: 'unchanged',
      message: `Inputs are unchanged since the last good release (inputs hash ${hash.slice(0, 12)}); nothing to build.`,
    };
  }
  const veto = vetoFor(ctx.vetoes, inputs, hash);
  if (veto)
    return {
      go: false,
      outcome: 'vetoed',
      message: `Vetoed ${veto.kind} ${veto.value} by ${veto.by}: ${veto.reason}. Stable stays where it is.`,
    };
  return { go: true };
}

/** The first veto that matches these inputs, if any. */
export function vetoFor(
  vetoes: readonly Veto[],
  inputs: Pick<RunInputs, 'kernels' | 'zfs'>,
  hash: string,
): Veto | undefined {
  return vetoes.find(
    (v) =>
      (v.kind === 'inputs' && v.value === hash) ||
      (v.kind === 'kernel' && inputs.kernels.includes(v.value)) ||
      (v.kind === 'zfs' && v.value === inputs.zfs.version),
  );
}

/** An approve or reject request as an operator sends it. */
export interface ApprovalRequest {
  by: string;
  digest: string;
  inputsHash: string;
  reason?: string;
}

/** Why an approval request cannot be accepted, or undefined when it can. */
export function approvalProblem(input: {
  pending?: PendingApproval;
  approvers: readonly string[];
  request: ApprovalRequest;
  reject?: boolean;
}): string | undefined {
  const { pending, request } = input;
  if (!pending) return 'No candidate is waiting for approval on this stream.';
  if (!request.by || !input.approvers.includes(request.by))
    return `${JSON.stringify(request.by ?? '')} may not approve or reject on this stream; approvers are: ${input.approvers.join(', ') || '(none configured)'}.`;
  if (request.digest !== pending.digest)
    return `The pending candidate is ${pending.digest}, not ${request.digest}; approve exactly the candidate that was tested.`;
  if (request.inputsHash !== pending.inputsHash)
    return `The pending candidate's inputs hash is ${pending.inputsHash}, not ${request.inputsHash}.`;
  if (input.reject && !request.reason?.trim()) return 'A rejection needs a reason.';
  return undefined;
}

/** The candidate a run announces to the stream: waiting from `now` until `now + timeout`. */
export function pendingApproval(
  candidate: Omit<PendingApproval, 'since' | 'deadline'>,
  input: { nowMs: number; timeout: string },
): PendingApproval {
  return {
    ...candidate,
    since: new Date(input.nowMs).toISOString(),
    deadline: new Date(input.nowMs + durationMs(input.timeout)).toISOString(),
  };
}

/** Why an approval cannot go through while the stream is held, or undefined when it is not held. */
export function heldProblem(stream: string, hold: { by: string; reason: string } | undefined): string | undefined {
  return hold
    ? `The stream is held (${hold.reason}, by ${hold.by}); release it first: kinoite-zfs release --stream ${stream}.`
    : undefined;
}

/**
 * Why a trigger from a config with other task queues is refused (two configs share one stream
 * name on one namespace), or undefined when it uses the stream's queues or names none.
 */
export function taskQueueProblem(
  stream: string,
  ours: { control: string; build: string },
  theirs: { control: string; build: string } | undefined,
): string | undefined {
  if (!theirs || (theirs.control === ours.control && theirs.build === ours.build)) return undefined;
  return `stream/${stream} runs its pipeline on task queues ${ours.control}/${ours.build}, but this trigger's config uses ${theirs.control}/${theirs.build}. Two configs share the stream name "${stream}" on this Temporal namespace: give one of them another stream name or namespace.`;
}

/** Why a veto request is refused, or undefined when it names a kind, a value, a reason and who asked. */
export function vetoRequestProblem(req: {
  kind: string;
  value?: string;
  reason?: string;
  by?: string;
}): string | undefined {
  if (!['inputs', 'kernel', 'zfs'].includes(req.kind))
    return `veto kind must be inputs, kernel or zfs, not ${JSON.stringify(req.kind)}`;
  if (!req.value?.trim() || !req.reason?.trim() || !req.by?.trim())
    return 'a veto needs a value, a reason and who asked';
  return undefined;
}

/** Why an unveto is refused (no such veto; lists the vetoes there are), or undefined. */
export function unvetoProblem(vetoes: readonly Veto[], req: { kind: string; value: string }): string | undefined {
  if (vetoes.some((v) => v.kind === req.kind && v.value === req.value)) return undefined;
  return `No ${req.kind} veto for ${JSON.stringify(req.value)}; vetoes: ${vetoes.map((v) => `${v.kind} ${v.value}`).join(', ') || 'none'}.`;
}

/**
 * Identity of a trigger for de-duplication: the same source and commit with the same options is
 * the same trigger (a manual run on an already-built commit with other options is a new one).
 */
export function triggerKey(
  t: { source: string; commit?: string; requestId?: string },
  extra: { options?: { rebuildAkmods?: boolean; promote?: boolean }; lockHash?: string } = {},
): string | undefined {
  const opts = [
    extra.options?.rebuildAkmods ? 'rebuild' : '',
    extra.options?.promote === false ? 'no-promote' : '',
    extra.lockHash ? `lock=${extra.lockHash}` : '',
  ]
    .filter(Boolean)
    .join(',');
  if (t.commit) return `${t.source}@${t.commit}${opts ? `+${opts}` : ''}`;
  return t.requestId ? `request:${t.requestId}` : undefined;
}

/** What makes two replays of locks the same trigger: base image, recipe commit and ZFS release. */
export function lockTriggerKey(
  lock: Pick<Lock, 'base_image' | 'recipe_commit' | 'akmods_upstream_ref' | 'zfs_release'>,
): string {
  return `${lock.base_image}|${lock.recipe_commit ?? lock.akmods_upstream_ref ?? ''}|${lock.zfs_release ?? ''}`;
}

/** Appends to a list and keeps only the newest `max` items. */
export function bounded<T>(list: readonly T[], item: T, max: number): T[] {
  const out = [...list, item];
  return out.length > max ? out.slice(out.length - max) : out;
}

/** Finds a release to roll back to by audit tag or digest (newest first). */
export function findRelease(releases: readonly Release[], target: string): Release | undefined {
  return [...releases].reverse().find((r) => r.auditTag === target || r.digest === target);
}

/** Whether a tested candidate may be promoted now, and if not, why (said in the run's message). */
export function promotionGate(input: {
  mode: 'main' | 'branch' | 'pr';
  promoteRequested: boolean;
  policy: 'auto' | 'approval' | 'never';
  held: boolean;
  throughStream: boolean;
  candidate: string;
  akmodsTag: string;
}): { promote: true; needsApproval: boolean } | { promote: false; why: string } {
  if (input.mode === 'branch')
    return {
      promote: false,
      why: `branch build: published only ${input.candidate} and the akmods alias ${input.akmodsTag}; stable untouched`,
    };
  if (input.mode === 'pr')
    return {
      promote: false,
      why: `PR validation: built and smoke-tested as ${input.candidate} in the candidate repository only; not published to any user-facing repository, not signed`,
    };
  if (!input.promoteRequested) return { promote: false, why: 'promotion not requested (candidate-only run)' };
  if (input.policy === 'never') return { promote: false, why: 'policy is never (build and test only)' };
  if (input.held) return { promote: false, why: 'the stream is held (kinoite-zfs release to let it promote again)' };
  if (input.policy === 'approval' && !input.throughStream)
    return {
      promote: false,
      why: 'policy is approval: start runs through the stream (kinoite-zfs run) to approve them',
    };
  return { promote: true, needsApproval: input.policy === 'approval' };
}

/** How the approval wait ended: a decision the stream forwarded, or `expired`. */
export type ApprovalEnd =
  | { kind: 'approved'; by: string }
  | { kind: 'rejected'; by: string; reason: string }
  | { kind: 'superseded'; by: string }
  | { kind: 'expired' };

/**
 * After the approval wait: promote (approved by whom), or end the run with an outcome and the
 * message that says why stable did not move (rejected, superseded, expired, or held meanwhile).
 */
export function approvalVerdict(
  end: ApprovalEnd,
  input: { timeout: string; held: boolean },
): { promote: true; approvedBy: string } | { promote: false; outcome: Outcome; message: string } {
  switch (end.kind) {
    case 'rejected':
      return {
        promote: false,
        outcome: Outcome.Rejected,
        message: `Rejected by ${end.by}: ${end.reason}. Stable did not move.`,
      };
    case 'superseded':
      return {
        promote: false,
        outcome: Outcome.Superseded,
        message: `Superseded by a newer candidate. Stable did not move.`,
      };
    case 'expired':
      return {
        promote: false,
        outcome: Outcome.Expired,
        message: `Nobody approved within ${input.timeout}. Stable did not move.`,
      };
    case 'approved':
      if (input.held)
        return {
          promote: false,
          outcome: Outcome.CandidateOnly,
          message: `Approved by ${end.by}, but the stream was held meanwhile; stable did not move.`,
        };
      return { promote: true, approvedBy: end.by };
  }
}

/** The runs a stream follows to their end (all carried across continue-as-new). */
export interface StreamRuns {
  /** The run building (it promotes at its end when the policy lets it). */
  current?: { runWorkflowId: string };
  /** The run whose candidate waits for approval (it writes nothing until approved). */
  parked?: { runWorkflowId: string };
  /** The approved run, promoting. */
  promoting?: { runWorkflowId: string };
}

/**
 * The run that may write the stable tags now, or undefined when none may: stable tags have one
 * writer at a time, so a rollback waits while this names a run, and applies after it ends.
 */
export function stableWriter(runs: StreamRuns): string | undefined {
  return runs.promoting?.runWorkflowId ?? runs.current?.runWorkflowId;
}

/** Every run the stream watches until it reports its end (or is found closed without reporting). */
export function watchedRuns(runs: StreamRuns): string[] {
  const ids = [runs.current, runs.parked, runs.promoting].flatMap((r) => (r ? [r.runWorkflowId] : []));
  return [...new Set(ids)];
}
