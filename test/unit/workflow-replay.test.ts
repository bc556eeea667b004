/**
 * Workflow code safety nets: the bundle builds (no Node-only import slipped into workflow code),
 * and every committed history replays against the current code (a change that breaks one must
 * ship behind `patched()`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';

const workflowsPath = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));
const historyDir = fileURLToPath(new URL('../history/', import.meta.url));

test('the workflow code bundles without Node-only modules', async () => {
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as never,
  });
  assert.ok(code.includes('pipelineRunWorkflow'));
  for (const banned of ['node:fs', 'node:child_process', 'execa'])
    assert.ok(!new RegExp(`require\\(["']${banned}["']\\)`).test(code), `${banned} must not be in workflow code`);
});

test('every committed workflow history replays against the current workflow code', async () => {
  const files = (await readdir(historyDir)).filter((f) => f.endsWith('.json'));
  assert.ok(files.length > 0, 'at least one history is committed');
  const bundle = await bundleWorkflowCode({
    workflowsPath,
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as never,
  });
  for (const file of files) {
    const history = JSON.parse(await readFile(`${historyDir}${file}`, 'utf8'));
    await Worker.runReplayHistory({ workflowBundle: bundle, replayName: file }, history);
  }
});
