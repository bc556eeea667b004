/** The many-streams benchmark's reading of the SDK's Prometheus histograms (scripts/bench-streams.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { histogramDelta, quantileBound, readHistogram } from '../../scripts/bench-streams.ts';

const scrape = (a: number, b: number) => `# HELP temporal_workflow_task_execution_latency latency
# TYPE temporal_workflow_task_execution_latency histogram
temporal_workflow_task_execution_latency_bucket{namespace="default",workflow_type="streamWorkflow",le="10"} ${a}
temporal_workflow_task_execution_latency_bucket{namespace="default",workflow_type="streamWorkflow",le="100"} ${a + b}
temporal_workflow_task_execution_latency_bucket{namespace="default",workflow_type="streamWorkflow",le="+Inf"} ${a + b}
temporal_workflow_task_execution_latency_sum{namespace="default",workflow_type="streamWorkflow"} ${a * 5 + b * 50}
temporal_workflow_task_execution_latency_count{namespace="default",workflow_type="streamWorkflow"} ${a + b}
temporal_workflow_task_execution_latency_bucket{namespace="default",workflow_type="pipelineRunWorkflow",le="10"} 1
temporal_workflow_task_execution_latency_bucket{namespace="default",workflow_type="pipelineRunWorkflow",le="100"} 1
temporal_workflow_task_execution_latency_bucket{namespace="default",workflow_type="pipelineRunWorkflow",le="+Inf"} 2
temporal_workflow_task_execution_latency_sum{namespace="default",workflow_type="pipelineRunWorkflow"} 1005
temporal_workflow_task_execution_latency_count{namespace="default",workflow_type="pipelineRunWorkflow"} 2
temporal_workflow_task_schedule_to_start_latency_count{namespace="default"} 99
`;

test('a histogram is summed over its label sets and kept apart from other metrics', () => {
  const h = readHistogram(scrape(3, 1), 'temporal_workflow_task_execution_latency');
  assert.equal(h.count, 6);
  assert.equal(h.sum, 3 * 5 + 50 + 1005);
  assert.deepEqual(
    [...h.buckets].sort((a, b) => a[0] - b[0]),
    [
      [10, 4],
      [100, 5],
      [Infinity, 6],
    ],
  );
});

test('the delta of two scrapes holds only what was observed between them; quantiles are bucket bounds', () => {
  const name = 'temporal_workflow_task_execution_latency';
  const d = histogramDelta(readHistogram(scrape(3, 9), name), readHistogram(scrape(3, 1), name));
  assert.equal(d.count, 8);
  assert.equal(d.sum, 8 * 50);
  assert.equal(quantileBound(d, 0.5), 100, 'every new observation fell in the 10–100 bucket');
  assert.equal(quantileBound(readHistogram(scrape(10, 0), name), 0.5), 10);
  assert.equal(quantileBound(readHistogram(scrape(10, 0), name), 0.95), Infinity, 'the slow pipeline tasks');
});
