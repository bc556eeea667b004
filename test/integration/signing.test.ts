/**
 * Signing as real users verify it, on the hermetic world with real cosign: the private key given as
 * `env://NAME` (the original's SIGNING_SECRET) signs and attests through the promotion activities,
 * its text never reaches a workflow history, and the `cosign verify` command `run --wait` prints
 * succeeds when run as printed. The world signs with `signing.tlog: false` (no Rekor here).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import type { Client } from '@temporalio/client';
import {
  bringUpWorld,
  worldSpec,
  startWorker,
  client,
  closeAll,
  cosignVerifies,
  digestOf,
  historyText,
  repoRoot,
  runAsPrinted,
  type TestWorld,
} from '../support/harness.ts';
import { loadConfig } from '../../client/config-file.ts';
import { Host } from '../../activities/host.ts';
import { RegistryClient } from '../../activities/registry-http.ts';
import { promotionActivities } from '../../activities/promotion.ts';
import { digestRef } from '../../core/refs.ts';
import { FailureType, PermanentError } from '../../core/errors.ts';

const K1 = '6.17.7-300.fc43.x86_64';
// A secret-looking name: the runner keeps such variables from children unless a call passes them.
const KEY_VAR = 'KZ_TEST_SIGNING_SECRET';

let world: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> } | undefined;
let keyText: string;

before(async () => {
  world = await bringUpWorld('signing', worldSpec({ versions: [[K1]] }), { fresh: true });
  // The key now lives only in the worker's environment: the file is gone, the config names the variable.
  keyText = await readFile(world.info.signing.keyFile, 'utf8');
  process.env[KEY_VAR] = keyText;
  await rm(world.info.signing.keyFile);
  const raw = parse(await readFile(world.configFile, 'utf8')) as { streams: Record<string, any> };
  raw.streams[world.stream].signing.keyFile = `env://${KEY_VAR}`;
  await writeFile(world.configFile, stringify(raw));
  world.config = await loadConfig(world.configFile);
  c = await client(world);
});

after(async () => {
  delete process.env[KEY_VAR];
  await closeAll({ worker, client: c, world });
});

function activities() {
  const host = new Host(world.config);
  const registry = new RegistryClient({ insecureHosts: world.config.registries.insecure });
  return promotionActivities({ registry, host });
}

test('the world turns the transparency log off and the key reference stays env://NAME', () => {
  const signing = world.config.streams[world.stream]!.signing;
  assert.equal(signing.tlog, false);
  assert.equal(signing.keyFile, `env://${KEY_VAR}`);
});

test('signImage and attestProvenance sign with an env:// key that exists only in the worker environment', async () => {
  const a = activities();
  const s = world.info.stream;
  const base = await digestOf(world.info.base.reference);
  assert.ok(base, 'the world has a base image');
  const ref = digestRef(s.stable, base!);
  await a.copyImageByDigest({ from: digestRef(world.info.base.reference.replace(/:[^:/]+$/, ''), base!), to: ref });
  assert.equal(await cosignVerifies(ref, world.info.signing.publicKeyFile), false, 'not signed before');

  const signed = await a.signImage({ stream: world.stream, ref });
  assert.equal(signed.alreadySigned, false);
  assert.ok(await cosignVerifies(ref, world.info.signing.publicKeyFile), 'cosign verifies the signature');
  const again = await a.signImage({ stream: world.stream, ref });
  assert.equal(again.alreadySigned, true);
  // The command a user runs, from this worker's config: it verifies as given.
  assert.equal(again.verify, signed.verify);
  assert.equal((await runAsPrinted(signed.verify)).exitCode, 0, signed.verify);

  await a.attestProvenance({
    stream: world.stream,
    ref,
    predicate: {
      buildDefinition: { buildType: 'https://example.org/kinoite-zfs/test@v1', externalParameters: {} },
      runDetails: { builder: { id: 'https://example.org/kinoite-zfs/test' } },
    },
  });
  assert.ok(await cosignVerifies(ref, world.info.signing.publicKeyFile, true), 'cosign verifies the attestation');
});

test('an unset env:// key variable fails the signing permanently, naming the variable, before cosign runs', async () => {
  const a = activities();
  const builder = world.info.builder;
  const ref = digestRef(world.info.stream.stable, builder.digest);
  await a.copyImageByDigest({ from: digestRef(builder.reference.replace(/:[^:/]+$/, ''), builder.digest), to: ref });
  delete process.env[KEY_VAR];
  try {
    await assert.rejects(
      a.signImage({ stream: world.stream, ref }),
      (err: Error) =>
        err instanceof PermanentError &&
        err.type === FailureType.AuthDenied &&
        err.message.includes(`${KEY_VAR} (signing.keyFile env://${KEY_VAR}`) &&
        err.message.includes('not set'),
    );
  } finally {
    process.env[KEY_VAR] = keyText;
  }
  assert.equal(await cosignVerifies(ref, world.info.signing.publicKeyFile), false, 'nothing was signed');
});

test('a promoted run signed with the env:// key: its printed verify command succeeds as printed, and no history holds the key', async () => {
  worker = await startWorker(world);
  const r = await execa(
    process.execPath,
    [join(repoRoot, 'bin', 'kinoite-zfs.js'), 'run', '--config', world.configFile, '--wait'],
    { cwd: repoRoot, reject: false, all: true, stdin: 'ignore', timeout: 600_000 },
  );
  assert.equal(r.exitCode, 0, r.all);
  assert.match(r.all, /PROMOTED/);
  const verify = /verify:\s+(cosign verify .*)$/m.exec(r.all)?.[1];
  assert.ok(verify, `the summary prints a cosign verify command:\n${r.all}`);
  // Exact for this stream: offline signatures (tlog false) and a plain-HTTP registry.
  assert.match(verify!, / --insecure-ignore-tlog /);
  assert.match(verify!, / --allow-insecure-registry /);
  assert.match(verify!, new RegExp(`${world.info.stream.stable}@sha256:[0-9a-f]{64}$`));
  const v = await runAsPrinted(verify!);
  assert.equal(v.exitCode, 0, `the printed command failed: ${v.all}`);

  // The histories of the run and of its stream, as `temporal workflow show --output json` prints them.
  const runId = /run:\s+(\S+)/.exec(r.all)?.[1];
  assert.ok(runId, 'the summary names the run');
  const texts: [string, string][] = [];
  for (const id of [runId!, `stream/${world.stream}`]) texts.push([id, await historyText(world, id)]);
  const digest = /@(sha256:[0-9a-f]{64})$/.exec(verify!)![1]!;
  assert.ok(
    texts[0]![1].includes(digest),
    'the decoded history holds the promoted digest (so the scan reads payloads)',
  );
  // The whole key, and each line of its body: a part of it is a leak too.
  const parts = [keyText.trim(), ...keyText.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----'))];
  assert.ok(parts.length >= 2, 'the key has a body to look for');
  for (const [id, text] of texts)
    for (const part of parts) assert.ok(!text.includes(part), `the history of ${id} contains the signing key`);
});
