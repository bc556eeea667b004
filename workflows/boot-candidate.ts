/**
 * Boot stage: every kernel of the candidate boots under qemu with the candidate's own modules and
 * userland and round-trips a pool, on the build queue. The stream's `smoke.boot` policy decides
 * whether a failure fails the run (required), is a warning (optional), or the check is skipped (off).
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { BootPolicy, bootVerdict } from '../core/boot.ts';
import { FailureType } from '../core/errors.ts';
import { Stage } from '../core/progress.ts';
import { durationMs } from '../core/stream-rules.ts';
import type { BootRecord, StreamPlan } from '../core/pipeline.ts';
import type { Acts } from './activities.ts';
import { onBuildHost } from './build-host.ts';
import type { RunState } from './run-state.ts';

/** Runs the booted check under the stream's policy; throws BootFailed when it is required and a kernel failed. */
export async function bootCandidate(
  acts: Acts,
  state: RunState,
  args: { plan: StreamPlan; candidate: string; kernels: string[] },
): Promise<BootRecord> {
  const policy = args.plan.smoke?.boot ?? BootPolicy.Required;
  return state.stage(
    Stage.Boot,
    async () => {
      if (policy === BootPolicy.Off) return state.boot({ policy, kernels: [], warnings: [] });
      const timeoutSeconds = Math.ceil(durationMs(args.plan.smoke?.bootTimeout ?? '5m') / 1000);
      const { kernels } = await onBuildHost(
        acts,
        state,
        `boot ${args.kernels.length} kernel(s) of ${args.candidate} (${policy})`,
        (o) =>
          acts.build.bootTestCandidate.executeWithOptions(o, [
            { candidate: args.candidate, kernels: args.kernels, timeoutSeconds },
          ]),
      );
      const verdict = bootVerdict(policy, kernels);
      const record = state.boot({ policy, kernels, warnings: verdict.warnings });
      if (!verdict.ok)
        throw ApplicationFailure.create({ type: FailureType.BootFailed, message: verdict.message, nonRetryable: true });
      return record;
    },
    (r) =>
      r.policy === BootPolicy.Off
        ? 'off (smoke.boot)'
        : `${r.policy}: ${r.kernels.map((k) => `${k.kernel} ${k.error ? 'failed' : `ok ${k.seconds.toFixed(1)}s`}`).join(', ')}`,
  );
}
