/**
 * Pure pipeline records: inputs identity and hash, the tag plan, build-inputs and provenance
 * documents, the SLSA predicate, and plan validation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assembleInputs,
  buildInputsRecord,
  hashInputs,
  planFromLock,
  planForRun,
  recipeCommitNote,
  lockScopeProblem,
  imageLabels,
  provenanceRecord,
  slsaPredicate,
  tagPlan,
  validatePlan,
  type StreamPlan,
} from '../../core/pipeline.ts';
import { PermanentError } from '../../core/errors.ts';
import { D, inputs } from '../support/inputs-fixture.ts';

const plan = {
  baseImage: 'r.io/u/base:latest',
  builderImage: 'r.io/u/dev:latest',
  builderNetwork: 'default' as const,
  smoke: { boot: 'off' as const, bootTimeout: '5m' },
  notify: [],
  zfs: {
    line: '2.4',
    allowExperimental: false,
    recheckEvery: '6h',
    source: { releasesUrl: 'https://x/r', metaUrl: 'https://x/{tag}/META', tarballUrl: 'https://x/{tag}.tgz' },
  },
  images: {
    candidate: 'r.io/o/c',
    stable: 'r.io/o/s',
    akmodsCandidate: 'r.io/o/ac',
    akmodsStable: 'r.io/o/as',
    stableTags: ['latest', '{fedora}'],
    akmodsTagPrefix: 'main',
  },
  recipe: { git: '/srv/recipe', ref: 'main', path: 'recipes' },
  promotion: { policy: 'auto', approvers: [], timeout: '72h' },
} as StreamPlan;
const ctx = {
  workflowId: 'stream/s/run-7',
  runId: 'rid',
  runNumber: 7,
  trigger: { source: 'cli' },
  generatedAt: '2026-11-25T00:00:00.000Z',
};

test('the inputs hash changes with each digest-pinned input and ignores floating refs and tags', () => {
  const h = hashInputs(inputs);
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.equal(hashInputs({ ...inputs, base: { ...inputs.base, ref: 'r.io/u/base:43', tag: 'other' } }), h);
  for (const changed of [
    { ...inputs, base: { ...inputs.base, digest: D('c') } },
    { ...inputs, builder: { ...inputs.builder, digest: D('c') } },
    { ...inputs, kernels: [inputs.kernels[1]!] },
    { ...inputs, zfs: { ...inputs.zfs, version: '2.4.3' } },
    { ...inputs, recipe: { ...inputs.recipe, commit: 'f'.repeat(40) } },
    { ...inputs, pipelineVersion: '2' },
  ])
    assert.notEqual(hashInputs(changed), h);
});

test('the tag plan names every tag a run writes, with the original forms', () => {
  const t = tagPlan({ plan, inputs, runNumber: 7 });
  assert.equal(t.candidate, '0123456-43');
  assert.equal(t.akmodsCache, 'main-43');
  assert.equal(t.akmodsKernel['6.18.5-200.fc43.x86_64'], 'main-43-6.18.5-200.fc43.x86_64');
  assert.equal(t.audit, 'stable-7-0123456');
  assert.deepEqual(t.stable, ['latest', '43']);
});

test('image labels record the inputs for anyone with skopeo inspect', () => {
  const l = imageLabels(inputs, 'h');
  assert.equal(l['io.github.kinoite-zfs.inputs-hash'], 'h');
  assert.equal(l['io.github.kinoite-zfs.kernel-releases'], '6.17.7-300.fc43.x86_64 6.18.5-200.fc43.x86_64');
  assert.equal(l['org.opencontainers.image.base.digest'], D('a'));
});

test('build-inputs keeps the original field names plus the inputs hash and ZFS release', () => {
  const b = buildInputsRecord(ctx, inputs, 'h') as any;
  assert.equal(b.schema_version, 1);
  assert.equal(b.inputs_hash, 'h');
  assert.deepEqual(b.inputs.kernel_releases, inputs.kernels);
  assert.equal(b.inputs.kernel_release, inputs.kernel);
  assert.equal(b.inputs.base_image_pinned, inputs.base.pinned);
  assert.equal(b.inputs.base_image_tag, 'latest-20261101.0');
  assert.equal(b.inputs.zfs_release, '2.4.4');
  assert.equal(b.workflow.id, 'stream/s/run-7');
});

test('provenance records the promoted digests, or promoted false with the reason', () => {
  const candidate = { repo: 'r.io/o/c', tag: '0123456-43', digest: D('d') };
  const akmods = { repo: 'r.io/o/ac', tag: 'main-43', digest: D('e') };
  const promotion = {
    stableRepo: 'r.io/o/s',
    digest: D('d'),
    auditTag: 'stable-7-0123456',
    stableTags: ['latest', '43'],
    akmodsStable: { repo: 'r.io/o/as', tag: 'main-43', digest: D('e') },
  };
  const p = provenanceRecord({
    ctx,
    inputs,
    hash: 'h',
    candidate,
    akmods,
    promotion,
    promotionResult: 'success',
  }) as any;
  assert.equal(p.stable.promoted, true);
  assert.equal(p.stable.image.digest_ref, `r.io/o/s@${D('d')}`);
  assert.equal(p.candidate.image.tag_ref, 'r.io/o/c:0123456-43');
  assert.equal(p.stable.akmods.digest, D('e'));
  const skipped = provenanceRecord({ ctx, inputs, hash: 'h', candidate, akmods, promotionResult: 'skipped' }) as any;
  assert.deepEqual(skipped.stable, { promotion_result: 'skipped', promoted: false });
});

test('the SLSA predicate pins the base, builder and recipe by digest and commit', () => {
  const p = slsaPredicate({ ctx, inputs, hash: 'h', builderId: 'kinoite-zfs/build' }) as any;
  const deps = p.buildDefinition.resolvedDependencies;
  assert.equal(deps[0].digest.sha256, 'a'.repeat(64));
  assert.equal(deps[1].digest.sha256, 'b'.repeat(64));
  assert.equal(deps[2].digest.gitCommit, inputs.recipe.commit);
  assert.equal(p.buildDefinition.internalParameters.inputsHash, 'h');
  assert.equal(p.runDetails.metadata.invocationId, 'stream/s/run-7/rid');
});

test('validatePlan refuses hostile or malformed references before any activity runs', () => {
  validatePlan(plan);
  for (const bad of [
    { ...plan, baseImage: 'r.io/u/base:latest;rm -rf /' },
    { ...plan, builderImage: 'r.io/u/$(id)' },
    { ...plan, images: { ...plan.images, stable: 'r.io/o/s:latest' } },
    { ...plan, recipe: { ...plan.recipe, ref: 'main; curl x' } },
  ])
    assert.throws(
      () => validatePlan(bad as StreamPlan),
      (e: PermanentError) => e.type === 'InvalidInput',
    );
});

test('planFromLock replays the lock: its base, builder, ZFS line and recipe commit replace the stream plan', () => {
  assert.equal(planFromLock(plan, undefined), plan);
  const commit = 'fedcba9876543210fedcba9876543210fedcba98';
  const full = planFromLock(plan, {
    version: 1,
    base_image: `r.io/u/base@${D('e')}`,
    build_container: `r.io/u/dev@${D('f')}`,
    zfs_minor_version: '2.3',
    recipe_commit: commit,
    akmods_upstream_ref: '0'.repeat(40),
  });
  assert.equal(full.baseImage, `r.io/u/base@${D('e')}`);
  assert.equal(full.builderImage, `r.io/u/dev@${D('f')}`);
  assert.deepEqual(full.zfs, { ...plan.zfs, line: '2.3' });
  assert.deepEqual(full.recipe, { ...plan.recipe, ref: commit }, 'recipe_commit wins over akmods_upstream_ref');
  assert.deepEqual(full.images, plan.images);
  // A minimal lock (the original's) keeps the stream's builder, line and recipe ref where it has none.
  const minimal = planFromLock(plan, { version: 1, base_image: `r.io/u/base@${D('e')}`, akmods_upstream_ref: commit });
  assert.equal(minimal.builderImage, plan.builderImage);
  assert.equal(minimal.zfs.line, '2.4');
  assert.equal(minimal.recipe.ref, commit);
  assert.equal(planFromLock(plan, { version: 1, base_image: `r.io/u/base@${D('a')}` }).recipe.ref, 'main');
});

test("a branch or PR run builds its trigger's commit of the configured repository; a main run builds recipe.ref whatever commit its trigger names", () => {
  const commit = 'fedcba9876543210fedcba9876543210fedcba98';
  for (const mode of ['branch', 'pr'] as const) {
    const p = planForRun(plan, { mode, commit });
    assert.deepEqual(p.recipe, { ...plan.recipe, ref: commit }, `${mode}: the location and folder stay the workers'`);
    assert.equal(planForRun(plan, { mode }).recipe.ref, 'main', `${mode} without a commit: recipe.ref`);
  }
  assert.equal(planForRun(plan, { mode: 'main', commit }).recipe.ref, 'main');
  const lock = { version: 1 as const, base_image: `r.io/u/base@${D('e')}`, recipe_commit: commit };
  assert.equal(planForRun(plan, { mode: 'main', commit: 'c'.repeat(40), lock }).recipe.ref, commit, 'a lock pins it');
  // The inputs hash follows the commit built.
  const other = { ...inputs, recipe: { ...inputs.recipe, commit } };
  assert.notEqual(hashInputs(other), hashInputs(inputs));
});

test('a run says when the recipe commit it built is not the one its trigger named', () => {
  const built = inputs.recipe;
  assert.deepEqual(recipeCommitNote({ mode: 'pr', commit: built.commit }, built), []);
  assert.deepEqual(recipeCommitNote({ mode: 'main', commit: built.commit.slice(0, 7) }, built), []);
  assert.deepEqual(recipeCommitNote({ mode: 'main' }, built), []);
  assert.deepEqual(recipeCommitNote({ mode: 'main', commit: 'f'.repeat(40) }, built), [
    'The trigger names commit ffffffffffff; a main run builds recipe.ref main (at 0123456789ab)',
  ]);
  assert.deepEqual(recipeCommitNote({ mode: 'branch' }, built), [
    'No commit given: this branch run built recipe.ref main at 0123456789ab',
  ]);
});

test("a lock pins digests of the stream's own base and builder repositories; one naming other images is refused, naming the field", () => {
  assert.equal(lockScopeProblem(plan, { version: 1, base_image: `r.io/u/base@${D('e')}` }), undefined);
  assert.match(
    lockScopeProblem(plan, { version: 1, base_image: `evil.io/u/base@${D('e')}` })!,
    /^base_image: "evil\.io\/u\/base@sha256:e+" is not in the stream's repository r\.io\/u\/base; /,
  );
  assert.match(
    lockScopeProblem(plan, {
      version: 1,
      base_image: `r.io/u/base@${D('e')}`,
      build_container: `r.io/x/dev@${D('f')}`,
    })!,
    /^build_container: "r\.io\/x\/dev@\S+" is not in the stream's repository r\.io\/u\/dev; /,
  );
  assert.throws(
    () => planFromLock(plan, { version: 1, base_image: `evil.io/u/base@${D('e')}` }),
    /not in the stream's repository/,
  );
});

test('assembleInputs: the newest kernel is primary, Fedora comes from it, and a disagreeing base label is noted', () => {
  const resolved = {
    plan,
    base: { ...inputs.base, ostreeLinux: '6.18.5-200.fc43.x86_64', layers: 3 },
    builder: inputs.builder,
    kernels: ['6.18.5-200.fc43.x86_64', '6.17.7-300.fc43.x86_64'],
    zfs: inputs.zfs,
    recipeCommit: inputs.recipe.commit,
  };
  const { inputs: got, notes } = assembleInputs(resolved);
  assert.equal(got.kernel, '6.18.5-200.fc43.x86_64');
  assert.equal(got.fedora, '43');
  assert.deepEqual(notes, []);
  assert.deepEqual(Object.keys(got.base), Object.keys(inputs.base), 'only the base fields the inputs record');
  assert.deepEqual(got.recipe, inputs.recipe);
  assert.equal(got.pipelineVersion, '1');
  assert.deepEqual(Object.keys(got), Object.keys(inputs), 'the inputs keep their field order');

  const other = assembleInputs({
    ...resolved,
    base: { ...resolved.base, ostreeLinux: 'old', version: '44.20261101.0' },
    kernels: ['6.1.0-57-amd64'],
  });
  assert.equal(other.inputs.fedora, '44', 'kernels without .fcNN: Fedora from the version label');
  assert.deepEqual(other.notes, ['Base image label/kernel directory mismatch: label=old newest_dir=6.1.0-57-amd64']);
});
