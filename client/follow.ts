/**
 * Following a run live: stage lines with elapsed time (plain lines when not a terminal, a
 * progress line when it is), then one summary (text or JSON) and the exit code.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Outcome } from '../core/progress.ts';
import type { PipelineResult, RunProgress, StageRecord } from '../core/pipeline.ts';
import { progressQuery } from '../workflows/shared.ts';
import { ExitCode } from './exit-codes.ts';
import { verifyCommand } from '../activities/cosign.ts';
import { parseImageRef } from '../core/refs.ts';
import type { Config } from '../core/config.ts';

/** What the printed `cosign verify` command depends on: the stream's public key and tlog setting, the plain-HTTP registries. */
export interface VerifySettings {
  publicKeyFile: string;
  tlog: boolean;
  insecureRegistries: readonly string[];
}

/** The verify settings of `stream` in a config (what `run --wait` prints the command from). */
export function verifySettingsOf(config: Config, stream: string): VerifySettings | undefined {
  const s = config.streams[stream];
  return s
    ? { publicKeyFile: s.signing.publicKeyFile, tlog: s.signing.tlog, insecureRegistries: config.registries.insecure }
    : undefined;
}

/** The one JSON object `run --json` prints. */
export interface RunSummary {
  workflowId: string;
  runId: string;
  outcome: string;
  message: string;
  kernels: string[];
  zfsRelease?: string;
  inputsHash?: string;
  /** The recipe the run built: the configured ref (or the trigger's commit, for branch and PR runs) and its commit. */
  recipe?: { ref: string; commit: string };
  /** The candidate; `verify` is its `cosign verify` command when the run signed it. */
  candidate?: { repo: string; tag: string; digest: string; ref: string; verify?: string };
  stable?: { repo: string; digest: string; ref: string; tags: string[]; auditTag: string };
  akmods?: { ref: string; built: string[]; reused: string[] };
  /** The stable image's `cosign verify` command. */
  verify?: string;
  url?: string;
  stages: StageRecord[];
}

/** Outcomes that count as success for the exit code. */
export const SUCCESS_OUTCOMES: readonly string[] = [Outcome.Promoted, Outcome.CandidateOnly, Outcome.Unchanged];

/** Exit code for a finished run's outcome. */
export function exitCodeFor(outcome: string): number {
  return SUCCESS_OUTCOMES.includes(outcome) ? ExitCode.Ok : ExitCode.RunFailed;
}

const secs = (a: string, b?: string) => ((Date.parse(b ?? new Date().toISOString()) - Date.parse(a)) / 1000).toFixed(1);

/** Prints stage transitions from successive progress snapshots; pure apart from `print`. */
export class ProgressPrinter {
  private seen = new Set<string>();
  constructor(private readonly print: (line: string) => void) {}

  /** Prints whatever changed since the last snapshot. */
  update(p: RunProgress): void {
    // Facts are printed under the stage that produced them, so lines read in pipeline order.
    for (const s of p.stages) {
      this.once(`start:${s.stage}:${s.startedAt}`, `▶ ${s.stage}`);
      if (s.stage === 'akmods')
        for (const a of p.akmods) this.once(`akmods:${a.kernel}:${a.status}`, `  akmods ${a.kernel}: ${a.status}`);
      if (s.stage === 'approval' && s.status === 'running' && p.candidateDigest && p.inputsHash) {
        this.once(
          `approval:${p.candidateDigest}`,
          `  waiting for approval; to approve: kinoite-zfs approve --stream ${p.stream} --digest ${p.candidateDigest} --inputs-hash ${p.inputsHash} --by <you>`,
        );
      }
      if (s.status === 'running') {
        // A build no build host has taken: each new waiting time is a new line (retry.buildHostWait).
        for (const w of p.waiting ?? []) this.once(`waiting:${w}`, `  ${w}`);
        continue;
      }
      const mark = s.status === 'done' ? '✔' : s.status === 'failed' ? '✖' : '–';
      this.once(
        `end:${s.stage}:${s.startedAt}`,
        `${mark} ${s.stage} (${secs(s.startedAt, s.endedAt)}s)${s.detail ? ` ${s.detail}` : ''}`,
      );
      if (s.stage === 'resolve' && p.kernels.length)
        this.once(
          `kernels:${p.kernels.join(' ')}`,
          `  kernels: ${p.kernels.join(', ')}${p.zfsVersion ? ` · ZFS ${p.zfsVersion}` : ''}`,
        );
      if (s.stage === 'compose' && p.candidateDigest)
        this.once(`candidate:${p.candidateDigest}`, `  candidate: ${p.candidateDigest}`);
    }
  }

  private once(key: string, line: string): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.print(line);
  }
}

/** Waits for the run to end, printing progress unless `quiet`; returns the summary. */
export async function followRun(
  handle: WorkflowHandle,
  opts: {
    quiet: boolean;
    tty: boolean;
    url?: string;
    /** The stream's signing settings, for the exact `cosign verify` command in the summary. */
    verify?: VerifySettings;
    /** The run's id when the caller has it already (saves a describe call). */
    runId?: string;
  },
): Promise<RunSummary> {
  const out = (line: string) => {
    if (opts.quiet) return;
    if (opts.tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`${line}\n`);
  };
  const printer = new ProgressPrinter(out);
  let progress: RunProgress | undefined;
  let done = false;
  const resultP = handle.result().then(
    (r) => ({ ok: true as const, result: r as PipelineResult }),
    (err) => ({ ok: false as const, err }),
  );
  void resultP.then(() => (done = true));
  const spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let tick = 0;
  const t0 = Date.now();
  while (!done) {
    try {
      progress = (await handle.query(progressQuery)) as RunProgress;
      printer.update(progress);
    } catch {
      // not picked up by a worker yet, or finished between two polls
    }
    if (opts.tty && !opts.quiet && progress) {
      process.stderr.write(
        `\r\x1b[K${spinner[tick++ % spinner.length]} ${progress.stage} … ${((Date.now() - t0) / 1000).toFixed(0)}s`,
      );
    }
    await Promise.race([resultP, new Promise((r) => setTimeout(r, 1000))]);
  }
  try {
    progress = (await handle.query(progressQuery)) as RunProgress;
    printer.update(progress);
  } catch {
    // a worker may be gone; the result below is enough
  }
  if (opts.tty && !opts.quiet) process.stderr.write('\r\x1b[K');
  const settled = await resultP;
  const base = { workflowId: handle.workflowId, runId: opts.runId ?? (await handle.describe()).runId, url: opts.url };
  if (settled.ok) return summarise(settled.result, base, opts.verify);
  const err = settled.err;
  const failure = err instanceof WorkflowFailedError ? err.cause : undefined;
  const details = failureDetails(err);
  return {
    ...base,
    outcome: details?.outcome ?? Outcome.Failed,
    message: failure?.message ?? (err as Error).message,
    kernels: progress?.kernels ?? [],
    zfsRelease: progress?.zfsVersion,
    candidate: details?.candidate
      ? { ...details.candidate, ref: `${details.candidate.repo}@${details.candidate.digest}` }
      : undefined,
    stages: details?.stages ?? progress?.stages ?? [],
  };
}

/** What a failed run recorded in its failure (stages, inputs when resolved, candidate), if anything. */
export function failureDetails(err: unknown): Partial<PipelineResult> | undefined {
  const failure = err instanceof WorkflowFailedError ? err.cause : undefined;
  return failure instanceof ApplicationFailure
    ? (failure.details?.[0] as Partial<PipelineResult> | undefined)
    : undefined;
}

/** The result of a finished run, or what its failure recorded (empty when nothing). */
export async function finishedResult(handle: WorkflowHandle): Promise<Partial<PipelineResult>> {
  try {
    return (await handle.result()) as PipelineResult;
  } catch (err) {
    return failureDetails(err) ?? {};
  }
}

/** Builds the summary of a finished run. */
export function summarise(
  r: PipelineResult,
  base: { workflowId: string; runId: string; url?: string },
  verify?: VerifySettings,
): RunSummary {
  const stableRef = r.promotion ? `${r.promotion.stableRepo}@${r.promotion.digest}` : undefined;
  return {
    ...base,
    outcome: r.outcome,
    message: r.message,
    kernels: r.inputs?.kernels ?? [],
    zfsRelease: r.inputs?.zfs.version,
    inputsHash: r.inputsHash,
    recipe: r.inputs ? { ref: r.inputs.recipe.ref, commit: r.inputs.recipe.commit } : undefined,
    candidate: r.candidate ? { ...r.candidate, ref: `${r.candidate.repo}@${r.candidate.digest}` } : undefined,
    stable: r.promotion
      ? {
          repo: r.promotion.stableRepo,
          digest: r.promotion.digest,
          ref: stableRef!,
          tags: r.promotion.stableTags,
          auditTag: r.promotion.auditTag,
        }
      : undefined,
    akmods: r.akmods
      ? { ref: `${r.akmods.repo}@${r.akmods.digest}`, built: r.akmods.built, reused: r.akmods.reused }
      : undefined,
    // The worker's own command (its key, tlog setting and registries); runs from before it had
    // none, and get one from this client's config.
    verify:
      r.promotion?.verify ??
      (stableRef
        ? verifyCommand({
            ref: stableRef,
            publicKeyFile: verify?.publicKeyFile ?? 'cosign.pub',
            tlog: verify?.tlog ?? true,
            insecure: !!verify?.insecureRegistries.includes(parseImageRef(stableRef).registry),
          })
        : undefined),
    stages: r.stages,
  };
}

/** The human summary printed at the end of `run --wait`. */
export function formatSummary(s: RunSummary): string {
  const lines = [
    '',
    `${SUCCESS_OUTCOMES.includes(s.outcome) ? '✔' : '✖'} ${s.outcome.toUpperCase()}: ${s.message}`,
    `  run:        ${s.workflowId}`,
    s.kernels.length ? `  kernels:    ${s.kernels.join(', ')}` : '',
    s.zfsRelease ? `  ZFS:        ${s.zfsRelease}` : '',
    s.recipe ? `  recipe:     ${s.recipe.ref} @ ${s.recipe.commit}` : '',
    s.candidate ? `  candidate:  ${s.candidate.ref}${s.candidate.tag ? ` (${s.candidate.tag})` : ''}` : '',
    s.candidate?.verify ? `  verify candidate: ${s.candidate.verify}` : '',
    s.akmods ? `  akmods:     ${s.akmods.ref} (built: ${s.akmods.built.join(', ') || 'none'})` : '',
    s.stable ? `  stable:     ${s.stable.ref} (${s.stable.tags.join(', ')}, audit ${s.stable.auditTag})` : '',
    s.verify ? `  verify:     ${s.verify}` : '',
    s.url ? `  Web UI:     ${s.url}` : '',
  ];
  return lines.filter((l) => l !== '').join('\n');
}
