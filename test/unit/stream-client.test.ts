/**
 * Starting a stream: its run numbers continue from the runs it had before, and a stream is never
 * started from 0 because its earlier runs could not be counted (client/stream-client.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import { previousRunsOf, triggerStream } from '../../client/stream-client.ts';
import { mockConfig } from '../support/mock-activities.ts';

/** A client whose visibility count answers `count` and whose stream is in `status` (absent: not found). */
function fakeClient(count: () => Promise<{ count: number }>, status?: string) {
  const started: any[] = [];
  const client = {
    workflow: {
      count,
      getHandle: () => ({
        describe: async () => {
          if (!status) throw Object.assign(new Error('workflow not found'), { name: 'WorkflowNotFoundError' });
          return { status: { name: status } };
        },
      }),
      executeUpdateWithStart: async (_update: unknown, opts: any) => {
        started.push(opts.startWorkflowOperation.options.args[0]);
        return { status: 'started', requestId: 'r1' };
      },
    },
  } as unknown as Client;
  return { client, started };
}

const down = () => Promise.reject(new Error('visibility store unavailable\nmore detail'));

test('a stream that starts now numbers its runs after the runs counted before', async () => {
  const { client, started } = fakeClient(async () => ({ count: 41 }));
  const config = mockConfig({ stream: 's1', address: '127.0.0.1:1', queue: 'q' });
  await triggerStream(client, config, 's1', { trigger: { source: 'test' } });
  assert.equal(started[0].previousRuns, 41);
});

test('a stream whose earlier runs cannot be counted is not started from 0: the trigger fails saying why', async () => {
  const { client, started } = fakeClient(down);
  const config = mockConfig({ stream: 's1', address: '127.0.0.1:1', queue: 'q' });
  await assert.rejects(triggerStream(client, config, 's1', { trigger: { source: 'test' } }), (err: Error) => {
    assert.match(err.message, /^Cannot count the earlier runs of stream s1 \(visibility store unavailable\)/);
    assert.match(err.message, /number its runs from 1 again/);
    return true;
  });
  assert.deepEqual(started, [], 'nothing was started');
});

test('a running stream is triggered even when the count fails (it keeps its own run numbers)', async () => {
  const { client } = fakeClient(down, 'RUNNING');
  assert.equal(await previousRunsOf(client, 's1'), 0);
});

test('a stream that ended is not started again from 0 when the count fails', async () => {
  const { client } = fakeClient(down, 'TERMINATED');
  await assert.rejects(previousRunsOf(client, 's1'), /Cannot count the earlier runs of stream s1/);
});
