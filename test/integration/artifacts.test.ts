/**
 * The original's artifacts and lock format through the CLI, on a synthetic world: `run --wait
 * --artifacts DIR` writes build-inputs.json and build-provenance.json (promoted) with exactly the
 * fields of the reference §6, digests checked against the registry with skopeo; a failed and a
 * blocked run write build-inputs.json only; a lock exported in the original's format replays, from
 * a simulated GitHub dispatch with promote_to_stable=true, to the same base and builder digests
 * and kernels and promotes; a bad original lock is refused naming the field, starting nothing.
 *
 * Lane: side
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import type { Client } from '@temporalio/client';
import {
  bringUpWorld,
  worldSpec,
  startWorker,
  client,
  closeAll,
  digestOf,
  inspect,
  repoRoot,
  type TestWorld,
} from '../support/harness.ts';
import { ExitCode } from '../../client/exit-codes.ts';
import {
  INPUTS_61,
  INPUTS_62,
  IMAGE,
  LOCK_63,
  RUN,
  STABLE_PROMOTED,
  TOP,
  keys,
  sorted,
} from '../support/original-fields.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const K2 = '6.18.5-200.fc43.x86_64';
const CLI = join(repoRoot, 'bin', 'kinoite-zfs.js');
// zfs-2.4.4 supports up to 6.17: K2 blocks.
const ZFS = [{ version: '2.4.4', linuxMax: '6.17' }];

const DIGEST = /^sha256:[0-9a-f]{64}$/;

let world: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> };

/** A simulated GitHub Actions job's environment (push or dispatch of build.yml). */
/**
 * What a GitHub job's environment holds, with the event payload file GitHub writes for every job
 * (GITHUB_EVENT_PATH): it names the default branch, on which alone a workflow_dispatch may promote.
 */
const github = (runId: number, event = 'push'): NodeJS.ProcessEnv => ({
  GITHUB_ACTIONS: 'true',
  GITHUB_EVENT_PATH: eventFile(runId, { repository: { full_name: 'Octo/Kinoite-ZFS', default_branch: 'main' } }),
  GITHUB_REPOSITORY: 'Octo/Kinoite-ZFS',
  GITHUB_WORKFLOW: 'Build and promote main image',
  GITHUB_RUN_ID: String(runId),
  GITHUB_RUN_ATTEMPT: '1',
  GITHUB_RUN_NUMBER: String(runId % 1000),
  GITHUB_REF: 'refs/heads/main',
  GITHUB_REF_NAME: 'main',
  GITHUB_SHA: randomBytes(20).toString('hex'),
  GITHUB_ACTOR: 'octocat',
  GITHUB_EVENT_NAME: event,
});

/** Writes a job's event payload where the world keeps its files; returns the path. */
function eventFile(runId: number, payload: object): string {
  const file = join(world.dir, `github-event-${runId}.json`);
  writeFileSync(file, JSON.stringify(payload));
  return file;
}

function cli(args: string[], env: NodeJS.ProcessEnv = { GITHUB_ACTIONS: '' }) {
  return execa(process.execPath, [CLI, ...args, '--config', world.configFile], {
    cwd: repoRoot,
    reject: false,
    stdin: 'ignore',
    timeout: 600_000,
    env,
  });
}

async function runCount(): Promise<number> {
  return (await c.workflow.count(`WorkflowType = 'pipelineRunWorkflow' AND KzStream = '${world.stream}'`)).count;
}

/** `run --wait --json --artifacts DIR [extra]`: the summary, the exit code and the files written. */
async function runWithArtifacts(name: string, extra: string[] = [], env?: NodeJS.ProcessEnv) {
  const dir = join(world.dir, 'artifacts', name);
  const r = await cli(['run', '--wait', '--json', '--artifacts', dir, ...extra], env);
  const json = JSON.parse(r.stdout.trim() || '{}') as { outcome?: string; workflowId?: string };
  const files = sorted(await readdir(dir).catch(() => []));
  const read = async (f: string) => {
    const text = await readFile(join(dir, f), 'utf8');
    assert.equal(text, `${JSON.stringify(JSON.parse(text), null, 2)}\n`, `${f}: 2-space indent and a trailing newline`);
    return JSON.parse(text);
  };
  return {
    r,
    json,
    files,
    inputs: files.includes('build-inputs.json') ? await read('build-inputs.json') : undefined,
    provenance: files.includes('build-provenance.json') ? await read('build-provenance.json') : undefined,
  };
}

/** Checks a build-inputs.json against §6.1 and the registry. */
async function checkBuildInputs(doc: any, kernels: string[]) {
  assert.deepEqual(keys(doc), sorted(TOP));
  assert.deepEqual(keys(doc.run), sorted(RUN));
  assert.deepEqual(keys(doc.inputs), sorted(INPUTS_61));
  assert.equal(doc.schema_version, 1);
  assert.match(doc.generated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  for (const k of ['id', 'attempt', 'number']) assert.ok(Number.isInteger(doc.run[k]), `run.${k} is an integer`);
  const i = doc.inputs;
  assert.equal(typeof i.use_input_lock, 'boolean');
  assert.equal(typeof i.lock_file_path, 'string');
  assert.deepEqual(i.kernel_releases, kernels);
  assert.equal(i.kernel_release, kernels.at(-1));
  assert.equal(i.fedora_version, '43');
  assert.match(i.base_image_digest, DIGEST);
  assert.match(i.build_container_digest, DIGEST);
  assert.equal(i.base_image_pinned, `${i.base_image_name}@${i.base_image_digest}`);
  assert.equal(await digestOf(i.base_image_pinned), i.base_image_digest, 'the base is in the registry by that digest');
  assert.equal(
    await digestOf(`${i.base_image_name}:${i.base_image_tag}`),
    i.base_image_digest,
    'base_image_tag is its immutable tag',
  );
  assert.equal(i.build_container_digest, world.info.builder.digest);
  assert.equal(i.build_container_pinned.split('@')[1], i.build_container_digest);
  assert.equal(i.zfs_minor_version, '2.4');
  assert.match(i.akmods_upstream_ref, /^[0-9a-f]{40}$/);
}

before(async () => {
  world = await bringUpWorld('artifacts', worldSpec({ versions: [[K1]], zfs: ZFS }), { fresh: true });
  c = await client(world);
  worker = await startWorker(world);
});

after(async () => {
  await closeAll({ worker, client: c, world });
});

let first: Awaited<ReturnType<typeof runWithArtifacts>> | undefined;
const lockFile = () => join(world.dir, 'ci', 'inputs.lock.json');

test('a promoted run from a GitHub job writes build-inputs.json and build-provenance.json with the fields of §6 and the registry digests', async () => {
  const env = github(8100000001);
  const run = (first = await runWithArtifacts('promoted', [], env));
  assert.equal(run.r.exitCode, ExitCode.Ok, run.r.stderr);
  assert.equal(run.json.outcome, 'promoted', run.r.stdout);
  assert.deepEqual(run.files, ['build-inputs.json', 'build-provenance.json']);

  const b = run.inputs;
  await checkBuildInputs(b, [K1]);
  assert.equal(b.repository, 'Octo/Kinoite-ZFS');
  assert.equal(b.workflow, 'Build and promote main image');
  assert.deepEqual(b.run, {
    id: 8100000001,
    attempt: 1,
    number: 1,
    ref: 'refs/heads/main',
    sha: env.GITHUB_SHA,
    actor: 'octocat',
  });
  assert.equal(b.inputs.use_input_lock, false);
  assert.equal(b.inputs.base_image_digest, world.info.base.versions[0]!.digest);
  assert.equal(b.inputs.akmods_upstream_ref, world.info.recipe.head, 'the recipe commit the akmods were built from');

  const p = run.provenance;
  assert.deepEqual(keys(p), sorted([...TOP, 'candidate', 'stable']));
  assert.deepEqual(keys(p.run), sorted(RUN));
  assert.deepEqual(keys(p.inputs), sorted(INPUTS_62));
  assert.deepEqual(p.run, b.run);
  assert.deepEqual(p.inputs.kernel_releases, [K1]);
  assert.deepEqual(keys(p.stable), sorted(STABLE_PROMOTED));
  assert.equal(p.stable.promotion_result, 'success');
  assert.equal(p.stable.promoted, true);
  assert.match(p.stable.audit_tag, /^stable-\d+-[0-9a-f]{7}$/);
  const images = {
    'candidate.image': p.candidate.image,
    'candidate.akmods': p.candidate.akmods,
    'stable.image': p.stable.image,
    'stable.akmods': p.stable.akmods,
  };
  for (const [where, img] of Object.entries(images) as [string, any][]) {
    assert.deepEqual(keys(img), sorted(IMAGE), where);
    assert.match(img.digest, DIGEST, where);
    assert.ok(!/^docker:|^oci:/.test(img.tag_ref), `${where}: no transport prefix`);
    assert.equal(img.digest_ref, `${img.tag_ref.slice(0, img.tag_ref.lastIndexOf(':'))}@${img.digest}`, where);
    assert.equal(await digestOf(img.tag_ref), img.digest, `${where}: the tag holds that digest (skopeo)`);
  }
  assert.equal(p.stable.image.tag_ref, `${world.info.stream.stable}:latest`);
  assert.equal(p.candidate.akmods.tag_ref, `${world.info.stream.akmodsCandidate}:main-43`);
  assert.equal(p.stable.akmods.tag_ref, `${world.info.stream.akmodsStable}:main-43`);
  assert.equal(await digestOf(`${world.info.stream.stable}:${p.stable.audit_tag}`), p.stable.image.digest);
});

test('lock export --format original writes exactly the fields of an original ci/inputs.lock.json', async (t) => {
  if (!first?.json.workflowId) return t.skip('needs the promoted run');
  const r = await cli(['lock', 'export', '--run', first.json.workflowId, '--format', 'original', '--out', lockFile()]);
  assert.equal(r.exitCode, 0, r.stderr);
  const lock = JSON.parse(await readFile(lockFile(), 'utf8'));
  assert.deepEqual(Object.keys(lock), LOCK_63, 'the original fields, in its order');
  assert.equal(lock.base_image, first.inputs.inputs.base_image_pinned);
  assert.equal(lock.build_container, first.inputs.inputs.build_container_pinned);
  assert.equal(lock.zfs_minor_version, '2.4');
  assert.equal(lock.akmods_upstream_ref, first.inputs.inputs.akmods_upstream_ref);
});

test('a bad original lock is refused naming the field (exit 2) and starts nothing', async (t) => {
  if (!first?.inputs) return t.skip('needs the promoted run');
  const good = JSON.parse(await readFile(lockFile(), 'utf8'));
  const otherBase = `${world.info.registry.host}/elsewhere/kinoite-main@${first.inputs.inputs.base_image_digest}`;
  const cases: [object, RegExp][] = [
    [
      { ...good, base_image: otherBase },
      /base_image: ".*elsewhere\/kinoite-main@sha256:[0-9a-f]{64}" is not in the stream's repository/,
    ],
    [{ ...good, zfs_minor_version: '2.9' }, /zfs_minor_version: "2\.9" has no OpenZFS release at http/],
    [
      { ...good, akmods_upstream_ref: good.akmods_upstream_ref.slice(0, 7) },
      /akmods_upstream_ref: "[0-9a-f]{7}" is not a full commit id/,
    ],
    [{ ...good, build_container: 'REPLACE_ME' }, /Lock file build_container still contains placeholder value/],
    [{ ...good, akmods_ref: 'x' }, /unknown field\(s\) "akmods_ref"/],
  ];
  for (const [lock, message] of cases) {
    const file = join(world.dir, 'bad.lock.json');
    await writeFile(file, JSON.stringify(lock));
    const before = await runCount();
    const r = await cli(['run', '--lock', file, '--promote', '--wait']);
    assert.equal(r.exitCode, ExitCode.ConfigError, `${JSON.stringify(lock)}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(await runCount(), before, 'no run was started');
  }
});

test('after the base moves on, the original lock replayed from a GitHub dispatch with promote_to_stable=true promotes the same base, builder and kernels', async (t) => {
  if (!first?.inputs) return t.skip('needs the promoted run and its lock');
  world = await bringUpWorld('artifacts', worldSpec({ versions: [[K1], [K1]], zfs: ZFS }));
  const moved = await runWithArtifacts('moved');
  assert.equal(moved.json.outcome, 'promoted', moved.r.stderr);
  assert.equal(moved.inputs.inputs.base_image_digest, world.info.base.versions[1]!.digest);
  assert.notEqual(moved.inputs.inputs.base_image_digest, first.inputs.inputs.base_image_digest);
  assert.equal(moved.inputs.repository, world.info.recipe.git, 'outside GitHub: the recipe repository');
  assert.equal(moved.inputs.run.sha, moved.inputs.inputs.akmods_upstream_ref, 'outside GitHub: the recipe commit');

  // What deploy/github passes for use_input_lock=true, lock_file, promote_to_stable=true.
  const replay = await runWithArtifacts(
    'replay',
    ['--lock', lockFile(), '--promote'],
    github(8100000002, 'workflow_dispatch'),
  );
  assert.equal(replay.r.exitCode, ExitCode.Ok, replay.r.stderr);
  assert.equal(replay.json.outcome, 'promoted', replay.r.stdout);
  assert.deepEqual(replay.files, ['build-inputs.json', 'build-provenance.json']);
  const [a, b] = [first.inputs.inputs, replay.inputs.inputs];
  await checkBuildInputs(replay.inputs, [K1]);
  assert.equal(b.use_input_lock, true);
  assert.equal(b.lock_file_path, lockFile());
  for (const k of [
    'base_image_pinned',
    'base_image_digest',
    'build_container_digest',
    'kernel_releases',
    'zfs_minor_version',
    'akmods_upstream_ref',
  ])
    assert.deepEqual(b[k], a[k], k);
  const stable = await inspect(`${world.info.stream.stable}:latest`);
  assert.equal(stable?.Digest, replay.provenance.stable.image.digest);
  assert.equal(
    stable?.Labels['org.opencontainers.image.base.digest'],
    a.base_image_digest,
    'stable is built on the locked base again',
  );
});

test('a failed run writes build-inputs.json only', async () => {
  world = await bringUpWorld(
    'artifacts',
    worldSpec({
      versions: [[K1], [K1]],
      zfs: ZFS,
      append: { 'os/Containerfile': `RUN rm -f /usr/lib/modules/${K1}/extra/zfs/zfs.ko\n` },
    }),
  );
  const run = await runWithArtifacts('failed');
  assert.equal(run.json.outcome, 'failed', run.r.stdout);
  assert.equal(run.r.exitCode, ExitCode.RunFailed);
  assert.deepEqual(run.files, ['build-inputs.json']);
  await checkBuildInputs(run.inputs, [K1]);
  assert.equal(run.inputs.inputs.use_input_lock, false);
  assert.equal(run.inputs.inputs.lock_file_path, 'ci/inputs.lock.json');
  assert.equal(run.inputs.inputs.akmods_upstream_ref, world.info.recipe.head, 'the failing recipe commit');
});

test('a blocked run (a kernel newer than the ZFS release supports) writes build-inputs.json only', async () => {
  world = await bringUpWorld('artifacts', worldSpec({ versions: [[K1], [K1], [K1, K2]], zfs: ZFS }));
  const run = await runWithArtifacts('blocked');
  assert.equal(run.json.outcome, 'blocked', run.r.stdout);
  assert.equal(run.r.exitCode, ExitCode.RunFailed);
  assert.deepEqual(run.files, ['build-inputs.json']);
  await checkBuildInputs(run.inputs, [K1, K2]);
  assert.equal(run.inputs.inputs.base_image_digest, world.info.base.versions[2]!.digest);
});
