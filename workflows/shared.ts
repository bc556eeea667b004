/**
 * Message and search-attribute definitions shared by workflows, the worker and the client.
 */
import { defineQuery } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { RunProgress } from '../core/pipeline.ts';

/** The live progress of a pipeline run: current stage, stage times, per-kernel akmods status. */
export const progressQuery = defineQuery<RunProgress>('progress');

/** Search attributes of pipeline runs (registered on the server by the set-up; see world/services.ts). */
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
} as const;

/** Task queue names a run uses (from the config at start time). */
export interface TaskQueues {
  control: string;
  build: string;
}
