/**
 * Every HTTP request has a timeout with a clear, retryable error; activities heartbeat from real
 * progress (bytes read count, a hung call stops heartbeating); a tool failing in an unrecognised
 * way is retried only a few times. A small in-process HTTP server
 * plays a registry that never answers, one that stops half-way through a body, and a slow but
 * steady one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { MockActivityEnvironment } from '@temporalio/testing';
import { fetchWithTimeouts, HttpTimeoutError } from '../../activities/http.ts';
import { RegistryClient } from '../../activities/registry-http.ts';
import { heartbeatDue, noteProgress, ProgressTracker, withProgress } from '../../activities/progress.ts';
import { UNRECOGNISED_TOOL_ATTEMPTS, wrap } from '../../activities/index.ts';
import { runTool } from '../../activities/run-tool.ts';
import { FailureType, isPermanentError } from '../../core/errors.ts';
import { ApplicationFailure } from '@temporalio/common';

let server: Server;
let host: string;
const hanging: ServerResponse[] = [];

before(async () => {
  server = createServer((req, res) => {
    if (req.url?.startsWith('/never') || req.url?.startsWith('/v2/')) {
      hanging.push(res);
      return;
    }
    if (req.url === '/stall') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.write(Buffer.alloc(1000));
      hanging.push(res);
      return;
    }
    if (req.url === '/steady') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      let n = 0;
      const t = setInterval(() => {
        res.write(Buffer.alloc(100));
        if (++n === 8) {
          clearInterval(t);
          res.end();
        }
      }, 50);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  host = `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

after(async () => {
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

test('a server that never answers fails the request after answerMs, naming the host and what it was for', async () => {
  await assert.rejects(
    fetchWithTimeouts(`http://${host}/never`, {}, { what: 'read the release list', answerMs: 200 }),
    (err: Error) =>
      err instanceof HttpTimeoutError &&
      err.message === `${host} did not answer within 0.2s while trying to read the release list (retrying)`,
  );
});

test('a body that stops coming fails the read after idleMs; a slow but steady one is read whole', async () => {
  const stalled = await fetchWithTimeouts(`http://${host}/stall`, {}, { what: 'read blob x', idleMs: 200 });
  await assert.rejects(
    stalled.arrayBuffer(),
    (err: Error) =>
      err instanceof HttpTimeoutError && /stopped sending for 0\.2s while trying to read blob x/.test(err.message),
  );
  // Eight chunks 50 ms apart take longer than the idle window, but no pause is as long.
  const steady = await fetchWithTimeouts(`http://${host}/steady`, {}, { what: 'read blob y', idleMs: 200 });
  assert.equal((await steady.arrayBuffer()).byteLength, 800);
});

test('a registry that never answers gives a retryable timeout error, not a permanent one', async () => {
  const registry = new RegistryClient({ insecureHosts: [host], timeouts: { answerMs: 200 } });
  await assert.rejects(registry.getManifest(`${host}/o/base:latest`), (err: Error) => {
    assert.ok(!isPermanentError(err), 'retryable');
    assert.match(err.message, /did not answer within 0\.2s while trying to /);
    return true;
  });
});

test('body bytes are the running activity progress', async () => {
  const tracker = new ProgressTracker();
  await withProgress(tracker, async () => {
    const res = await fetchWithTimeouts(`http://${host}/steady`, {}, { what: 'read blob y' });
    await res.arrayBuffer();
  });
  assert.equal(tracker.progress.bytes, 800);
});

test('a heartbeat is due only while the activity moved within the stall window', () => {
  const t = new ProgressTracker(1_000);
  assert.deepEqual(heartbeatDue(t, 500, 1_400), { bytes: 0, lines: 0 });
  assert.equal(heartbeatDue(t, 500, 1_500), undefined, 'no progress for the whole window: hung');
  t.note({ bytes: 10, line: 'CC module/zfs/arc.o', step: 'build' }, 1_600);
  assert.deepEqual(heartbeatDue(t, 500, 2_000), { bytes: 10, lines: 1, step: 'build', last: 'CC module/zfs/arc.o' });
});

test('a wrapped activity heartbeats its progress while it moves and stops heartbeating once it hangs', async () => {
  const env = new MockActivityEnvironment();
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  let stalled!: () => void;
  const stallSeen = new Promise<void>((r) => (stalled = r));
  let release!: () => void;
  const hang = new Promise<void>((r) => (release = r));
  const activity = wrap(
    'hangs',
    async () => {
      noteProgress({ bytes: 42 });
      await hang;
      return 'done';
    },
    { everyMs: 20, stallAfterMs: 300 },
  );
  const logger = env.context.log as { warn: (m: string) => void };
  const warn = logger.warn.bind(logger);
  logger.warn = (m: string) => {
    if (/made no progress for 0\.3s/.test(m)) stalled();
    warn(m);
  };
  const result = env.run(activity, undefined);
  await stallSeen;
  const beatsAtStall = beats.length;
  assert.ok(beatsAtStall > 0, 'it heartbeat while it moved');
  assert.deepEqual(beats[0], { bytes: 42, lines: 0 });
  await new Promise((r) => setTimeout(r, 200)); // ten more ticks
  assert.equal(beats.length, beatsAtStall, 'no heartbeat after the stall');
  release();
  assert.equal(await result, 'done');
});

test('a tool failing in an unrecognised way is retried, but not past the sixth attempt; a network fault keeps its budget', async () => {
  const fails = (stderr: string) =>
    wrap('odd', () => runTool({ tool: 'sh', args: ['-c', `echo '${stderr}' >&2; exit 3`] }));
  const outcome = async (attempt: number, stderr: string) =>
    new MockActivityEnvironment({ attempt }).run(fails(stderr), undefined).then(
      () => assert.fail('the tool fails'),
      (err: Error) => err,
    );
  const early = await outcome(UNRECOGNISED_TOOL_ATTEMPTS - 1, 'something odd');
  assert.ok(!(early instanceof ApplicationFailure && early.nonRetryable), 'retried before the limit');
  const last = await outcome(UNRECOGNISED_TOOL_ATTEMPTS, 'something odd');
  assert.ok(last instanceof ApplicationFailure && last.nonRetryable);
  assert.equal(last.type, FailureType.ToolFailed);
  assert.match(last.message, /something odd[\s\S]*Failed the same unrecognised way 6 times; not retried further\.$/);
  const network = await outcome(
    UNRECOGNISED_TOOL_ATTEMPTS + 20,
    'dial tcp 127.0.0.1:5000: connect: connection refused',
  );
  assert.ok(!(network instanceof ApplicationFailure && network.nonRetryable), 'a network fault is retried on');
});

test('a tool that works silently (a build logging to a file) still counts as progress while it runs; one that is not marked so does not', async () => {
  const silent = (silentWhileWorking: boolean) => {
    const tracker = new ProgressTracker(Date.now());
    return withProgress(tracker, async () => {
      await runTool({ tool: 'sh', args: ['-c', 'sleep 1'], silentWhileWorking, aliveEveryMs: 100 });
      return tracker.moving(300);
    });
  };
  assert.equal(await silent(true), true, 'marked: alive until the end');
  assert.equal(await silent(false), false, 'unmarked: a second of silence is no progress');
});
