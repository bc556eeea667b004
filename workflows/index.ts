/**
 * Every workflow the worker registers (the worker's workflowsPath points here).
 */
export { pipelineRunWorkflow } from './pipeline-run.ts';
export { streamWorkflow } from './stream.ts';
export { scheduledTriggerWorkflow } from './scheduled-trigger.ts';
