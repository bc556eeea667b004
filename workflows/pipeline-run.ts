/**
 * One pipeline run, as its checklist: resolve → decide → akmods → compose → smoke-test →
 * promote → record. Stable moves only at the promote step, only to the digest the smoke test
 * passed, and only after that digest is signed.
 */
import {
  ApplicationFailure,
  workflowInfo,
  ActivityFailure,
  isCancellation,
  getExternalWorkflowHandle,
  setHandler,
  patched,
} from '@temporalio/workflow';
import { Stage, Outcome } from '../core/progress.ts';
import { compatVerdict } from '../core/compat.ts';
import { isPermanentError } from '../core/errors.ts';
import { digestRef } from '../core/refs.ts';
import {
  buildInputsRecord,
  imageLabels,
  recipeCommitNote,
  provenanceRecord,
  slsaPredicate,
  tagPlan,
  type PipelineInput,
  type PipelineResult,
  type RunContext,
  type StreamPlan,
} from '../core/pipeline.ts';
import { activitiesFor } from './activities.ts';
import { onBuildHost } from './build-host.ts';
import { RunState } from './run-state.ts';
import { resolveInputs } from './resolve-inputs.ts';
import { ensureAkmods, reuseSharedAkmods } from './ensure-akmods.ts';
import { bootCandidate } from './boot-candidate.ts';
import { modeTag } from '../core/tags.ts';
import { promotionSaga } from './promotion-saga.ts';
import { awaitApproval, listenForApproval } from './await-approval.ts';
import { approvalVerdict, promotionGate, promotionRelease, runGate, type Release } from '../core/stream-rules.ts';
import { holdChangedSignal, runFinishedSignal, type TaskQueues } from './shared.ts';
import type { BlockedRun } from '../core/compat-hold.ts';

/** Pipeline run input plus the task queues to use. */
export type PipelineRunInput = PipelineInput & { taskQueues: TaskQueues };

/** The pipeline run workflow. */
export async function pipelineRunWorkflow(input: PipelineRunInput): Promise<PipelineResult> {
  const state = new RunState(input.stream);
  // Since patch plan-from-worker the run reads its stream's settings from the workers' config in
  // its resolve stage; whatever plan a starter passed is ignored (docs/trust.md). Until then its
  // activities use the default retry budgets.
  const planFromWorker = patched('plan-from-worker');
  let plan = planFromWorker ? (undefined as unknown as StreamPlan) : input.plan!;
  let acts = planFromWorker
    ? activitiesFor(input.taskQueues)
    : activitiesFor(input.taskQueues, plan.retry, plan.buildQueue);
  const info = workflowInfo();
  const ctx: RunContext = {
    workflowId: info.workflowId,
    runId: info.runId,
    runNumber: input.runNumber,
    trigger: input.trigger,
    generatedAt: new Date(info.startTime).toISOString(),
  };
  const streamId = input.context?.streamWorkflowId;
  listenForApproval();
  // A hold set while this run is in flight still stops its promotion.
  let held = !!input.context?.held;
  setHandler(holdChangedSignal, (h) => void (held = h));
  // What the operator should know even when the run succeeded (shown by `status`).
  const warnings: string[] = [];
  const tellStream = async (outcome: Outcome, message: string, release?: Release, blocked?: BlockedRun) => {
    const kernels = state.progress.kernels.length ? state.progress.kernels : undefined;
    if (streamId)
      await getExternalWorkflowHandle(streamId).signal(runFinishedSignal, {
        runWorkflowId: info.workflowId,
        outcome,
        message,
        release,
        kernels,
        blocked,
        ...(warnings.length ? { warnings } : {}),
        stages: state.stages.flatMap((r) =>
          r.status === 'done' && r.endedAt
            ? [{ stage: r.stage, seconds: (Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000 }]
            : [],
        ),
      });
  };
  const end = async (
    outcome: Outcome,
    message: string,
    extra: Partial<PipelineResult> = {},
    blocked?: BlockedRun,
  ): Promise<PipelineResult> => {
    state.finish(outcome, message);
    await tellStream(outcome, message, extra.release, blocked);
    return { stream: input.stream, outcome, message, stages: state.stages, ...extra };
  };

  // The resolved inputs, for the failure details too (a failed run's build-inputs.json, docs/artifacts.md).
  let resolved: Pick<PipelineResult, 'inputs' | 'inputsHash'> = {};
  try {
    // 1. Resolve inputs
    const mode = input.mode ?? 'main';
    // Since patch build-trigger-commit a branch or PR run builds its trigger's commit (before it,
    // recipe.ref whatever the trigger named); since sign-candidates main and branch candidates are
    // signed as soon as they are pushed (the image's own trust policy wants signatures in the
    // candidate repository too). PR candidates are never signed: a PR is not reviewed code.
    const buildTriggerCommit = mode !== 'main' && patched('build-trigger-commit');
    const signCandidate = mode !== 'pr' && patched('sign-candidates');
    const { inputs, hash, notes } = await state.stage(
      Stage.Resolve,
      async () => {
        if (planFromWorker) {
          plan = await acts.control.loadStreamPlan.executeWithOptions(
            { summary: `read the settings of stream ${input.stream} from the workers' config` },
            [{ stream: input.stream }],
          );
          acts = activitiesFor(input.taskQueues, plan.retry, plan.buildQueue);
        }
        const run = { mode, commit: input.trigger.commit };
        const r = await resolveInputs(acts, plan, input.lock, buildTriggerCommit ? run : undefined);
        return buildTriggerCommit || mode === 'main'
          ? { ...r, notes: [...r.notes, ...recipeCommitNote(run, r.inputs.recipe)] }
          : r;
      },
      (r) =>
        [
          `${r.inputs.kernels.length} kernel(s), ZFS ${r.inputs.zfs.version}, recipe ${r.inputs.recipe.commit.slice(0, 12)}${input.lock ? ' (replayed from a lock)' : ''}`,
          ...r.notes,
        ].join('; '),
    );
    state.know({ kernels: inputs.kernels, zfsVersion: inputs.zfs.version, inputsHash: hash });
    resolved = { inputs, inputsHash: hash };
    warnings.push(...notes);
    const tags = tagPlan({ plan, inputs, runNumber: input.runNumber });
    const buildInputs = buildInputsRecord(ctx, inputs, hash);
    const known = { inputsHash: hash, inputs, buildInputs };

    // 2. Decide: skip when unchanged or vetoed; only a compatible ZFS release spends build time
    const gate = runGate(input.context ?? { vetoes: [], held: false }, inputs, hash);
    const verdict = await state.stage(
      Stage.Decide,
      async () =>
        gate.go
          ? compatVerdict({
              kernels: inputs.kernels,
              linuxMin: inputs.zfs.linuxMin,
              linuxMax: inputs.zfs.linuxMax,
              allowExperimental: plan.zfs.allowExperimental,
              zfsVersion: inputs.zfs.version,
            })
          : undefined,
      (v) => (gate.go ? v!.verdict : gate.outcome),
    );
    if (!gate.go) return end(gate.outcome === 'unchanged' ? Outcome.Unchanged : Outcome.Vetoed, gate.message, known);
    if (verdict!.verdict === 'blocked')
      return end(Outcome.Blocked, verdict!.message, known, {
        kernel: verdict!.kernel,
        max: verdict!.max,
        zfsVersion: inputs.zfs.version,
        kernels: inputs.kernels,
      });

    // 3. Akmods: reuse or build for exactly these kernels (branch and PR runs only reuse, read-only)
    const branchOrPrTag = modeTag({ mode, branch: input.branch, pr: input.pr, fedora: inputs.fedora });
    const akmods = await state.stage(
      Stage.Akmods,
      () =>
        mode === 'main'
          ? ensureAkmods(acts, state, {
              stream: input.stream,
              plan,
              inputs,
              tags,
              rebuild: !!input.options?.rebuildAkmods,
              experimental: verdict!.verdict === 'experimental',
            })
          : reuseSharedAkmods(acts, state, {
              stream: input.stream,
              plan,
              inputs,
              tags,
              aliasTag: mode === 'branch' ? branchOrPrTag : undefined,
            }),
      (a) => `built ${a.built.length}, reused ${a.reused.length}`,
    );
    const candidateTag = branchOrPrTag ?? tags.candidate;

    // 4. Compose the candidate FROM the base by digest; sign it (main and branch runs)
    const { digest, verify } = await state.stage(Stage.Compose, async () => {
      const composed = await onBuildHost(acts, state, `compose ${plan.images.candidate}:${candidateTag}`, (o) =>
        acts.build.composeCandidate.executeWithOptions(o, [
          {
            stream: input.stream,
            recipe: { git: inputs.recipe.git, commit: inputs.recipe.commit, path: inputs.recipe.path },
            base: inputs.base.pinned,
            akmods: digestRef(akmods.repo, akmods.digest),
            candidateRepo: plan.images.candidate,
            stableRepo: plan.images.stable,
            tag: candidateTag,
            labels: imageLabels(inputs, hash),
          },
        ]),
      );
      if (!signCandidate) return { digest: composed.digest, verify: undefined };
      const ref = digestRef(plan.images.candidate, composed.digest);
      const signed = await acts.control.signImage.executeWithOptions({ summary: `sign ${ref}` }, [
        { stream: input.stream, ref },
      ]);
      return { digest: composed.digest, verify: signed.verify };
    });
    const candidate = { repo: plan.images.candidate, tag: candidateTag, digest, ...(verify ? { verify } : {}) };
    state.know({ candidateDigest: digest });

    // 5. Smoke-test the pushed candidate by digest
    await state.stage(
      Stage.SmokeTest,
      () =>
        acts.control.smokeTestCandidate.executeWithOptions(
          { summary: `smoke-test ${digestRef(candidate.repo, digest)}` },
          [{ candidate: digestRef(candidate.repo, digest), base: inputs.base.pinned, kernels: inputs.kernels }],
        ),
      (s) => `read ${s.layersRead} layer(s), skipped ${s.layersSkipped}`,
    );
    const akmodsRecord = {
      repo: akmods.repo,
      tag: akmods.tag,
      digest: akmods.digest,
      built: akmods.built,
      reused: akmods.reused,
    };

    // 5b. Boot every kernel with the candidate's own modules and userland (policy smoke.boot)
    const boot = patched('boot-stage')
      ? await bootCandidate(acts, state, {
          plan,
          candidate: digestRef(candidate.repo, digest),
          kernels: inputs.kernels,
        })
      : undefined;
    warnings.push(...(boot?.warnings ?? []));

    // 6. Approval: policy auto, approval (a human, through the stream) or never; a held stream does not promote
    const allowed = promotionGate({
      mode,
      promoteRequested: input.options?.promote !== false,
      policy: plan.promotion.policy,
      held,
      throughStream: !!streamId,
      candidate: `${digestRef(candidate.repo, digest)} (${candidateTag})`,
      akmodsTag: akmods.tag,
    });
    if (!allowed.promote) {
      const provenance = provenanceRecord({ ctx, inputs, hash, candidate, akmods, promotionResult: 'skipped' });
      return end(
        Outcome.CandidateOnly,
        `Candidate ${digestRef(candidate.repo, digest)} passed the smoke test; ${allowed.why}.`,
        { ...known, candidate, akmods: akmodsRecord, boot, provenance },
      );
    }
    let approvedBy = `policy:${plan.promotion.policy}`;
    if (allowed.needsApproval) {
      const decision = await state.stage(
        Stage.Approval,
        () =>
          awaitApproval({
            streamWorkflowId: streamId!,
            digest,
            inputsHash: hash,
            kernels: inputs.kernels,
            zfsVersion: inputs.zfs.version,
            timeout: plan.promotion.timeout,
          }),
        (d) => d.kind,
      );
      const approval = approvalVerdict(decision, { timeout: plan.promotion.timeout, held });
      if (!approval.promote)
        return end(approval.outcome, approval.message, { ...known, candidate, akmods: akmodsRecord, boot });
      approvedBy = approval.approvedBy;
    }

    // 7. Promote exactly the tested digest (saga), then record
    const predicate = slsaPredicate({ ctx, inputs, hash, builderId: `kinoite-zfs/${acts.queues.build}` });
    const promotion = await state.stage(Stage.Promote, () =>
      promotionSaga(acts, {
        stream: input.stream,
        candidate: { repo: candidate.repo, digest },
        stableRepo: plan.images.stable,
        stableTags: tags.stable,
        auditTag: tags.audit,
        akmods: { repo: akmods.repo, digest: akmods.digest, stableRepo: plan.images.akmodsStable, tag: akmods.tag },
        predicate,
      }),
    );
    const provenance = await state.stage(Stage.Record, async () =>
      provenanceRecord({ ctx, inputs, hash, candidate, akmods, promotion, promotionResult: 'success' }),
    );
    const release = promotionRelease({
      digest,
      inputsHash: hash,
      inputs,
      tags,
      akmods,
      at: new Date().toISOString(),
      approvedBy,
      runWorkflowId: info.workflowId,
    });
    return end(
      Outcome.Promoted,
      `Promoted ${digestRef(plan.images.stable, digest)} to ${tags.stable.join(', ')} (audit tag ${tags.audit}).`,
      { ...known, candidate, akmods: akmodsRecord, boot, promotion, provenance, release },
    );
  } catch (err) {
    if (isCancellation(err)) throw err;
    const cause =
      err instanceof ActivityFailure && err.cause instanceof ApplicationFailure
        ? err.cause
        : err instanceof ApplicationFailure
          ? err
          : undefined;
    const message = `${state.progress.stage} failed: ${cause?.message ?? (err as Error).message}`;
    state.finish(Outcome.Failed, message);
    await tellStream(Outcome.Failed, message);
    throw ApplicationFailure.create({
      type: cause?.type ?? (isPermanentError(err) ? err.type : 'PipelineFailed'),
      message,
      nonRetryable: true,
      details: [
        {
          stream: input.stream,
          outcome: Outcome.Failed,
          message,
          stages: state.stages,
          ...resolved,
          candidate: state.progress.candidateDigest
            ? { repo: plan.images.candidate, tag: '', digest: state.progress.candidateDigest }
            : undefined,
        },
      ],
    });
  }
}
