/**
 * Branch, PR and replay modes through the CLI, checked in the registry's own log and tags:
 * a branch build fails closed on a stale cache and writes nothing; with a covering cache it
 * publishes only branch tags (and the branch image's signature); a PR build writes nothing user-facing; an exported lock replays to
 * the same inputs hash; a bad lock is refused before anything starts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import type { Client } from '@temporalio/client';
import {
  bringUpWorld,
  worldSpec,
  startWorker,
  client,
  tagsOf,
  registryRequests,
  registryLogMark,
  recipeSideCommit,
  writes,
  closeAll,
  repoRoot,
  type TestWorld,
} from '../support/harness.ts';
import { ExitCode } from '../../client/exit-codes.ts';
import { branchTag } from '../../core/tags.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const K2 = '6.18.5-200.fc43.x86_64';
const CLI = join(repoRoot, 'bin', 'kinoite-zfs.js');
/** A commit of the world's recipe repository unique to this test run (branch and PR runs build their commit). */
const sha = async () => (await recipeSideCommit(world, world.dir)).sha;

let world: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> };

function cli(args: string[]) {
  return execa(process.execPath, [CLI, ...args, '--config', world.configFile], {
    cwd: repoRoot,
    reject: false,
    stdin: 'ignore',
    timeout: 600_000,
    env: { GITHUB_ACTIONS: '' },
  });
}

async function allTags(): Promise<Record<string, string[]>> {
  const s = world.info.stream;
  const out: Record<string, string[]> = {};
  for (const repo of [s.candidate, s.stable, s.akmodsCandidate, s.akmodsStable])
    out[repo] = (await tagsOf(repo)).sort();
  return out;
}

async function runCount(): Promise<number> {
  return (await c.workflow.count(`WorkflowType = 'pipelineRunWorkflow' AND KzStream = '${world.stream}'`)).count;
}

before(async () => {
  world = await bringUpWorld('modes', worldSpec({ versions: [[K1]] }), { fresh: true });
  c = await client(world);
  worker = await startWorker(world);
  const main = await cli(['run', '--wait', '--json']);
  assert.equal(main.exitCode, 0, main.stderr);
});

after(async () => {
  await closeAll({ worker, client: c, world, endStream: true });
});

test('a branch build whose shared akmods cache misses a kernel fails closed with guidance and writes nothing to the registry', async () => {
  world = await bringUpWorld('modes', worldSpec({ versions: [[K1], [K1, K2]] }));
  const mark = await registryLogMark(world);
  const r = await cli([
    'run',
    '--mode',
    'branch',
    '--branch',
    'Feature/New Kernel!',
    '--commit',
    await sha(),
    '--wait',
    '--json',
  ]);
  assert.equal(r.exitCode, ExitCode.RunFailed, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.match(
    s.message,
    new RegExp(
      `Shared akmods source tag .*main-43 is missing or stale for kernels ${K2.replace(/\./g, '\\.')}\\. Run a main build`,
    ),
  );
  assert.deepEqual(writes(await registryRequests(world, mark)), [], 'nothing was written to the registry');
});

test('a branch build with a covering cache publishes only its branch tags', async () => {
  const main = await cli(['run', '--wait', '--json']);
  assert.equal(main.exitCode, 0, main.stderr);
  const before = await allTags();
  const r = await cli([
    'run',
    '--mode',
    'branch',
    '--branch',
    'Feature/New Kernel!',
    '--commit',
    await sha(),
    '--wait',
    '--json',
  ]);
  assert.equal(r.exitCode, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.outcome, 'candidate-only');
  assert.match(s.message, /branch build/);
  const after = await allTags();
  const added = Object.entries(after).flatMap(([repo, tags]) =>
    tags.filter((t) => !before[repo]!.includes(t)).map((t) => `${repo.split('/').pop()}:${t}`),
  );
  assert.deepEqual(
    added.sort(),
    [
      `${world.stream}-bluebuild-akmods-candidate:${branchTag({ branch: 'Feature/New Kernel!', fedora: '43' })}`,
      `${world.stream}-candidate:${branchTag({ branch: 'Feature/New Kernel!', fedora: '43' })}`,
      // The branch image's cosign signature.
      `${world.stream}-candidate:${s.candidate.digest.replace(':', '-')}.sig`,
    ].sort(),
  );
  assert.deepEqual(
    after[world.info.stream.stable],
    before[world.info.stream.stable],
    'no stable tag moved or appeared',
  );
});

test('the same branch build started twice attaches to one run', async () => {
  const commit = await sha();
  const a = JSON.parse(
    (await cli(['run', '--mode', 'branch', '--branch', 'feature/x', '--commit', commit, '--wait', '--json'])).stdout,
  );
  const b = JSON.parse(
    (await cli(['run', '--mode', 'branch', '--branch', 'feature/x', '--commit', commit, '--wait', '--json'])).stdout,
  );
  assert.equal(a.workflowId, b.workflowId);
  assert.equal(a.runId, b.runId);
});

test('a PR build is smoke-tested but writes nothing to user-facing repositories and signs nothing', async () => {
  const s = world.info.stream;
  const mark = await registryLogMark(world);
  const r = await cli(['run', '--mode', 'pr', '--pr', '42', '--commit', await sha(), '--wait', '--json']);
  assert.equal(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.match(out.message, /PR validation: .*not published to any user-facing repository, not signed/);
  const written = writes(await registryRequests(world, mark)).map((w) => w.uri);
  const repoPath = (repo: string) => `/v2/${repo.split('/').slice(1).join('/')}/`;
  assert.deepEqual(
    written.filter(
      (u) =>
        u.startsWith(repoPath(s.stable)) ||
        u.startsWith(repoPath(s.akmodsStable)) ||
        u.startsWith(repoPath(s.akmodsCandidate)),
    ),
    [],
    'nothing user-facing or shared was written',
  );
  assert.ok(!written.some((u) => /\.sig|\.att/.test(u)), 'nothing was signed');
  assert.ok(
    written.some((u) => u.includes('/manifests/pr-42-43')),
    'the PR candidate went to the candidate repository',
  );
});

test('an exported lock replays to the same inputs hash and does not promote unless asked', async () => {
  const state = JSON.parse((await cli(['status', '--json'])).stdout);
  const last = state.state.lastGood.runWorkflowId;
  const lockFile = join(world.dir, 'inputs.lock.json');
  const exp = await cli(['lock', 'export', '--run', last, '--out', lockFile]);
  assert.equal(exp.exitCode, 0, exp.stderr);
  const lock = JSON.parse(await (await import('node:fs/promises')).readFile(lockFile, 'utf8'));
  assert.equal(
    lock.base_image,
    `${world.info.registry.host}/${world.info.base.repository}@${lock.base_image.split('@')[1]}`,
  );
  const r = await cli(['run', '--lock', lockFile, '--wait', '--json']);
  assert.equal(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.inputsHash, lock.inputs_hash, 'the replay resolved to the same inputs');
  assert.notEqual(out.outcome, 'promoted');
});

test('a lock with REPLACE_ME, a digest the registry does not hold, or an unknown field is refused and starts nothing', async () => {
  const base = `${world.info.registry.host}/${world.info.base.repository}`;
  const cases: [object, RegExp][] = [
    [{ base_image: `${base}@sha256:REPLACE_ME` }, /Lock file base_image still contains placeholder value/],
    [{ base_image: `${base}@sha256:${'0'.repeat(64)}` }, /is not in the registry/],
    [{ base_image: `${base}@sha256:${'0'.repeat(64)}`, surprise: true }, /unknown field\(s\) "surprise"/],
    [{ build_container: 'x' }, /Lock file missing required field: base_image/],
  ];
  for (const [lock, message] of cases) {
    const file = join(world.dir, 'bad.lock.json');
    await writeFile(file, JSON.stringify(lock));
    const before = await runCount();
    const r = await cli(['run', '--lock', file, '--wait']);
    assert.equal(r.exitCode, ExitCode.ConfigError, `${JSON.stringify(lock)}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(await runCount(), before, 'no run was started');
  }
});
