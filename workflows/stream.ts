/**
 * The stream workflow (id `stream/<name>`): decides the one writer of a stream's stable tags at a
 * time (its promoting run, or a rollback once that run has ended). It runs pipeline runs one at a
 * time as child workflows, coalesces triggers, holds the approval gate, vetoes, hold and release
 * history, performs rollbacks, watches its runs (across continue-as-new too), and continues-as-new
 * before its history grows large. The workflow only wires handlers; StreamState holds the rules.
 */
import {
  condition,
  continueAsNew,
  defineQuery,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  patched,
  setHandler,
  sleep,
  startChild,
  workflowInfo,
  uuid4,
  allHandlersFinished,
  ApplicationFailure,
} from '@temporalio/workflow';
import {
  durationMs,
  heldProblem,
  watchedRuns,
  rollbackRelease,
  rollbackRequestedHold,
  stableWriter,
  taskQueueProblem,
  unvetoProblem,
  vetoRequestProblem,
  type Release,
  type Veto,
} from '../core/stream-rules.ts';
import { runEndAnnouncements, type NotifyEvent, type NotifyPayload } from '../core/notify.ts';
import { innermostMessage } from './run-state.ts';
import { rollbackSaga } from './rollback-saga.ts';
import type { StreamPlan } from '../core/pipeline.ts';
import { activitiesFor } from './activities.ts';
import { StreamState, type StreamStateData } from './stream-state.ts';
import {
  approvalDecisionSignal,
  approveSignal,
  approveUpdate,
  candidateReadySignal,
  holdChangedSignal,
  holdUpdate,
  rejectUpdate,
  releaseUpdate,
  rollbackUpdate,
  runFinishedSignal,
  triggerSignal,
  triggerUpdate,
  vetoUpdate,
  unvetoUpdate,
  SearchAttr,
  type TaskQueues,
  type TriggerRequest,
} from './shared.ts';
import type { pipelineRunWorkflow } from './pipeline-run.ts';

/** The stream's state, as the CLI's `status` shows it. */
export const streamStateQuery = defineQuery<StreamStateData>('state');

/** Input of the stream workflow (also its continue-as-new argument). */
export interface StreamInput {
  stream: string;
  taskQueues: TaskQueues;
  /** Who may approve; refreshed by every trigger that carries a plan. */
  approvers?: string[];
  state?: StreamStateData;
  /** Runs this stream had before (e.g. under an earlier stream workflow), so run numbers and audit tags never repeat. @default 0 */
  previousRuns?: number;
  /** Continue-as-new after this many history events, or sooner when the server suggests it (tests force it small). @default 2000 */
  maxHistoryEvents?: number;
  /** How often the stream asks after runs carried over from before a continue-as-new (tests use seconds; each check adds about 8 history events per run). @default 10m */
  carriedRunCheckEvery?: string;
}

/** The stream workflow. */
export async function streamWorkflow(input: StreamInput): Promise<void> {
  const state = input.state ? new StreamState(input.state) : StreamState.empty(input.stream, input.previousRuns ?? 0);
  // Since patch plan-from-worker the stream's settings come only from the workers' config, read at
  // every trigger; a trigger names the stream and run options, and any plan it carries is ignored.
  const planFromWorker = patched('plan-from-worker');
  const approvers = () => state.data.plan?.promotion.approvers ?? (planFromWorker ? [] : (input.approvers ?? []));
  const now = () => new Date().toISOString();
  // Built per use: the stream's retry budgets come with its plan, which a trigger may change.
  const acts = () => activitiesFor(input.taskQueues, state.data.plan?.retry, state.data.plan?.buildQueue);
  const selfId = workflowInfo().workflowId;
  const rollbacks: (() => Promise<void>)[] = [];
  /** Set when the workers' config does not name this stream and it never had settings: the stream ends. */
  let unconfigured = false;

  setHandler(streamStateQuery, () => state.data);

  /** A trigger with the stream's settings from the workers' config (or, before the patch, the sender's). */
  const withPlan = async (req: TriggerRequest): Promise<TriggerRequest> => {
    if (!planFromWorker) return req;
    try {
      const plan = await acts().control.loadStreamPlan.executeWithOptions(
        { summary: `read the settings of stream ${input.stream} from the workers' config` },
        [{ stream: input.stream }],
      );
      return { ...req, plan };
    } catch (err) {
      const message = innermostMessage(err as Error).split('\n')[0]!;
      state.note(
        now(),
        `refused a trigger from ${req.trigger.source}${req.trigger.by ? ` (${req.trigger.by})` : ''}: ${message}`,
      );
      if (!state.data.plan) unconfigured = true;
      throw ApplicationFailure.create({ type: 'UnknownStream', message, nonRetryable: true });
    }
  };
  // Since patch rerun-failed a trigger whose run failed starts a new run (re-running a failed
  // commit from GitHub); before it, it was answered with the failed run. Asked at a trigger, not
  // at the start: a marker in every execution would bring continue-as-new that much sooner.
  const onTrigger = (req: TriggerRequest) =>
    state.trigger(req, now(), req.trigger.requestId ?? uuid4(), { rerunFailed: patched('rerun-failed') });
  const queueProblem = (req: TriggerRequest) => taskQueueProblem(input.stream, input.taskQueues, req.taskQueues);
  setHandler(triggerSignal, (req) => {
    const problem = queueProblem(req);
    if (problem) return state.note(now(), `ignored trigger signal: ${problem}`);
    if (!planFromWorker) return void onTrigger(req);
    void withPlan(req).then(onTrigger, () => undefined);
  });
  setHandler(
    triggerUpdate,
    async (req) => {
      const reply = onTrigger(await withPlan(req));
      if (reply.status !== 'duplicate') {
        // Answer with the run id as soon as the run this trigger belongs to has one; when another
        // run is in progress, answer at once (queued or coalesced into the follow-up run).
        const record = () => state.data.triggers.find((t) => t.requestId === reply.requestId);
        await condition(
          () =>
            !!record()?.runWorkflowId ||
            (!!state.data.current && !!state.data.next?.requestIds.includes(reply.requestId)),
        );
        reply.runWorkflowId = record()?.runWorkflowId;
      }
      return reply;
    },
    {
      validator: (req) => {
        const problem = queueProblem(req);
        if (problem) throw new Error(problem);
      },
    },
  );

  // Notifications: fire-and-forget deliveries the loop waits for only before continue-as-new.
  const deliveries = new Set<Promise<void>>();
  const announce = (event: NotifyEvent, facts: Omit<NotifyPayload, 'schema' | 'event' | 'stream' | 'at'>) => {
    const payload: NotifyPayload = { schema: 'kinoite-zfs/v1', event, stream: input.stream, at: now(), ...facts };
    (state.data.plan?.notify ?? []).forEach((hook, index) => {
      if (!hook.events.includes(event)) return;
      const p: Promise<void> = acts()
        .notify.deliverNotification.executeWithOptions({ summary: `notify ${event} to webhook ${index + 1}` }, [
          { stream: input.stream, index, payload },
        ])
        .then(
          () => state.notified(now(), event, index),
          (err: Error) => state.notified(now(), event, index, innermostMessage(err).split('\n')[0]!),
        )
        .finally(() => deliveries.delete(p));
      deliveries.add(p);
    });
  };

  setHandler(candidateReadySignal, (pending) => {
    announce('approval-pending', {
      message: `Candidate ${pending.digest} waits for approval until ${pending.deadline}.`,
      run: pending.runWorkflowId,
      digest: pending.digest,
      kernels: pending.kernels,
      zfsVersion: pending.zfsVersion,
    });
    const superseded = state.candidateReady(pending);
    if (superseded)
      void getExternalWorkflowHandle(superseded).signal(approvalDecisionSignal, {
        kind: 'superseded',
        by: pending.runWorkflowId,
      });
  });
  setHandler(runFinishedSignal, (r) => {
    const transition = state.runFinished(r, now());
    for (const a of runEndAnnouncements(r, transition, state.data.compatHold)) announce(a.event, a.facts);
  });

  const decide = async (kind: 'approved' | 'rejected', req: { by: string; reason?: string }) => {
    const runId = state.decided(kind, req.by);
    await getExternalWorkflowHandle(runId).signal(
      approvalDecisionSignal,
      kind === 'approved' ? { kind, by: req.by } : { kind, by: req.by, reason: req.reason! },
    );
    return runId;
  };
  const holdProblem = () => heldProblem(input.stream, state.data.hold);
  setHandler(approveUpdate, async (req) => ({ approved: await decide('approved', req) }), {
    validator: (req) => {
      const problem = holdProblem() ?? state.approvalProblem(req, approvers());
      if (problem) throw new Error(problem);
    },
  });
  setHandler(rejectUpdate, async (req) => ({ rejected: await decide('rejected', req) }), {
    validator: (req) => {
      const problem = state.approvalProblem(req, approvers(), true);
      if (problem) throw new Error(problem);
    },
  });
  // The Web UI sends Signals: same checks; an invalid one is recorded and ignored.
  setHandler(approveSignal, (req) => {
    const problem = holdProblem() ?? state.approvalProblem(req, approvers());
    if (problem) return state.note(now(), `ignored approve signal from ${JSON.stringify(req?.by ?? '')}: ${problem}`);
    void decide('approved', req);
  });

  setHandler(
    vetoUpdate,
    (req) => {
      const veto: Veto = { kind: req.kind, value: req.value, by: req.by, reason: req.reason, at: now() };
      state.veto(veto);
      return veto;
    },
    {
      validator: (req) => {
        const problem = vetoRequestProblem(req);
        if (problem) throw new Error(problem);
      },
    },
  );
  setHandler(unvetoUpdate, (req) => state.unveto(req.kind, req.value)!, {
    validator: (req) => {
      const problem = unvetoProblem(state.data.vetoes, req);
      if (problem) throw new Error(problem);
    },
  });
  // Runs in flight learn about a hold too, so none promotes after it.
  const tellRuns = async (held: boolean) => {
    // The approved run hears of it too (since patch one-writer): its promotion goes on, the hold stays.
    const { current, parked } = state.data;
    for (const id of watchedRuns(patched('one-writer') ? state.data : { current, parked }))
      await getExternalWorkflowHandle(id)
        .signal(holdChangedSignal, held)
        .catch(() => undefined);
  };
  setHandler(holdUpdate, async (req) => {
    state.setHold({ by: req.by, reason: req.reason ?? 'held by an operator', at: now() });
    await tellRuns(true);
    return { held: true as const };
  });
  setHandler(releaseUpdate, async () => {
    state.setHold(undefined);
    await tellRuns(false);
    return { held: false as const };
  });

  setHandler(
    rollbackUpdate,
    async (req) => {
      const target = state.rollbackTarget(req.to) as Release;
      // Held from now on, so nothing new promotes; the rollback runs in the loop below, once the
      // run that may be writing stable tags has ended.
      if (patched('one-writer')) {
        state.setHold(rollbackRequestedHold(target, { by: req.by, reason: req.reason, at: now() }));
        await tellRuns(true);
      }
      const done = new Promise<unknown>((resolve) =>
        rollbacks.push(() =>
          rollbackSaga(acts(), { stream: input.stream, plan: state.data.plan!, target }).then(
            () => resolve(undefined),
            resolve,
          ),
        ),
      );
      const failure = await done;
      if (failure)
        throw ApplicationFailure.create({
          type: 'RollbackFailed',
          message: `Rollback to ${req.to} failed: ${(failure as Error).message}`,
          nonRetryable: true,
        });
      const { release, hold } = rollbackRelease(target, { by: req.by, reason: req.reason, at: now() });
      state.recordRelease(release);
      state.setHold(hold);
      announce('rolled-back', {
        message: `Stable rolled back to ${target.auditTag} (${target.digest}) by ${req.by}; the stream is held.`,
        digest: target.digest,
        kernels: target.kernels,
        zfsVersion: target.zfsVersion,
      });
      return release;
    },
    {
      validator: (req) => {
        if (!state.data.plan) throw new Error('This stream has not run yet; there is nothing to roll back to.');
        const target = state.rollbackTarget(req.to);
        if (typeof target === 'string') throw new Error(target);
        if (!req.by?.trim()) throw new Error('say who asks for the rollback (--by)');
      },
    },
  );

  /** One re-check while held: when the line's newest release supports every held kernel, the stream starts a run by itself. */
  const recheckReleases = async () => {
    const plan = state.data.plan!;
    try {
      const release = await acts().control.resolveZfsRelease.executeWithOptions(
        { summary: `re-check OpenZFS ${plan.zfs.line} releases (compatibility hold)` },
        [{ line: plan.zfs.line, source: plan.zfs.source }],
      );
      if (state.recheck(release, plan.zfs.allowExperimental, now()) && state.idle) {
        onTrigger(
          await withPlan({
            trigger: { source: 'recheck', by: `compatibility re-check: zfs-${release.version}` },
            plan,
          }),
        );
      }
    } catch (err) {
      // A release source that is down now is asked again at the next re-check.
      state.note(now(), `compatibility re-check failed: ${(err as Error).message.split('\n')[0]}`);
    }
  };

  // A run that ends reports it by signal; one terminated or timed out is noticed here instead.
  const lost = (runWorkflowId: string, err: Error) => {
    if (state.watches(runWorkflowId))
      state.runFinished({ runWorkflowId, outcome: 'failed', message: err.message }, now());
  };
  // Runs carried over from before continue-as-new are no children of this workflow run: the stream
  // asks after them by signal (telling them the hold again), which fails once a run has closed.
  const carried = watchedRuns(state.data);
  if (carried.length && patched('watch-carried-runs'))
    void (async () => {
      for (let ids = carried; ids.length; ids = ids.filter((id) => state.watches(id))) {
        await sleep(durationMs(input.carriedRunCheckEvery ?? '10m'));
        for (const id of ids.filter((x) => state.watches(x)))
          await getExternalWorkflowHandle(id)
            .signal(holdChangedSignal, !!state.data.hold)
            .catch((err: Error) => lost(id, err));
      }
    })();

  // The loop: start the next run when the stream is free, perform rollbacks when no run writes stable tags.
  const maxEvents = input.maxHistoryEvents ?? 2000;
  const timeToContinue = () =>
    state.idle && (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > maxEvents);
  const wake = () =>
    rollbacks.length > 0 || (!state.data.current && !!state.data.next) || timeToContinue() || unconfigured;
  const held = () => !!state.data.compatHold && state.idle && !!state.data.plan;
  for (;;) {
    // Held by compatibility and idle: re-check the release source on a durable timer (zfs.recheckEvery).
    if (held()) {
      if (!(await condition(wake, durationMs(state.data.plan!.zfs.recheckEvery ?? '6h')))) await recheckReleases();
    } else {
      // A run that ends blocked wakes the loop too, so the re-check timer starts.
      await condition(() => wake() || held());
    }
    // Started by a trigger for a stream the workers' config does not name: nothing to keep.
    if (unconfigured && !state.data.plan && state.idle && !state.data.next) {
      await condition(allHandlersFinished);
      return;
    }
    // One writer: a rollback waits for the run that is promoting (or may promote) to end.
    if (rollbacks.length && patched('one-writer')) await condition(() => !stableWriter(state.data));
    while (rollbacks.length) await rollbacks.shift()!();
    const next = state.takeNext();
    if (next) {
      const child = await startChild<typeof pipelineRunWorkflow>('pipelineRunWorkflow', {
        workflowId: next.runWorkflowId,
        taskQueue: input.taskQueues.control,
        parentClosePolicy: ParentClosePolicy.ABANDON,
        args: [
          {
            stream: input.stream,
            // The run reads the settings itself since plan-from-worker.
            plan: planFromWorker ? undefined : (state.data.plan as StreamPlan),
            runNumber: state.data.runCounter,
            trigger: next.request.trigger,
            options: next.request.options,
            lock: next.request.lock,
            taskQueues: input.taskQueues,
            context: {
              lastGoodInputsHash: state.data.lastGood?.inputsHash,
              vetoes: state.data.vetoes,
              held: !!state.data.hold,
              streamWorkflowId: selfId,
            },
          },
        ],
        staticSummary: `kinoite-zfs ${input.stream}: run ${state.data.runCounter} (${next.request.lock ? 'REPLAY of a lock, ' : ''}${next.request.trigger.source})`,
        staticDetails: next.request.trigger.github
          ? `GitHub: [${next.request.trigger.github.repository} run ${next.request.trigger.github.runId}](${next.request.trigger.github.runUrl}) · ${next.request.trigger.github.ref} · ${next.request.trigger.commit ?? ''} · by ${next.request.trigger.by ?? ''}`
          : undefined,
        typedSearchAttributes: [
          { key: SearchAttr.stream, value: input.stream },
          { key: SearchAttr.trigger, value: next.request.trigger.source },
          ...(next.request.trigger.commit ? [{ key: SearchAttr.commit, value: next.request.trigger.commit }] : []),
          ...(next.request.trigger.github
            ? [{ key: SearchAttr.repository, value: next.request.trigger.github.repository }]
            : []),
        ],
        memo: { stream: input.stream, trigger: next.request.trigger },
      });
      state.runStarted(next.runWorkflowId, next.requestIds);
      void child.result().then(
        () => undefined,
        (err: Error) => lost(next.runWorkflowId, err),
      );
      continue;
    }
    if (timeToContinue()) {
      // A trigger handler may be reading the stream's settings (an activity): the run it asks for
      // starts first, and the stream continues as new once it is idle again.
      const triggered = () => planFromWorker && (!!state.data.next || rollbacks.length > 0);
      await condition(() => (allHandlersFinished() && deliveries.size === 0) || triggered());
      if (!triggered()) await continueAsNew<typeof streamWorkflow>({ ...input, state: state.data });
    }
  }
}
