/**
 * The promotion saga's restore path, with every activity mocked: a promoting run (policy auto) whose
 * saga fails at step N, for every N, before or after that step's effect. Every public tag (the
 * stable tags and the stable akmods tag) must be back on its previous digest afterwards, restored
 * newest first, and no public tag may ever have pointed at an unsigned digest.
 * Needs the dev server of this checkout (node bin/kinoite-zfs.js services up).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowFailedError } from '@temporalio/client';
import { startPipelineRun } from '../../client/temporal.ts';
import {
  PUBLIC_TAGS,
  REPOS,
  digestOf,
  mockConfig,
  startMockEnv,
  streamName,
  type Call,
  type MockEnv,
} from '../support/mock-activities.ts';

let m: MockEnv;
before(async () => {
  m = await startMockEnv('saga');
});
after(async () => {
  await m?.close();
});

const stream = streamName('saga');
const PREVIOUS: Record<string, string> = {
  [PUBLIC_TAGS[0]]: digestOf('previous-stable'),
  [PUBLIC_TAGS[1]]: digestOf('previous-stable'),
  [PUBLIC_TAGS[2]]: digestOf('previous-akmods'),
};
const SAGA_ACTIVITIES = new Set(['readTagDigests', 'copyImageByDigest', 'signImage', 'attestProvenance']);

/** The saga's steps in its documented order (docs/architecture.md, "The promotion saga"). */
const STEPS = [
  'read the previous digests',
  'copy the candidate into the stable repository, untagged',
  'sign',
  'attest provenance',
  'write the audit tag',
  `move ${PUBLIC_TAGS[0]}`,
  `move ${PUBLIC_TAGS[1]}`,
  `move ${PUBLIC_TAGS[2]}`,
];
const FIRST_MOVE = 6;

let runs = 0;
/**
 * One promoting run with the saga failing at step `failAt` (1-based; none when undefined); `seed`
 * adds tags to the registry (given the run's audit tag).
 */
async function promote(failAt?: number, when: 'before' | 'after' = 'before', seed?: (auditRef: string) => object) {
  runs += 1;
  const auditRef = `${REPOS.stable}:stable-${500 + runs}-${'a'.repeat(7)}`;
  m.world.tags.clear();
  for (const [ref, digest] of Object.entries({ ...PREVIOUS, ...seed?.(auditRef) })) m.world.tags.set(ref, digest);
  const config = m.world.configure(mockConfig({ stream, address: m.address, queue: m.queue, policy: 'auto' }));
  const workflowId = `run/${stream}/saga-${runs}`;
  let step = 0;
  // The candidate's own signature (right after compose) is no saga step.
  const inSaga = (c: Call) => SAGA_ACTIVITIES.has(c.name) && !`${c.input.ref}`.startsWith(`${REPOS.candidate}@`);
  m.world.fault = (c: Call) => (c.workflowId === workflowId && inSaga(c) && ++step === failAt ? when : undefined);
  const handle = await startPipelineRun(m.client, config, {
    stream,
    trigger: { source: 'test' },
    runNumber: 500 + runs,
    workflowId,
  });
  const outcome = await handle.result().then(
    (r) => ({ ok: true as const, result: r }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  const calls = m.world.callsOf(workflowId);
  const saga = calls.slice(calls.findIndex((c) => c.name === 'readTagDigests'));
  const candidate = calls.find((c) => c.name === 'composeCandidate')!;
  const digest = digestOf(JSON.stringify(candidate.input.labels));
  return { outcome, saga, digest, auditRef };
}

const tagWrites = (calls: Call[]) =>
  calls.filter((c) => c.name === 'copyImageByDigest' && !c.input.to.includes('@')).map((c) => c.input.to as string);

test('a promotion without faults signs before it tags and moves every public tag to the candidate, in order', async () => {
  const { outcome, saga, digest, auditRef } = await promote();
  assert.ok(outcome.ok, `the run promoted: ${String((outcome as { err?: Error }).err?.message)}`);
  assert.equal(outcome.result.outcome, 'promoted');
  assert.deepEqual(
    saga.map((c) => c.name),
    [
      'readTagDigests',
      'copyImageByDigest',
      'signImage',
      'attestProvenance',
      'copyImageByDigest',
      'copyImageByDigest',
      'copyImageByDigest',
      'copyImageByDigest',
    ],
    `the saga runs its ${STEPS.length} steps in order`,
  );
  assert.deepEqual(saga[0]!.input.refs, [...PUBLIC_TAGS, auditRef], 'the saga reads the tags it will write');
  assert.deepEqual(tagWrites(saga), [auditRef, ...PUBLIC_TAGS]);
  const signed = saga.findIndex((c) => c.name === 'signImage' && c.input.ref === `${REPOS.stable}@${digest}`);
  const firstTag = saga.findIndex((c) => tagWrites([c]).length > 0);
  assert.ok(signed >= 0 && signed < firstTag, 'the digest is signed before any tag points at it');
  assert.deepEqual(m.world.snapshot([...PUBLIC_TAGS, auditRef]), {
    [PUBLIC_TAGS[0]]: digest,
    [PUBLIC_TAGS[1]]: digest,
    [PUBLIC_TAGS[2]]: m.world.akmodsDigest,
    [auditRef]: digest,
  });
});

for (const [i, what] of STEPS.entries()) {
  const n = i + 1;
  const modes: ('before' | 'after')[] = n === 1 || n === 3 || n === 4 ? ['before'] : ['before', 'after'];
  for (const when of modes) {
    test(`a promotion failing ${when} its effect at step ${n} (${what}) leaves every public tag on its previous digest`, async () => {
      const { outcome, saga, digest, auditRef } = await promote(n, when);
      assert.ok(!outcome.ok, 'the run fails');
      assert.ok(outcome.err instanceof WorkflowFailedError);
      assert.match(String(outcome.err.cause?.message), /^promote failed: mock \w+ failed/);
      // The public tags: exactly the map from before the run.
      assert.deepEqual(m.world.snapshot(PUBLIC_TAGS), PREVIOUS);
      // The tag writes: the saga's own up to the failing step, then the restores, newest first.
      const moved = n >= FIRST_MOVE ? PUBLIC_TAGS.slice(0, n - FIRST_MOVE + 1) : [];
      const written = n >= 5 ? [auditRef, ...moved] : [];
      assert.deepEqual(tagWrites(saga), [...written, ...[...moved].reverse()]);
      const restores = saga.slice(n);
      assert.deepEqual(
        restores.map((c) => [c.input.to, c.input.from.split('@')[1]]),
        [...moved].reverse().map((ref) => [ref, PREVIOUS[ref]]),
        'each moved tag is copied back from its previous digest',
      );
      // The audit tag did not exist before; once written it stays on the new, signed digest (documented).
      assert.equal(m.world.tags.get(auditRef), n > 5 || (n === 5 && when === 'after') ? digest : undefined);
    });
  }
}

test('a promotion whose audit tag already names another digest fails before it copies, signs or tags anything, naming the tag', async () => {
  const earlier = digestOf('an earlier promotion');
  const { outcome, saga, auditRef } = await promote(undefined, 'before', (ref) => ({ [ref]: earlier }));
  assert.ok(!outcome.ok, 'the run fails');
  assert.ok(outcome.err instanceof WorkflowFailedError);
  const cause = outcome.err.cause as Error & { type?: string };
  assert.equal(cause.type, 'PolicyViolation');
  assert.ok(
    cause.message.startsWith(`promote failed: The audit tag ${auditRef} already names ${earlier}`),
    cause.message,
  );
  assert.deepEqual(
    saga.map((c) => c.name),
    ['readTagDigests'],
    'nothing after the read: no copy, no signature, no tag',
  );
  assert.deepEqual(m.world.snapshot([...PUBLIC_TAGS, auditRef]), { ...PREVIOUS, [auditRef]: earlier });
});

test('a promotion whose audit tag already names this very candidate promotes (running the saga again changes nothing)', async () => {
  const first = await promote();
  assert.ok(first.outcome.ok);
  const { outcome, digest, auditRef } = await promote(undefined, 'before', (ref) => ({ [ref]: first.digest }));
  assert.equal(digest, first.digest, 'the same inputs make the same candidate');
  assert.ok(outcome.ok, `the run promoted: ${String((outcome as { err?: Error }).err?.message)}`);
  assert.deepEqual(m.world.snapshot([...PUBLIC_TAGS, auditRef]), {
    [PUBLIC_TAGS[0]]: digest,
    [PUBLIC_TAGS[1]]: digest,
    [PUBLIC_TAGS[2]]: m.world.akmodsDigest,
    [auditRef]: digest,
  });
});
