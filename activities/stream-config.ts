/**
 * The stream's settings, from the worker's own config: the only place a stream or a run gets its
 * plan. Triggers name a stream and run options; base, repositories, recipe location and keys never
 * come from whoever starts a workflow (docs/trust.md).
 */
import type { StreamPlan } from '../core/pipeline.ts';
import type { ActivityDeps } from './deps.ts';

export function streamConfigActivities({ host }: ActivityDeps) {
  return {
    /** The plan of `stream` in this worker's config (read again when the file changed); refuses an unknown stream. */
    async loadStreamPlan(input: { stream: string }): Promise<StreamPlan> {
      return host.streamPlan(input.stream);
    },
  };
}
