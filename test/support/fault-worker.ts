/**
 * The fault suite's worker: `kinoite-zfs worker` (runWorker, both queues) with a prebuilt workflow
 * bundle, which can SIGKILL itself (with its process group) at one activity boundary of a pipeline
 * run, given in $KZ_FAULT_KILL as `<activity id>:<event>`:
 *
 * - `scheduled`: the activity reached this worker, which dies before doing any of it;
 * - `started`: the activity did its work, and the worker dies before reporting it to Temporal;
 * - `completed`: Temporal recorded the activity as completed, and the worker dies in the workflow
 *   task that follows, before that task's result (the run's next step) reaches Temporal.
 *
 *   node --import tsx test/support/fault-worker.ts CONFIG WORKFLOW-BUNDLE
 *
 * Started by test/integration/faults.test.ts through spawnWorker (its own process group).
 */
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import { loadConfig } from '../../client/config-file.ts';
import { runWorker } from '../../worker/main.ts';
import type { FaultSinks } from './fault-interceptors.ts';

const [configFile, bundle] = process.argv.slice(2);
if (!configFile || !bundle) {
  console.error('usage: node --import tsx test/support/fault-worker.ts CONFIG WORKFLOW-BUNDLE');
  process.exit(2);
}
const [activityId, event] = (process.env.KZ_FAULT_KILL ?? '').split(':');
const at = (id: string, e: string, workflowType: string | undefined) =>
  workflowType === 'pipelineRunWorkflow' && id === activityId && e === event;

function die(where: string): void {
  console.log(`fault worker: SIGKILL after ${where}`);
  // The worker was started in its own process group: end it with everything it started, as a crash would.
  process.kill(-process.pid, 'SIGKILL');
}

const killer: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      // Whichever attempt gets there first: one that failed on its own must not let the boundary pass.
      const { activityId: id, activityType, workflowType } = ctx.info;
      if (at(id, 'scheduled', workflowType)) die(`${activityType} #${id} was scheduled`);
      const result = await next(input);
      if (at(id, 'started', workflowType)) die(`${activityType} #${id} did its work`);
      return result;
    },
  },
});

const sinks: InjectedSinks<FaultSinks> = {
  fault: {
    activityCompleted: {
      fn: (info, id, activityType) => {
        if (at(id, 'completed', info.workflowType)) die(`${activityType} #${id} completed`);
      },
    },
  },
};

const config = await loadConfig(configFile);
await runWorker({
  config,
  configFile,
  logLevel: 'WARN',
  workerOptions: { workflowBundle: { codePath: bundle }, sinks, interceptors: { activity: [killer] } },
});
