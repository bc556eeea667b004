/**
 * The kernel/OpenZFS timing story on real data, through the stream: a base with a 6.1 kernel and
 * zfs-2.2.6 is built, booted and promoted; the base gains a 6.12 kernel, which zfs-2.2.6 does not
 * support (Linux-Maximum 6.10): the run is blocked, nothing is built, stable stays and the stream
 * is held by compatibility, re-checking the release source on its timer; the release source gains
 * zfs-2.2.7 (Linux-Maximum 6.12): the stream starts a run by itself, which builds, boots both kernels
 * and promotes, and the hold ends. Checked through the registry, podman and the stream's state.
 *
 * Lane: real builds (scripts/run-tests.sh runs this file beside the other tests, at a lower CPU priority).
 * Opt-in: KZ_STORY=1. Its own zfs-2.2.6 build (kernel modules and userland, about 12 minutes of both
 * cores on a machine that never built it) would put CI past 90 minutes on such a machine; run it
 * with `KZ_STORY=1 ./scripts/test.sh` or alone (`node --import tsx --test test/integration/timing-story.test.ts`).
 *
 * Builds zfs-2.2.6 for the 6.1 kernel (minutes; the compiler cache of the real-openzfs test helps);
 * the zfs-2.2.7 builds are the real-openzfs test's, reused from the host build cache.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Client } from '@temporalio/client';
import {
  bringUpWorld,
  startWorker,
  client,
  digestOf,
  registryLogMark,
  registryRequests,
  writes,
  repoRoot,
  closeAll,
  waitStreamState,
  type TestWorld,
} from '../support/harness.ts';
import { triggerStream, waitForRun } from '../../client/stream-client.ts';
import { newestDebianRelease } from '../../world/debian-kernels.ts';
import { openzfsDir } from '../../world/openzfs-releases.ts';
import { containerEnv } from '../../world/tools.ts';
import { holdText } from '../../core/compat-hold.ts';
import type { StreamStateData } from '../../workflows/stream-state.ts';
import type { PipelineResult } from '../../core/pipeline.ts';

const OPENZFS = openzfsDir(undefined, repoRoot);
const skip = ['zfs-2.2.6', 'zfs-2.2.7'].every((t) => existsSync(join(OPENZFS, `${t}.tar.gz`)))
  ? false
  : `no real OpenZFS tarballs in ${OPENZFS} (set KINOITE_ZFS_OPENZFS_DIR)`;

let world: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> };
let K61: string;
let K612: string;
let promotedFirst: string;
let akmods226: string;
const events: { event: string; body: Record<string, unknown> }[] = [];
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (d: Buffer) => chunks.push(d));
  req.on('end', () => {
    events.push({
      event: String(req.headers['x-kinoite-zfs-event']),
      body: JSON.parse(Buffer.concat(chunks).toString()),
    });
    res.writeHead(204).end();
  });
});

const spec = (versions: string[][], tags: string[], append?: Record<string, string>) => ({
  base: {
    repository: 'ublue-os/kinoite-main',
    versions: versions.map((ks, i) => ({
      version: `43.2026120${i + 1}.0`,
      kernels: ks.map((release) => ({ kind: 'debian', release })),
    })),
  },
  builder: { repository: 'ublue-os/devcontainer' },
  zfs: { releases: tags.map((tag) => ({ source: 'openzfs', tag })) },
  stream: {
    zfsLine: '2.2',
    owner: 'kinoite',
    promotion: 'auto',
    recheckEvery: '3s',
    notify: [{ url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/kz` }],
  },
  ...(append ? { recipe: { append } } : {}),
});

async function runThroughStream(): Promise<PipelineResult> {
  const requestId = randomUUID();
  await triggerStream(c, world.config, world.stream, { trigger: { source: 'test', requestId } });
  const runId = await waitForRun(c, world.stream, requestId);
  return (await c.workflow.getHandle(runId).result()) as PipelineResult;
}

const waitState = (what: string, check: (s: StreamStateData) => boolean, timeoutMs = 60 * 60_000) =>
  waitStreamState(c, world.stream, what, check, timeoutMs);

before(async () => {
  if (skip) return;
  receiver.listen(0, '127.0.0.1');
  await new Promise((r) => receiver.once('listening', r));
  [K61, K612] = [await newestDebianRelease('6.1'), await newestDebianRelease('6.12')];
  world = await bringUpWorld('timing-story', spec([[K61]], ['zfs-2.2.6']), { fresh: true });
  c = await client(world);
  worker = await startWorker(world);
});

after(async () => {
  await closeAll({ worker, client: c, world });
  receiver.close();
});

test('1. a base with a 6.1 kernel and zfs-2.2.6 is built, booted and promoted', { skip }, async () => {
  const r = await runThroughStream();
  assert.equal(r.outcome, 'promoted', r.message);
  assert.equal(r.inputs?.zfs.version, '2.2.6');
  assert.deepEqual(
    r.boot?.kernels.map((b) => [b.kernel, b.poolRoundTrip, b.moduleVersion]),
    [[K61, true, '2.2.6-1']],
  );
  promotedFirst = r.candidate!.digest;
  akmods226 = `${r.akmods!.repo}@${r.akmods!.digest}`;
  assert.equal(await digestOf(`${world.info.stream.stable}:latest`), promotedFirst);
});

test(
  '2. the base gains a 6.12 kernel: zfs-2.2.6 stops at 6.10, the run is blocked, nothing is built, stable stays, the stream is held and re-checks',
  { skip },
  async () => {
    world = await bringUpWorld('timing-story', spec([[K61], [K61, K612]], ['zfs-2.2.6']));
    const mark = await registryLogMark(world);
    const r = await runThroughStream();
    assert.equal(r.outcome, 'blocked', r.message);
    assert.ok(r.message.includes(K612) && r.message.includes('6.10'), r.message);
    assert.deepEqual(
      writes(await registryRequests(world, mark)),
      [],
      'a blocked run writes nothing to the registry: nothing was built',
    );
    assert.equal(
      await digestOf(`${world.info.stream.stable}:latest`),
      promotedFirst,
      'stable holds the 6.1-only image',
    );
    const s = await waitState('a re-check while held', (st) => !!st.compatHold?.lastCheck);
    assert.equal(s.compatHold!.kernel, K612);
    assert.match(
      holdText(s.compatHold!),
      /^held by compatibility since \S+, waiting for an OpenZFS release supporting 6\.12 .*last re-check \S+: zfs-2\.2\.6 blocked$/,
    );
    assert.ok(!s.current && !s.next, 'no run was started by the re-check while nothing supports 6.12');
    const blocked = await waitEvent('blocked');
    assert.match(String(blocked.body.message), /waiting for an OpenZFS release supporting 6\.12/);
    const status = await execa(
      'node',
      ['bin/kinoite-zfs.js', 'status', '--config', world.configFile, '--stream', world.stream],
      { cwd: repoRoot, reject: false, all: true },
    );
    assert.match(
      String(status.all),
      /HELD BY COMPATIBILITY: held by compatibility since .*waiting for an OpenZFS release supporting 6\.12/,
    );
  },
);

test(
  '3. the release source gains zfs-2.2.7: the stream starts a run by itself, builds, boots both kernels, promotes, and the hold ends',
  { skip },
  async () => {
    world = await bringUpWorld('timing-story', spec([[K61], [K61, K612]], ['zfs-2.2.6', 'zfs-2.2.7']));
    const started = await waitState(
      'a run started by the re-check',
      (st) => st.triggers.some((t) => t.source === 'recheck' && !!t.runWorkflowId),
      5 * 60_000,
    );
    const runId = started.triggers.find((t) => t.source === 'recheck')!.runWorkflowId!;
    const r = (await c.workflow.getHandle(runId).result()) as PipelineResult;
    assert.equal(r.outcome, 'promoted', r.message);
    assert.equal(r.inputs?.zfs.version, '2.2.7');
    assert.deepEqual(
      r.boot?.kernels.map((b) => [b.kernel, b.poolRoundTrip, b.moduleVersion]),
      [
        [K61, true, '2.2.7-1'],
        [K612, true, '2.2.7-1'],
      ],
    );
    const stable = `${world.info.stream.stable}@${r.candidate!.digest}`;
    assert.equal(await digestOf(`${world.info.stream.stable}:latest`), r.candidate!.digest);
    for (const k of [K61, K612]) {
      const out = await execa(
        'podman',
        [
          'run',
          '--rm',
          '--pull=always',
          '--tls-verify=false',
          '--network=none',
          stable,
          'modinfo',
          '-F',
          'vermagic',
          `/usr/lib/modules/${k}/extra/zfs/zfs.ko`,
        ],
        { env: containerEnv(world.info.containersConf) },
      );
      assert.equal(out.stdout.split(' ')[0], k);
    }
    const s = await waitState('the hold to end', (st) => !st.compatHold, 60_000);
    assert.ok(
      s.kernelLag?.find((l) => l.kernel === K612)?.firstPromoted,
      'the 6.12 kernel has a first promotion (its lag is known)',
    );
    assert.ok(
      s.notes.some((n) => /compatibility hold ended/.test(n.text)),
      JSON.stringify(s.notes.slice(-5)),
    );
    assert.equal((await waitEvent('unblocked')).body.run, runId);
    assert.deepEqual(
      events.filter((e) => e.event === 'promoted').map((e) => e.body.zfsVersion),
      ['2.2.6', '2.2.7'],
      'the loopback receiver got both promotions',
    );
  },
);

test(
  '4. userland and module versions that differ (zfs-2.2.6 tools over zfs-2.2.7 modules) fail the boot stage naming each kernel; stable does not move',
  { skip },
  async () => {
    const before = await digestOf(`${world.info.stream.stable}:latest`);
    // The recipe downgrades the userland to the 2.2.6 RPMs of step 1's akmods image, keeping the 2.2.7 modules.
    const append = {
      'os/Containerfile': `\nCOPY --from=${akmods226} /rpms/kmods/zfs/ /tmp/kz-old/\nRUN rpm -Uvh --force --nodeps --oldpackage $(ls /tmp/kz-old/*.rpm | grep -v /kmod-zfs-) && rm -rf /tmp/kz-old\n`,
    };
    world = await bringUpWorld('timing-story', spec([[K61], [K61, K612]], ['zfs-2.2.6', 'zfs-2.2.7'], append));
    const requestId = randomUUID();
    await triggerStream(c, world.config, world.stream, { trigger: { source: 'test', requestId } });
    const runId = await waitForRun(c, world.stream, requestId);
    const err = await c.workflow
      .getHandle(runId)
      .result()
      .then(
        () => undefined,
        (e: Error) => e,
      );
    assert.ok(err, 'the run fails');
    const message = String((err.cause as Error | undefined)?.message ?? err.message);
    for (const k of [K61, K612])
      assert.ok(
        message.includes(`kernel ${k}: versions differ: userland zfs-2.2.6-1, module zfs-kmod-2.2.7-1`),
        message,
      );
    assert.match(message, /^boot failed:/);
    assert.equal(await digestOf(`${world.info.stream.stable}:latest`), before);
    assert.equal((await waitEvent('failed')).body.run, runId);
  },
);

async function waitEvent(event: string) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const e = events.find((x) => x.event === event);
    if (e) return e;
    if (Date.now() > deadline)
      throw new Error(`no ${event} notification (got ${events.map((x) => x.event).join(', ')})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
