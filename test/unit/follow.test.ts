import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressPrinter, formatSummary, summarise } from '../../client/follow.ts';
import type { PipelineResult, RunProgress } from '../../core/pipeline.ts';

test('run --wait prints each new "no build host" waiting time of the running stage once', () => {
  const lines: string[] = [];
  const printer = new ProgressPrinter((l) => lines.push(l));
  const progress = (waiting?: string[]): RunProgress => ({
    stream: 's',
    stage: 'compose',
    stages: [{ stage: 'compose', status: 'running', startedAt: '2026-11-30T00:00:00.000Z' }],
    kernels: [],
    akmods: [],
    waiting,
  });
  printer.update(progress());
  printer.update(progress(['no build host has taken this for 15 minutes: compose r:t']));
  printer.update(progress(['no build host has taken this for 15 minutes: compose r:t']));
  printer.update(progress(['no build host has taken this for 30 minutes: compose r:t']));
  assert.deepEqual(lines, [
    '▶ compose',
    '  no build host has taken this for 15 minutes: compose r:t',
    '  no build host has taken this for 30 minutes: compose r:t',
  ]);
});

test("run --wait prints the verify commands the worker built, for the candidate and stable, and the recipe commit; the client's settings do not change them", () => {
  const digest = `sha256:${'d'.repeat(64)}`;
  const worker = (repo: string) => `cosign verify --key /w/cosign.pub --insecure-ignore-tlog ${repo}@${digest}`;
  const r = {
    outcome: 'promoted',
    message: 'promoted',
    stages: [],
    inputs: { kernels: [], zfs: { version: '2.4.4' }, recipe: { ref: 'c'.repeat(40), commit: 'c'.repeat(40) } },
    candidate: { repo: 'r/cand', tag: 'br-x-43', digest, verify: worker('r/cand') },
    promotion: { stableRepo: 'r/stable', digest, stableTags: ['latest'], auditTag: 'a', verify: worker('r/stable') },
  } as unknown as PipelineResult;
  const s = summarise(
    r,
    { workflowId: 'w', runId: 'r' },
    { publicKeyFile: 'client.pub', tlog: true, insecureRegistries: [] },
  );
  assert.equal(s.verify, worker('r/stable'));
  assert.equal(s.candidate?.verify, worker('r/cand'));
  assert.deepEqual(s.recipe, { ref: 'c'.repeat(40), commit: 'c'.repeat(40) });
  const text = formatSummary(s);
  assert.ok(text.includes(`  verify candidate: ${worker('r/cand')}\n`), text);
  assert.ok(text.includes(`  verify:     ${worker('r/stable')}`), text);
  assert.ok(text.includes(`  recipe:     ${'c'.repeat(40)} @ ${'c'.repeat(40)}`), text);
});

test("for a run recorded before the worker built it, run --wait's verify command follows the stream's tlog setting and the client's plain-HTTP registries", () => {
  const digest = `sha256:${'d'.repeat(64)}`;
  const result = (stableRepo: string) =>
    ({
      outcome: 'promoted',
      message: 'promoted',
      stages: [],
      promotion: { stableRepo, digest, stableTags: ['latest'], auditTag: 'stable-1-abcdef0' },
    }) as unknown as PipelineResult;
  const base = { workflowId: 'stream/s/run-1', runId: 'r' };
  const online = summarise(result('ghcr.io/o/kinoite-zfs'), base, {
    publicKeyFile: 'cosign.pub',
    tlog: true,
    insecureRegistries: [],
  });
  assert.equal(online.verify, `cosign verify --key cosign.pub ghcr.io/o/kinoite-zfs@${digest}`);
  const offline = summarise(result('127.0.0.1:5000/o/kinoite-zfs'), base, {
    publicKeyFile: '/w/cosign.pub',
    tlog: false,
    insecureRegistries: ['127.0.0.1:5000'],
  });
  assert.equal(
    offline.verify,
    `cosign verify --key /w/cosign.pub --insecure-ignore-tlog --allow-insecure-registry 127.0.0.1:5000/o/kinoite-zfs@${digest}`,
  );
  // A loopback registry the config does not list as plain HTTP gets no insecure flag (no guessing from the name).
  const tls = summarise(result('localhost:5443/o/kinoite-zfs'), base, {
    publicKeyFile: 'cosign.pub',
    tlog: true,
    insecureRegistries: [],
  });
  assert.equal(tls.verify, `cosign verify --key cosign.pub localhost:5443/o/kinoite-zfs@${digest}`);
});
