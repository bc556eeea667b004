/**
 * The kernel/OpenZFS timing story on real data, through the stream: a base with a 6.1 kernel and
 * zfs-2.2.6 is built, booted and promoted; the base gains a 6.12 kernel, which zfs-2.2.6 does not
 * support (Linux-Maximum 6.10): the run is blocked, nothing is built, stable stays and the stream
 * is held by compatibility, re-checking the release source on its timer; the release source gains
 * zfs-2.2.7 (Linux-Maximum 6.12): the stream starts a run by itself, which builds, boots both kernels
 * and promotes, and the hold ends. Checked through the registry, podman and the stream's state.
 *
 * Builds zfs-2.2.6 for the 6.1 kernel (minutes; the compiler cache of the real-openzfs test helps);
 * the zfs-2.2.7 builds are the real-openzfs test's, reused from the host build cache.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Client } from '@temporalio/client';
import { bringUpWorld, startWorker, client, digestOf, registryLogMark, registryRequests, writes, repoRoot, tearDownWorld, type TestWorld } from '../support/harness.ts';
import { triggerStream, streamState, waitForRun } from '../../client/stream-client.ts';
import { newestDebianRelease } from '../../world/debian-kernels.ts';
import { openzfsDir } from '../../world/openzfs-releases.ts';
import { containerEnv } from '../../world/tools.ts';
import { holdText } from '../../core/compat-hold.ts';
import type { StreamStateData } from '../../workflows/stream-state.ts';
import type { PipelineResult } from '../../core/pipeline.ts';

const OPENZFS = openzfsDir(undefined, repoRoot);
const skip = ['zfs-2.2.6', 'zfs-2.2.7'].every((t) => existsSync(join(OPENZFS, `${t}.tar.gz`))) ? false : `no real OpenZFS tarballs in ${OPENZFS} (set KINOITE_ZFS_OPENZFS_DIR)`;

let world: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> };
let K61: string;
let K612: string;
let promotedFirst: string;

const spec = (versions: string[][], tags: string[]) => ({
  base: { repository: 'ublue-os/kinoite-main', versions: versions.map((ks, i) => ({ version: `43.2026120${i + 1}.0`, kernels: ks.map((release) => ({ kind: 'debian', release })) })) },
  builder: { repository: 'ublue-os/devcontainer' },
  zfs: { releases: tags.map((tag) => ({ source: 'openzfs', tag })) },
  stream: { zfsLine: '2.2', owner: 'kinoite', promotion: 'auto', recheckEvery: '3s' },
});

async function runThroughStream(): Promise<PipelineResult> {
  const requestId = randomUUID();
  await triggerStream(c, world.config, world.stream, { trigger: { source: 'test', requestId } });
  const runId = await waitForRun(c, world.stream, requestId);
  return (await c.workflow.getHandle(runId).result()) as PipelineResult;
}

async function waitState(what: string, check: (s: StreamStateData) => boolean, timeoutMs = 60 * 60_000): Promise<StreamStateData> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await streamState(c, world.stream);
    if (s && check(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s?.notes.slice(-3))}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

before(async () => {
  if (skip) return;
  [K61, K612] = [await newestDebianRelease('6.1'), await newestDebianRelease('6.12')];
  world = await bringUpWorld('timing-story', spec([[K61]], ['zfs-2.2.6']), { fresh: true });
  c = await client(world);
  worker = await startWorker(world.config);
});

after(async () => {
  await worker?.stop();
  await c?.connection.close();
  await tearDownWorld(world);
});

test('1. a base with a 6.1 kernel and zfs-2.2.6 is built, booted and promoted', { skip }, async () => {
  const r = await runThroughStream();
  assert.equal(r.outcome, 'promoted', r.message);
  assert.equal(r.inputs?.zfs.version, '2.2.6');
  assert.deepEqual(r.boot?.kernels.map((b) => [b.kernel, b.poolRoundTrip, b.moduleVersion]), [[K61, true, '2.2.6-1']]);
  promotedFirst = r.candidate!.digest;
  assert.equal(await digestOf(`${world.info.stream.stable}:latest`), promotedFirst);
});

test('2. the base gains a 6.12 kernel: zfs-2.2.6 stops at 6.10, the run is blocked, nothing is built, stable stays, the stream is held and re-checks', { skip }, async () => {
  world = await bringUpWorld('timing-story', spec([[K61], [K61, K612]], ['zfs-2.2.6']));
  const mark = await registryLogMark(world);
  const r = await runThroughStream();
  assert.equal(r.outcome, 'blocked', r.message);
  assert.ok(r.message.includes(K612) && r.message.includes('6.10'), r.message);
  assert.deepEqual(writes(await registryRequests(world, mark)), [], 'a blocked run writes nothing to the registry: nothing was built');
  assert.equal(await digestOf(`${world.info.stream.stable}:latest`), promotedFirst, 'stable holds the 6.1-only image');
  const s = await waitState('a re-check while held', (st) => !!st.compatHold?.lastCheck);
  assert.equal(s.compatHold!.kernel, K612);
  assert.match(holdText(s.compatHold!), /^held by compatibility since \S+, waiting for an OpenZFS release supporting 6\.12 .*last re-check \S+: zfs-2\.2\.6 blocked$/);
  assert.ok(!s.current && !s.next, 'no run was started by the re-check while nothing supports 6.12');
  const status = await execa('node', ['bin/kinoite-zfs.js', 'status', '--config', world.configFile, '--stream', world.stream], { cwd: repoRoot, reject: false, all: true });
  assert.match(String(status.all), /HELD BY COMPATIBILITY: held by compatibility since .*waiting for an OpenZFS release supporting 6\.12/);
});

test('3. the release source gains zfs-2.2.7: the stream starts a run by itself, builds, boots both kernels, promotes, and the hold ends', { skip }, async () => {
  world = await bringUpWorld('timing-story', spec([[K61], [K61, K612]], ['zfs-2.2.6', 'zfs-2.2.7']));
  const started = await waitState('a run started by the re-check', (st) => st.triggers.some((t) => t.source === 'recheck' && !!t.runWorkflowId), 5 * 60_000);
  const runId = started.triggers.find((t) => t.source === 'recheck')!.runWorkflowId!;
  const r = (await c.workflow.getHandle(runId).result()) as PipelineResult;
  assert.equal(r.outcome, 'promoted', r.message);
  assert.equal(r.inputs?.zfs.version, '2.2.7');
  assert.deepEqual(r.boot?.kernels.map((b) => [b.kernel, b.poolRoundTrip, b.moduleVersion]), [[K61, true, '2.2.7-1'], [K612, true, '2.2.7-1']]);
  const stable = `${world.info.stream.stable}@${r.candidate!.digest}`;
  assert.equal(await digestOf(`${world.info.stream.stable}:latest`), r.candidate!.digest);
  for (const k of [K61, K612]) {
    const out = await execa('podman', ['run', '--rm', '--pull=always', '--tls-verify=false', '--network=none', stable, 'modinfo', '-F', 'vermagic', `/usr/lib/modules/${k}/extra/zfs/zfs.ko`], { env: containerEnv(world.info.containersConf) });
    assert.equal(out.stdout.split(' ')[0], k);
  }
  const s = await waitState('the hold to end', (st) => !st.compatHold, 60_000);
  assert.ok(s.kernelLag?.find((l) => l.kernel === K612)?.firstPromoted, 'the 6.12 kernel has a first promotion (its lag is known)');
  assert.ok(s.notes.some((n) => /compatibility hold ended/.test(n.text)), JSON.stringify(s.notes.slice(-5)));
});
