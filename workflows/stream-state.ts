/**
 * The state of one stream as a plain class: what the stream workflow's handlers change and its
 * query returns. No Temporal calls here except deterministic time; the workflow wires it.
 */
import {
  approvalProblem,
  bounded,
  lockTriggerKey,
  findRelease,
  triggerKey,
  watchedRuns,
  type ApprovalRequest,
  type PendingApproval,
  type Release,
  type Veto,
} from '../core/stream-rules.ts';
import type { StreamPlan } from '../core/pipeline.ts';
import { holdAfterRun, recheck, updateLag, type CompatHold, type KernelLag } from '../core/compat-hold.ts';
import { Outcome, type Stage } from '../core/progress.ts';
import type { RunFinished, TriggerReply, TriggerRequest } from './shared.ts';

/** How many releases, trigger records and notes the state keeps. */
export const LIMITS = { releases: 20, triggers: 50, notes: 20 } as const;

/** One trigger as the stream recorded it. */
export interface TriggerRecord {
  requestId: string;
  key?: string;
  source: string;
  commit?: string;
  at: string;
  status: 'started' | 'queued' | 'coalesced' | 'duplicate';
  runWorkflowId?: string;
  /** How the run ended, once it has (absent in states from before it existed). */
  outcome?: string;
}

/** The serialisable state of a stream (survives continue-as-new). */
export interface StreamStateData {
  stream: string;
  plan?: StreamPlan;
  runCounter: number;
  current?: { runWorkflowId: string; requestId: string };
  parked?: PendingApproval;
  /** The approved run, promoting: it writes the stable tags until it ends (absent in states from before it existed). */
  promoting?: { runWorkflowId: string; by: string };
  next?: TriggerRequest & { requestIds: string[] };
  lastGood?: Release;
  releases: Release[];
  vetoes: Veto[];
  hold?: { by: string; reason: string; at: string };
  triggers: TriggerRecord[];
  notes: { at: string; text: string }[];
  counters: Record<string, number>;
  /** Held by compatibility: the base has a kernel no OpenZFS release of the line supports yet. */
  compatHold?: CompatHold;
  /** When each kernel was first seen and first promoted (absent in states from before it existed). */
  kernelLag?: KernelLag[];
  /** The last finished run's warnings. */
  lastWarnings?: { run: string; warnings: string[] };
  /** How long each stage took the last run that completed it, in seconds (absent in states from before it existed). */
  stageSeconds?: Partial<Record<Stage, number>>;
  /** Runs that failed one after the other up to the last one that ended (absent in states from before it existed). */
  failedInARow?: number;
  /** Webhook deliveries: how many went through or failed for good, and the last failure. */
  notifications?: {
    sent: number;
    failed: number;
    lastFailure?: { at: string; event: string; webhook: number; error: string };
  };
}

/** The state machine of a stream. */
export class StreamState {
  constructor(public data: StreamStateData) {}

  /** A fresh state. */
  static empty(stream: string, runCounter = 0): StreamState {
    return new StreamState({ stream, runCounter, releases: [], vetoes: [], triggers: [], notes: [], counters: {} });
  }

  /**
   * Records a trigger: starts now, coalesces into the follow-up run, or answers a duplicate (the
   * same trigger again joins its run). With `rerunFailed`, a trigger whose earlier run failed is
   * no duplicate: re-running a failed commit starts a new run.
   */
  trigger(req: TriggerRequest, now: string, requestId: string, opts: { rerunFailed?: boolean } = {}): TriggerReply {
    const key = triggerKey(req.trigger, {
      options: req.options,
      lockHash: req.lock ? lockTriggerKey(req.lock) : undefined,
    });
    const joinable = (t: TriggerRecord) =>
      t.key === key && t.status !== 'duplicate' && !(opts.rerunFailed && t.outcome === Outcome.Failed);
    const dup = key ? [...this.data.triggers].reverse().find(joinable) : undefined;
    if (dup) {
      this.data.triggers = bounded(
        this.data.triggers,
        {
          requestId,
          key,
          source: req.trigger.source,
          commit: req.trigger.commit,
          at: now,
          status: 'duplicate',
          runWorkflowId: dup.runWorkflowId,
        },
        LIMITS.triggers,
      );
      return {
        status: 'duplicate',
        runWorkflowId: dup.runWorkflowId ?? this.pendingRunOf(dup.requestId),
        requestId: dup.requestId,
      };
    }
    if (req.plan) this.data.plan = req.plan;
    const coalescing = !!this.data.next;
    const ids = coalescing ? [...this.data.next!.requestIds, requestId] : [requestId];
    for (const t of this.data.triggers) if (this.data.next?.requestIds.includes(t.requestId)) t.status = 'coalesced';
    this.data.next = { ...req, requestIds: ids };
    const busy = !!this.data.current;
    const status = coalescing ? 'coalesced' : busy ? 'queued' : 'started';
    this.data.triggers = bounded(
      this.data.triggers,
      { requestId, key, source: req.trigger.source, commit: req.trigger.commit, at: now, status },
      LIMITS.triggers,
    );
    return { status, requestId };
  }

  private pendingRunOf(requestId: string): string | undefined {
    return this.data.triggers.find((t) => t.requestId === requestId)?.runWorkflowId;
  }

  /** Takes the next run to start, if the stream is free; returns its workflow id, request and trigger ids. */
  takeNext(): { runWorkflowId: string; request: TriggerRequest; requestIds: string[] } | undefined {
    if (this.data.current || !this.data.next || !this.data.plan) return undefined;
    const next = this.data.next;
    this.data.next = undefined;
    this.data.runCounter += 1;
    const runWorkflowId = `stream/${this.data.stream}/run-${this.data.runCounter}`;
    this.data.current = { runWorkflowId, requestId: next.requestIds.at(-1)! };
    this.count('runs');
    return { runWorkflowId, request: next, requestIds: next.requestIds };
  }

  /** The run exists on the server now: its triggers learn its id (so a caller can follow it at once). */
  runStarted(runWorkflowId: string, requestIds: string[]): void {
    for (const t of this.data.triggers) if (requestIds.includes(t.requestId)) t.runWorkflowId = runWorkflowId;
  }

  /** A run announced a candidate waiting for approval; returns a run it supersedes, if any. */
  candidateReady(p: PendingApproval): string | undefined {
    const older =
      this.data.parked && this.data.parked.runWorkflowId !== p.runWorkflowId
        ? this.data.parked.runWorkflowId
        : undefined;
    this.data.parked = p;
    // A parked run no longer blocks the stream: the next trigger may build a newer candidate.
    if (this.data.current?.runWorkflowId === p.runWorkflowId) this.data.current = undefined;
    // The superseded run is counted when it reports its end (outcome superseded), not here too.
    return older;
  }

  /** The waiting candidate was approved or rejected: an approved run is promoting until it ends. Returns its id. */
  decided(kind: 'approved' | 'rejected', by: string): string {
    const runWorkflowId = this.data.parked!.runWorkflowId;
    this.data.parked = undefined;
    if (kind === 'approved') this.data.promoting = { runWorkflowId, by };
    return runWorkflowId;
  }

  /** True while the stream waits for this run to end (building, waiting for approval or promoting). */
  watches(runWorkflowId: string): boolean {
    return watchedRuns(this.data).includes(runWorkflowId);
  }

  /** A run ended; returns the compatibility hold's transition, if it began or ended. */
  runFinished(r: RunFinished, now: string): 'blocked' | 'unblocked' | undefined {
    if (this.data.current?.runWorkflowId === r.runWorkflowId) this.data.current = undefined;
    if (this.data.parked?.runWorkflowId === r.runWorkflowId) this.data.parked = undefined;
    if (this.data.promoting?.runWorkflowId === r.runWorkflowId) this.data.promoting = undefined;
    for (const t of this.data.triggers) if (t.runWorkflowId === r.runWorkflowId) t.outcome = r.outcome;
    this.count(r.outcome);
    // A run that stopped short of a verdict (superseded, vetoed) neither breaks nor extends a streak.
    if (r.outcome === Outcome.Failed) this.data.failedInARow = (this.data.failedInARow ?? 0) + 1;
    else if ([Outcome.Promoted, Outcome.Unchanged, Outcome.CandidateOnly].includes(r.outcome as never))
      this.data.failedInARow = 0;
    for (const { stage, seconds } of r.stages ?? []) (this.data.stageSeconds ??= {})[stage] = seconds;
    if (r.release) this.recordRelease(r.release);
    this.note(now, `${r.runWorkflowId}: ${r.outcome}: ${r.message}`);
    this.data.lastWarnings = { run: r.runWorkflowId, warnings: r.warnings ?? [] };
    if (r.kernels)
      this.data.kernelLag = updateLag(
        this.data.kernelLag ?? [],
        { kernels: r.kernels, promoted: r.outcome === 'promoted' },
        now,
      );
    const { hold, transition } = holdAfterRun(this.data.compatHold, r, now);
    this.data.compatHold = hold;
    if (transition === 'unblocked') this.note(now, `compatibility hold ended: ${r.runWorkflowId} promoted`);
    return transition;
  }

  /** Records a re-check of the release source while held; true when a run should start. */
  recheck(
    release: { version: string; linuxMin?: string; linuxMax?: string },
    allowExperimental: boolean,
    now: string,
  ): boolean {
    if (!this.data.compatHold) return false;
    const r = recheck(this.data.compatHold, release, allowExperimental, now);
    this.data.compatHold = r.hold;
    this.note(
      now,
      `compatibility re-check: zfs-${release.version} (Linux-Maximum ${release.linuxMax ?? '?'}) ${r.start ? 'supports every kernel: starting a run' : 'still does not support every kernel'}`,
    );
    return r.start;
  }

  /**
   * Records a release as the last good one. A promotion does not end a hold: a hold that exists when
   * a promotion ends was set during it (approvals are refused while held), and applies after it.
   */
  recordRelease(release: Release): void {
    this.data.lastGood = release;
    this.data.releases = bounded(this.data.releases, release, LIMITS.releases);
  }

  /** Why an approve/reject cannot be accepted (undefined when it can). */
  approvalProblem(req: ApprovalRequest, approvers: readonly string[], reject = false): string | undefined {
    return approvalProblem({ pending: this.data.parked, approvers, request: req, reject });
  }

  /** The release a rollback target names, or a message why there is none. */
  rollbackTarget(to: string): Release | string {
    const r = findRelease(this.data.releases, to);
    if (!r)
      return `No release with audit tag or digest ${JSON.stringify(to)} in this stream's history (${this.data.releases.map((x) => x.auditTag).join(', ') || 'empty'}).`;
    if (this.data.lastGood?.digest === r.digest) return `Stable already is ${r.digest} (${r.auditTag}).`;
    return r;
  }

  /** Adds a veto. */
  veto(v: Veto): void {
    this.data.vetoes = [...this.data.vetoes.filter((x) => !(x.kind === v.kind && x.value === v.value)), v];
  }

  /** Removes a veto; returns it, or undefined when there was none. */
  unveto(kind: Veto['kind'], value: string): Veto | undefined {
    const found = this.data.vetoes.find((v) => v.kind === kind && v.value === value);
    this.data.vetoes = this.data.vetoes.filter((v) => v !== found);
    return found;
  }

  /** Holds or releases the stream. */
  setHold(hold: StreamStateData['hold']): void {
    this.data.hold = hold;
  }

  /** Records one webhook delivery's end; a failure never fails a run, it shows in status. */
  notified(now: string, event: string, webhook: number, error?: string): void {
    const n = (this.data.notifications ??= { sent: 0, failed: 0 });
    if (error === undefined) n.sent += 1;
    else {
      n.failed += 1;
      n.lastFailure = { at: now, event, webhook: webhook + 1, error };
      this.note(now, `notification ${event} to webhook ${webhook + 1} failed: ${error}`);
    }
  }

  /** Adds a line to the bounded notes (invalid signals, run ends). */
  note(at: string, text: string): void {
    this.data.notes = bounded(this.data.notes, { at, text }, LIMITS.notes);
  }

  /** True when nothing is running and nothing is queued. */
  get idle(): boolean {
    return !this.data.current && !this.data.next;
  }

  private count(what: string): void {
    this.data.counters[what] = (this.data.counters[what] ?? 0) + 1;
  }
}
