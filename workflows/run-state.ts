/**
 * The state of one pipeline run as the operator sees it: stage records, akmods per kernel,
 * search attributes and the UI's current details. Plain class; the workflow only calls it.
 */
import { upsertSearchAttributes, setCurrentDetails, setHandler } from '@temporalio/workflow';
import { Stage, Outcome } from '../core/progress.ts';
import type { BootRecord, RunProgress, StageRecord } from '../core/pipeline.ts';
import { progressQuery, SearchAttr } from './shared.ts';

/** Tracks stages and publishes them (query, search attributes, current details). */
export class RunState {
  readonly progress: RunProgress;
  /** Builds waiting for a build host, by their summary. */
  private readonly waitingFor = new Map<string, string>();

  constructor(stream: string) {
    this.progress = { stream, stage: Stage.Resolve, stages: [], kernels: [], akmods: [] };
    setHandler(progressQuery, () => this.progress);
  }

  /** Runs one stage: records its start and end, keeps the UI in step; rethrows failures. */
  async stage<T>(stage: Stage, fn: () => Promise<T>, detail?: (result: T) => string): Promise<T> {
    const record: StageRecord = { stage, status: 'running', startedAt: new Date().toISOString() };
    this.progress.stage = stage;
    this.progress.stages.push(record);
    upsertSearchAttributes([{ key: SearchAttr.stage, value: stage }]);
    this.details();
    try {
      const result = await fn();
      record.status = 'done';
      record.detail = detail?.(result);
      return result;
    } catch (err) {
      record.status = 'failed';
      record.detail = innermostMessage(err).split('\n')[0];
      throw err;
    } finally {
      record.endedAt = new Date().toISOString();
      this.details();
    }
  }

  /** Records what is known about the run so far (search attributes and progress). */
  know(facts: { kernels?: string[]; zfsVersion?: string; candidateDigest?: string; inputsHash?: string }): void {
    if (facts.kernels) {
      this.progress.kernels = facts.kernels;
      upsertSearchAttributes([{ key: SearchAttr.kernels, value: facts.kernels }]);
    }
    if (facts.zfsVersion) {
      this.progress.zfsVersion = facts.zfsVersion;
      upsertSearchAttributes([{ key: SearchAttr.zfsRelease, value: facts.zfsVersion }]);
    }
    if (facts.candidateDigest) {
      this.progress.candidateDigest = facts.candidateDigest;
      upsertSearchAttributes([{ key: SearchAttr.candidateDigest, value: facts.candidateDigest }]);
    }
    if (facts.inputsHash) {
      this.progress.inputsHash = facts.inputsHash;
      upsertSearchAttributes([{ key: SearchAttr.inputsHash, value: facts.inputsHash }]);
    }
    this.details();
  }

  /** Marks one kernel's akmods state. */
  akmods(kernel: string, status: RunProgress['akmods'][number]['status']): void {
    const row = this.progress.akmods.find((r) => r.kernel === kernel);
    if (row) row.status = status;
    else this.progress.akmods.push({ kernel, status });
  }

  /** Records the booted check (shown in the UI's current details); returns it. */
  boot(record: BootRecord): BootRecord {
    this.progress.boot = record;
    this.details();
    return record;
  }

  /** Says (or, with undefined, stops saying) that no build host has taken the build `what` yet. */
  waiting(what: string, message: string | undefined): void {
    if (message === undefined && !this.waitingFor.delete(what)) return;
    if (message !== undefined) this.waitingFor.set(what, message);
    this.progress.waiting = [...this.waitingFor.values()];
    this.details();
  }

  /** Ends the run with an outcome. */
  finish(outcome: Outcome, message: string): void {
    this.progress.outcome = outcome;
    this.progress.message = message;
    this.progress.stage = Stage.Done;
    upsertSearchAttributes([
      { key: SearchAttr.outcome, value: outcome },
      { key: SearchAttr.stage, value: Stage.Done },
    ]);
    this.details();
  }

  /** The stage records so far. */
  get stages(): StageRecord[] {
    return this.progress.stages;
  }

  private details(): void {
    const p = this.progress;
    const lines = [
      `**Stream** ${p.stream} · **stage** ${p.stage}${p.outcome ? ` · **outcome** ${p.outcome}` : ''}`,
      p.kernels.length ? `**Kernels** ${p.kernels.join(', ')}` : '',
      p.zfsVersion ? `**ZFS** ${p.zfsVersion}` : '',
      p.candidateDigest ? `**Candidate** \`${p.candidateDigest}\`` : '',
      p.akmods.length ? `**Akmods** ${p.akmods.map((a) => `${a.kernel}: ${a.status}`).join(', ')}` : '',
      p.boot
        ? `**Boot** (${p.boot.policy}) ${p.boot.kernels.map((k) => `${k.kernel}: ${k.error ? `FAILED: ${k.error}` : `booted, zfs ${k.moduleVersion ?? '?'} loaded, pool round-trip ok, ${k.seconds.toFixed(1)}s ${k.accel}`}`).join('; ') || 'off'}`
        : '',
      ...(p.waiting ?? []).map((w) => `**Waiting** ${w}`),
      p.message ? `\n${p.message}` : '',
      '',
      ...p.stages.map((s) => `- ${s.stage}: ${s.status}${s.detail ? ` (${s.detail})` : ''}`),
    ];
    setCurrentDetails(lines.filter((l) => l !== '').join('\n'));
  }
}

/** The most specific message of an error chain (an ActivityFailure's cause says what went wrong). */
export function innermostMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && (e.cause as { message?: string } | undefined)?.message) e = e.cause as typeof e;
  return e?.message ?? String(err);
}
