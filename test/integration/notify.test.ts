/**
 * Stream notifications against real HTTP receivers on loopback, on a synthetic world (fast): a
 * promotion announced to a receiver that is down at first (delivered later, signed), a
 * compatibility hold that begins (blocked) and ends by itself after a re-check (unblocked and
 * promoted), and a receiver that refuses with 403 (reported in the stream's state, not retried).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { execa } from 'execa';
import { bringUpWorld, startWorker, client, digestOf, repoRoot, closeAll, type TestWorld } from '../support/harness.ts';
import { triggerStream, streamState, waitForRun } from '../../client/stream-client.ts';
import type { StreamStateData } from '../../workflows/stream-state.ts';
import type { PipelineResult } from '../../core/pipeline.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const K2 = '6.18.5-200.fc43.x86_64';
const SECRET = `kz-test-${randomUUID()}`;

interface Received {
  event: string;
  body: Record<string, unknown>;
  signatureOk: boolean;
}

let world: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> };
let receiverPort: number;
let receiver: Server | undefined;
let refuser: Server;
const received: Received[] = [];
let refused = 0;

/** A free loopback port (listen, note, close): the receiver starts there later. */
async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function startReceiver(): Promise<void> {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString();
      const expected = `sha256=${createHmac('sha256', SECRET).update(raw).digest('hex')}`;
      received.push({
        event: String(req.headers['x-kinoite-zfs-event']),
        body: JSON.parse(raw),
        signatureOk: req.headers['x-kinoite-zfs-signature'] === expected,
      });
      res.writeHead(204).end();
    });
  }).listen(receiverPort, '127.0.0.1');
  return new Promise((r) => receiver!.once('listening', r));
}

const spec = (versions: string[][], releases: { version: string; linuxMax: string }[], lastLabel?: string) => ({
  base: {
    repository: 'ublue-os/kinoite-main',
    versions: versions.map((kernels, i) => ({
      version: `43.202611${String(i + 1).padStart(2, '0')}.0`,
      kernels,
      ...(lastLabel && i === versions.length - 1 ? { ostreeLinux: lastLabel } : {}),
    })),
  },
  builder: { repository: 'ublue-os/devcontainer' },
  zfs: { releases: releases.map((r) => ({ ...r, linuxMin: '4.18' })) },
  stream: {
    zfsLine: '2.4',
    owner: 'kinoite',
    promotion: 'auto',
    recheckEvery: '2s',
    notify: [
      { url: `http://127.0.0.1:${receiverPort}/hooks/kz`, secretEnv: 'KZ_TEST_WEBHOOK_SECRET' },
      { url: `http://127.0.0.1:${(refuser.address() as AddressInfo).port}/nope`, events: ['promoted'] },
    ],
  },
});

async function waitFor<T>(
  what: string,
  get: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 600_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const state = () => streamState(c, world.stream) as Promise<StreamStateData>;

before(async () => {
  process.env.KZ_TEST_WEBHOOK_SECRET = SECRET;
  receiverPort = await freePort();
  refuser = createServer((_req, res) => {
    refused += 1;
    res.writeHead(403).end('no');
  }).listen(0, '127.0.0.1');
  await new Promise((r) => refuser.once('listening', r));
  world = await bringUpWorld('notify', spec([[K1]], [{ version: '2.4.3', linuxMax: '6.17' }]), { fresh: true });
  c = await client(world);
  worker = await startWorker(world);
});

after(async () => {
  await closeAll({ worker, client: c, world });
  receiver?.close();
  refuser?.close();
});

test('a promotion is announced, signed, to a receiver that was down when it happened', async () => {
  const requestId = randomUUID();
  await triggerStream(c, world.config, world.stream, { trigger: { source: 'test', requestId } });
  const r = (await c.workflow.getHandle(await waitForRun(c, world.stream, requestId)).result()) as PipelineResult;
  assert.equal(r.outcome, 'promoted', r.message);
  await new Promise((res) => setTimeout(res, 3000)); // the receiver is down: deliveries are being retried
  assert.equal(received.length, 0);
  await startReceiver();
  const got = await waitFor('the promoted event', () => received.find((x) => x.event === 'promoted'), 600_000);
  assert.equal(got.signatureOk, true, 'X-Kinoite-ZFS-Signature is the HMAC of the body under the secret');
  assert.equal(got.body.schema, 'kinoite-zfs/v1');
  assert.equal(got.body.stream, world.stream);
  assert.equal(got.body.digest, r.candidate!.digest);
  assert.deepEqual(got.body.kernels, [K1]);
});

test('a kernel newer than the release supports: the run is blocked, the hold begins and is announced; stable stays', async () => {
  const stable = await digestOf(`${world.info.stream.stable}:latest`);
  world = await bringUpWorld('notify', spec([[K1], [K1, K2]], [{ version: '2.4.3', linuxMax: '6.17' }]));
  const requestId = randomUUID();
  await triggerStream(c, world.config, world.stream, { trigger: { source: 'test', requestId } });
  const r = (await c.workflow.getHandle(await waitForRun(c, world.stream, requestId)).result()) as PipelineResult;
  assert.equal(r.outcome, 'blocked', r.message);
  const got = await waitFor('the blocked event', () => received.find((x) => x.event === 'blocked'));
  assert.match(
    String(got.body.message),
    new RegExp(
      `waiting for an OpenZFS release supporting 6\\.18 \\(kernel ${K2.replaceAll('.', '\\.')}; zfs-2\\.4\\.3 supports up to 6\\.17\\)`,
    ),
  );
  assert.equal(await digestOf(`${world.info.stream.stable}:latest`), stable);
  const s = await waitFor('a re-check', async () => ((await state()).compatHold?.lastCheck ? state() : undefined));
  assert.equal(s.compatHold?.kernel, K2);
});

test('a release that supports the kernel appears: the stream runs by itself, promotes, and announces unblocked and promoted', async () => {
  world = await bringUpWorld(
    'notify',
    spec(
      [[K1], [K1, K2]],
      [
        { version: '2.4.3', linuxMax: '6.17' },
        { version: '2.4.4', linuxMax: '7.2' },
      ],
    ),
  );
  const s = await waitFor('a run started by the re-check', async () => {
    const st = await state();
    return st.triggers.some((t) => t.source === 'recheck' && t.runWorkflowId) ? st : undefined;
  });
  const r = (await c.workflow
    .getHandle(s.triggers.find((t) => t.source === 'recheck')!.runWorkflowId!)
    .result()) as PipelineResult;
  assert.equal(r.outcome, 'promoted', r.message);
  assert.equal(r.inputs?.zfs.version, '2.4.4');
  await waitFor('the unblocked event', () => received.find((x) => x.event === 'unblocked'));
  await waitFor(
    'the second promoted event',
    () => received.filter((x) => x.event === 'promoted').length === 2 || undefined,
  );
  assert.equal((await state()).compatHold, undefined);
});

test('a receiver that answers 403 is asked once per event and the failures show in the stream state', async () => {
  const s = await waitFor('two failed deliveries', async () => {
    const st = await state();
    return (st.notifications?.failed ?? 0) >= 2 ? st : undefined;
  });
  assert.equal(refused, 2, 'one request per promoted event: a 4xx is not retried');
  assert.match(s.notifications!.lastFailure!.error, /refused the promoted notification with HTTP 403/);
  assert.ok(!s.notifications!.lastFailure!.error.includes('/nope'), 'the webhook path is not repeated in messages');
  assert.ok(s.notifications!.sent >= 4);
});

test("status shows the last run's warnings: a base whose ostree.linux label disagrees with its newest module folder", async () => {
  world = await bringUpWorld(
    'notify',
    spec(
      [[K1], [K1, K2], [K1, K2]],
      [
        { version: '2.4.3', linuxMax: '6.17' },
        { version: '2.4.4', linuxMax: '7.2' },
      ],
      K1,
    ),
  );
  const requestId = randomUUID();
  await triggerStream(c, world.config, world.stream, { trigger: { source: 'test', requestId } });
  const runId = await waitForRun(c, world.stream, requestId);
  const r = (await c.workflow.getHandle(runId).result()) as PipelineResult;
  assert.equal(r.outcome, 'promoted', r.message);
  const s = await waitFor('the run end in the stream', async () => {
    const st = await state();
    return st.lastWarnings?.run === runId ? st : undefined;
  });
  assert.deepEqual(s.lastWarnings?.warnings, [
    `Base image label/kernel directory mismatch: label=${K1} newest_dir=${K2}`,
  ]);
  const status = await execa(
    'node',
    ['bin/kinoite-zfs.js', 'status', '--config', world.configFile, '--stream', world.stream],
    { cwd: repoRoot, reject: false, all: true },
  );
  assert.ok(
    String(status.all).includes(
      `WARNING  ${s.lastWarnings!.run}: Base image label/kernel directory mismatch: label=${K1} newest_dir=${K2}`,
    ),
    String(status.all),
  );
});
