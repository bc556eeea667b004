/**
 * The original's artifacts and lock format (reference §6.1-6.3): build-inputs.json and
 * build-provenance.json from a run's recorded inputs, with exactly the original's fields; the
 * original's ci/inputs.lock.json read (each refused field named) and written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  artifactJson,
  artifactRun,
  buildInputsDocument,
  provenanceDocument,
  zfsMinorVersion,
} from '../../core/artifacts.ts';
import { writeRunArtifacts } from '../../client/artifacts.ts';
import { Lock, lockFormat, lockProblems, lockZfsProblem, originalLockFromInputs, parseLock } from '../../core/lock.ts';
import { planFromLock, type PipelineResult, type StreamPlan } from '../../core/pipeline.ts';
import { D, inputs } from '../support/inputs-fixture.ts';
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

const COMMIT = inputs.recipe.commit;
const AT = new Date('2026-12-02T11:22:33.456Z');
const GITHUB: NodeJS.ProcessEnv = {
  GITHUB_ACTIONS: 'true',
  GITHUB_REPOSITORY: 'Danathar/Kinoite-ZFS',
  GITHUB_WORKFLOW: 'Build And Promote Main Image',
  GITHUB_RUN_ID: '14000000001',
  GITHUB_RUN_ATTEMPT: '2',
  GITHUB_RUN_NUMBER: '321',
  GITHUB_REF: 'refs/heads/main',
  GITHUB_SHA: 'f'.repeat(40),
  GITHUB_ACTOR: 'octocat',
};
const lockUse = { useInputLock: false, lockFilePath: 'ci/inputs.lock.json' };

test('build-inputs.json has exactly the fields of §6.1, mapped from the run, with the GitHub job as its run', () => {
  const run = artifactRun(GITHUB, { workflowId: 'stream/s/run-7', inputs, by: 'alice' });
  const doc = buildInputsDocument({ run, at: AT, inputs, lock: lockUse }) as any;
  assert.deepEqual(keys(doc), sorted(TOP));
  assert.deepEqual(keys(doc.run), sorted(RUN));
  assert.deepEqual(keys(doc.inputs), sorted(INPUTS_61));
  assert.equal(doc.schema_version, 1);
  assert.equal(doc.generated_at, '2026-12-02T11:22:33Z', 'UTC, seconds precision');
  assert.equal(doc.repository, 'Danathar/Kinoite-ZFS', 'original case');
  assert.equal(doc.workflow, 'Build And Promote Main Image');
  assert.deepEqual(doc.run, {
    id: 14000000001,
    attempt: 2,
    number: 321,
    ref: 'refs/heads/main',
    sha: 'f'.repeat(40),
    actor: 'octocat',
  });
  assert.deepEqual(doc.inputs, {
    use_input_lock: false,
    lock_file_path: 'ci/inputs.lock.json',
    fedora_version: '43',
    kernel_release: '6.18.5-200.fc43.x86_64',
    kernel_releases: ['6.17.7-300.fc43.x86_64', '6.18.5-200.fc43.x86_64'],
    base_image_ref: 'r.io/u/base:latest',
    base_image_name: 'r.io/u/base',
    base_image_tag: 'latest-20261101.0',
    base_image_pinned: `r.io/u/base@${D('a')}`,
    base_image_digest: D('a'),
    build_container_ref: 'r.io/u/dev:latest',
    build_container_pinned: `r.io/u/dev@${D('b')}`,
    build_container_digest: D('b'),
    zfs_minor_version: '2.4',
    akmods_upstream_ref: COMMIT,
  });
  const text = artifactJson(doc);
  assert.ok(
    text.endsWith('}\n') && text.startsWith('{\n  "schema_version": 1,\n'),
    'two-space indent, trailing newline',
  );
});

test('outside GitHub Actions the run fields come from the run: recipe repository, workflow id, run number, recipe ref and commit, trigger', () => {
  const run = artifactRun({}, { workflowId: 'stream/s/run-7', inputs, by: 'alice' });
  assert.deepEqual(run, {
    repository: '/srv/recipe',
    workflow: 'stream/s/run-7',
    run: { id: 7, attempt: 1, number: 7, ref: 'main', sha: COMMIT, actor: 'alice' },
  });
  assert.equal(artifactRun({}, { workflowId: 'branch/s/br-x/abc', inputs, by: 'a' }).run.id, 0);
});

test('zfs_minor_version is the line of the release used (a lock may pin a release outside the stream line)', () => {
  assert.equal(zfsMinorVersion({ line: '2.4', version: '2.4.4' }), '2.4');
  assert.equal(zfsMinorVersion({ line: '2.4', version: '2.3.10' }), '2.3');
  assert.equal(zfsMinorVersion({ line: '2.10', version: '' }), '2.10');
});

const candidate = { repo: 'r.io/o/c', tag: '0123456-43', digest: D('c') };
const akmods = { repo: 'r.io/o/ac', tag: 'main-43', digest: D('d'), built: [], reused: inputs.kernels };
const promotion = {
  stableRepo: 'r.io/o/s',
  digest: D('e'),
  auditTag: 'stable-7-0123456',
  stableTags: ['latest', '43'],
  akmodsStable: { repo: 'r.io/o/as', tag: 'main-43', digest: D('d') },
  previous: {},
};

test('build-provenance.json of a promoted run has exactly the fields of §6.2 and the digests written', () => {
  const run = artifactRun(GITHUB, { workflowId: 'stream/s/run-7', inputs, by: 'a' });
  const result: Partial<PipelineResult> = { outcome: 'promoted', inputs, candidate, akmods, promotion };
  const doc = provenanceDocument({ run, at: AT, result }) as any;
  assert.deepEqual(keys(doc), sorted([...TOP, 'candidate', 'stable']));
  assert.deepEqual(keys(doc.inputs), sorted(INPUTS_62), 'no kernel_release, use_input_lock or lock_file_path');
  assert.deepEqual(keys(doc.candidate), ['akmods', 'image']);
  assert.deepEqual(keys(doc.candidate.image), sorted(IMAGE));
  assert.deepEqual(doc.candidate.image, {
    tag: '0123456-43',
    tag_ref: 'r.io/o/c:0123456-43',
    digest: D('c'),
    digest_ref: `r.io/o/c@${D('c')}`,
  });
  assert.equal(doc.candidate.akmods.tag_ref, 'r.io/o/ac:main-43');
  assert.deepEqual(keys(doc.stable), sorted(STABLE_PROMOTED));
  assert.equal(doc.stable.promotion_result, 'success');
  assert.equal(doc.stable.promoted, true);
  assert.equal(doc.stable.audit_tag, 'stable-7-0123456');
  assert.deepEqual(doc.stable.image, {
    tag: 'latest',
    tag_ref: 'r.io/o/s:latest',
    digest: D('e'),
    digest_ref: `r.io/o/s@${D('e')}`,
  });
  assert.deepEqual(doc.stable.akmods.digest_ref, `r.io/o/as@${D('d')}`);
});

test('provenance says why a passing candidate was not promoted, and does not exist for runs whose candidate did not pass', () => {
  const run = artifactRun({}, { workflowId: 'stream/s/run-7', inputs, by: 'a' });
  const doc = (outcome: string) =>
    provenanceDocument({ run, at: AT, result: { outcome: outcome as never, inputs, candidate, akmods } }) as any;
  assert.deepEqual(doc('candidate-only').stable, { promotion_result: 'skipped', promoted: false });
  assert.deepEqual(doc('rejected').stable, { promotion_result: 'rejected', promoted: false });
  assert.deepEqual(doc('expired').stable, { promotion_result: 'expired', promoted: false });
  for (const outcome of ['failed', 'blocked', 'unchanged', 'vetoed', 'superseded'])
    assert.equal(doc(outcome), undefined, outcome);
  assert.equal(provenanceDocument({ run, at: AT, result: { outcome: 'blocked', inputs } }), undefined);
});

test('--artifacts writes build-inputs for any run with inputs, provenance only for a passing candidate, and clears files of an earlier run', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kz-artifacts-'));
  try {
    const promoted = await writeRunArtifacts(
      dir,
      {
        workflowId: 'stream/s/run-7',
        result: { outcome: 'promoted', inputs, candidate, akmods, promotion },
        by: 'a',
        lock: lockUse,
      },
      {},
      AT,
    );
    assert.deepEqual(promoted, [join(dir, 'build-inputs.json'), join(dir, 'build-provenance.json')]);
    const prov = JSON.parse(await readFile(join(dir, 'build-provenance.json'), 'utf8'));
    assert.equal(prov.stable.promoted, true);

    const failed = await writeRunArtifacts(
      dir,
      {
        workflowId: 'stream/s/run-8',
        result: { outcome: 'failed', inputs },
        by: 'a',
        lock: { useInputLock: true, lockFilePath: 'x.json' },
      },
      {},
      AT,
    );
    assert.deepEqual(failed, [join(dir, 'build-inputs.json')]);
    assert.deepEqual(
      (await readdir(dir)).sort(),
      ['build-inputs.json'],
      'the earlier provenance is gone, no temp files',
    );
    const b = JSON.parse(await readFile(join(dir, 'build-inputs.json'), 'utf8'));
    assert.equal(b.run.id, 8);
    assert.equal(b.inputs.use_input_lock, true);
    assert.equal(b.inputs.lock_file_path, 'x.json');

    await writeFile(join(dir, 'build-provenance.json'), '{}');
    assert.deepEqual(
      await writeRunArtifacts(dir, { workflowId: 'w', result: { outcome: 'failed' }, by: 'a', lock: lockUse }, {}, AT),
      [],
    );
    assert.deepEqual(await readdir(dir), [], 'a run that never resolved its inputs leaves no artifacts');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ---- the original's lock ----

const ORIGINAL = {
  version: 1,
  description: 'Pinned inputs for replay',
  base_image: `r.io/u/base@${D('5')}`,
  build_container: `r.io/u/dev@${D('6')}`,
  zfs_minor_version: '2.4',
  akmods_upstream_ref: '906e565f712f43a598dcd272dc8ca053fcc99116',
};
const plan = {
  baseImage: 'r.io/u/base:latest',
  builderImage: 'r.io/u/dev:latest',
  zfs: { line: '2.3', source: {} },
  recipe: { git: '/srv/recipe', ref: 'main', path: 'recipes' },
} as unknown as StreamPlan;

test("an original ci/inputs.lock.json is recognised and maps onto the stream's plan: base, builder, ZFS line, recipe commit", () => {
  assert.equal(lockFormat(ORIGINAL), 'original');
  assert.equal(lockFormat({ ...ORIGINAL, inputs_hash: 'a'.repeat(64) }), 'kinoite-zfs');
  const lock = Lock.parse(ORIGINAL);
  assert.deepEqual(lockProblems(lock), []);
  const replay = planFromLock(plan, lock);
  assert.equal(replay.baseImage, ORIGINAL.base_image);
  assert.equal(replay.builderImage, ORIGINAL.build_container);
  assert.equal(replay.zfs.line, '2.4');
  assert.equal(replay.recipe.ref, ORIGINAL.akmods_upstream_ref, 'akmods_upstream_ref is the recipe commit to replay');
});

test('lock export --format original writes exactly the original fields, which replay the same base, builder, line and commit', () => {
  const lock = originalLockFromInputs(inputs, 'inputs of stream/s/run-7 (promoted)');
  assert.deepEqual(Object.keys(lock), LOCK_63);
  assert.equal(lockFormat(lock), 'original');
  const replay = planFromLock(plan, Lock.parse(JSON.parse(artifactJson(lock))));
  assert.equal(replay.baseImage, inputs.base.pinned);
  assert.equal(replay.builderImage, inputs.builder.pinned);
  assert.equal(replay.zfs.line, '2.4');
  assert.equal(replay.recipe.ref, COMMIT);
});

/** The problems of a lock, as `run --lock` reports them: the schema's, then the replay checks. */
function problemsOf(raw: object): string[] {
  const r = parseLock(raw);
  return r.problems ?? lockProblems(r.lock);
}

test('each bad field of an original lock is refused, naming the field', () => {
  const cases: [object, RegExp][] = [
    [
      { ...ORIGINAL, akmods_upstream_ref_x: 'y' },
      /^unknown field\(s\) "akmods_upstream_ref_x": an original ci\/inputs\.lock\.json has version, description, base_image, build_container, zfs_minor_version, akmods_upstream_ref/,
    ],
    [
      { ...ORIGINAL, base_image: 'r.io/u/base@sha256:REPLACE_ME' },
      /^Lock file base_image still contains placeholder value$/,
    ],
    [{ ...ORIGINAL, build_container: 'REPLACE_ME' }, /^Lock file build_container still contains placeholder value$/],
    [
      { ...ORIGINAL, base_image: 'r.io/u/base:latest' },
      /^base_image: "r\.io\/u\/base:latest" is not pinned by digest; /,
    ],
    [
      { ...ORIGINAL, build_container: 'r.io/u/dev:latest' },
      /^build_container: "r\.io\/u\/dev:latest" is not pinned by digest; /,
    ],
    [{ ...ORIGINAL, akmods_upstream_ref: '906e565' }, /^akmods_upstream_ref: "906e565" is not a full commit id; /],
    [{ ...ORIGINAL, akmods_upstream_ref: 'main' }, /^akmods_upstream_ref: "main" is not a full commit id; /],
    [{ ...ORIGINAL, zfs_minor_version: '2' }, /^zfs_minor_version: "2" is not a release line; /],
    [{ ...ORIGINAL, base_image: '' }, /^base_image: /],
    [
      { ...ORIGINAL, recipe_commit: COMMIT },
      /^akmods_upstream_ref: "906e565f\S+" differs from recipe_commit "0123456\S+"; /,
    ],
    [{ ...ORIGINAL, zfs_release: '2.3.1' }, /^zfs_release: "2\.3\.1" is not in zfs_minor_version "2\.4"; /],
  ];
  for (const [raw, message] of cases) {
    const problems = problemsOf(raw);
    assert.equal(problems.length, 1, `${JSON.stringify(raw)}: ${problems.join(' | ')}`);
    assert.match(problems[0]!, message);
  }
});

test("a ZFS line or release the stream's release source cannot satisfy is refused, naming the field", () => {
  const releases = [
    { tag: 'zfs-2.4.4', prerelease: false, draft: false },
    { tag: 'zfs-2.5.0-rc1', prerelease: true, draft: false },
  ];
  const src = 'https://x/releases';
  assert.equal(lockZfsProblem({ zfs_minor_version: '2.4' }, releases, src), undefined);
  assert.equal(lockZfsProblem({}, releases, src), undefined, "no line in the lock: the stream's own, as a normal run");
  assert.match(
    lockZfsProblem({ zfs_minor_version: '2.5' }, releases, src)!,
    /^zfs_minor_version: "2\.5" has no OpenZFS release at https:\/\/x\/releases \(it lists zfs-2\.4\.4, zfs-2\.5\.0-rc1\)/,
  );
  assert.equal(lockZfsProblem({ zfs_minor_version: '2.4', zfs_release: '2.4.4' }, releases, src), undefined);
  assert.match(lockZfsProblem({ zfs_release: '2.4.3' }, releases, src)!, /^zfs_release: "2\.4\.3" is not a release/);
});
