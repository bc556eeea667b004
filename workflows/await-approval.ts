/**
 * Approval stage of a run: tell the stream a candidate is ready, then wait for its decision
 * (approved, rejected, superseded) or the policy's timeout.
 */
import { condition, getExternalWorkflowHandle, setHandler, workflowInfo } from '@temporalio/workflow';
import { durationMs, pendingApproval } from '../core/stream-rules.ts';
import { approvalDecisionSignal, candidateReadySignal, type ApprovalDecision } from './shared.ts';

/** The decision, or `expired` when nobody decided in time. */
export type ApprovalOutcome = ApprovalDecision | { kind: 'expired' };

let decision: ApprovalDecision | undefined;

/** Registers the decision handler; call once at workflow start so an early signal is not lost. */
export function listenForApproval(): void {
  setHandler(approvalDecisionSignal, (d) => {
    decision ??= d;
  });
}

/** Announces the candidate to the stream and waits for a decision. */
export async function awaitApproval(input: {
  streamWorkflowId: string;
  digest: string;
  inputsHash: string;
  kernels: string[];
  zfsVersion: string;
  timeout: string;
}): Promise<ApprovalOutcome> {
  const pending = pendingApproval(
    {
      runWorkflowId: workflowInfo().workflowId,
      digest: input.digest,
      inputsHash: input.inputsHash,
      kernels: input.kernels,
      zfsVersion: input.zfsVersion,
    },
    { nowMs: Date.now(), timeout: input.timeout },
  );
  await getExternalWorkflowHandle(input.streamWorkflowId).signal(candidateReadySignal, pending);
  const decided = await condition(() => decision !== undefined, durationMs(input.timeout));
  return decided ? decision! : { kind: 'expired' };
}
