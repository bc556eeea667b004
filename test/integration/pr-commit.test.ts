/**
 * Branch and PR runs build their own commit, and what main and branch runs publish is signed, on
 * the hermetic world through the CLI: a PR run at a side-branch commit whose Containerfile writes a
 * marker file produces a candidate holding that file (run with podman) and writes nothing to the
 * stable repositories (the registry's own log); a commit the recipe repository does not have is
 * refused, and re-running it once it exists starts a new run instead of answering with the failed
 * one; main candidates and branch images verify with cosign, with the command `run --wait` prints,
 * built from the workers' config even when the client's names another key; a workflow_dispatch on
 * a non-default branch does not promote.
 *
 * Lane: side
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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
  registryRequests,
  registryLogMark,
  recipeSideCommit,
  writes,
  repoRoot,
  runAsPrinted,
  type TestWorld,
} from '../support/harness.ts';
import { containerEnv } from '../../world/tools.ts';
import { ExitCode } from '../../client/exit-codes.ts';
import { branchTag } from '../../core/tags.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const CLI = join(repoRoot, 'bin', 'kinoite-zfs.js');

let world: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> };
let scratch: string;

function cli(args: string[], env: NodeJS.ProcessEnv = {}, config = world.configFile) {
  return execa(process.execPath, [CLI, ...args, '--config', config], {
    cwd: repoRoot,
    reject: false,
    stdin: 'ignore',
    all: true,
    timeout: 600_000,
    env: { GITHUB_ACTIONS: '', ...env },
  });
}

const git = async (dir: string, args: string[]) =>
  (
    await execa('git', ['-C', dir, '-c', 'user.name=test', '-c', 'user.email=test@kinoite-zfs.invalid', ...args])
  ).stdout.trim();

/** Runs `script` in the image (by digest) with podman, as a user would. */
async function inImage(ref: string, script: string) {
  const env = containerEnv(world.info.containersConf);
  const r = await execa(
    'podman',
    ['run', '--rm', '--pull=always', '--tls-verify=false', '--network=none', ref, 'sh', '-c', script],
    { env, reject: false, all: true },
  );
  await execa('podman', ['rmi', ref], { env, reject: false });
  return r;
}

/** The URI path prefix of a repository in the registry's log. */
const repoPath = (repo: string) => `/v2/${repo.split('/').slice(1).join('/')}/`;

before(async () => {
  world = await bringUpWorld('pr-commit', worldSpec({ versions: [[K1]] }), { fresh: true });
  scratch = await mkdtemp(join(tmpdir(), 'kz-pr-commit-'));
  c = await client(world);
  worker = await startWorker(world);
});

after(async () => {
  await closeAll({ worker, client: c, world, endStream: true });
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test('a main run signs its candidate: the printed verify command and cosign both verify it', async () => {
  const r = await cli(['run', '--wait']);
  assert.equal(r.exitCode, 0, r.all);
  const verify = /verify candidate:\s+(cosign verify .*)$/m.exec(r.all)?.[1];
  assert.ok(verify, `the summary prints the candidate's verify command:\n${r.all}`);
  const ref = verify!.split(' ').at(-1)!;
  assert.match(ref, new RegExp(`^${world.info.stream.candidate}@sha256:[0-9a-f]{64}$`));
  const v = await runAsPrinted(verify!);
  assert.equal(v.exitCode, 0, `as printed:\n${v.all}`);
  assert.ok(await cosignVerifies(ref, world.info.signing.publicKeyFile));
});

test('a PR run builds the commit it names from the GitHub event: its candidate holds the change, and nothing reaches stable or is signed', async () => {
  const marker = randomBytes(8).toString('hex');
  const { sha } = await recipeSideCommit(world, scratch, {
    containerfile: `RUN echo ${marker} > /usr/share/kinoite-zfs-pr-marker`,
  });
  const s = world.info.stream;
  const stableBefore = await digestOf(`${s.stable}:latest`);
  const mark = await registryLogMark(world);
  const r = await cli(['run', '--mode', 'pr', '--pr', '7', '--wait', '--json'], {
    GITHUB_ACTIONS: 'true',
    GITHUB_REPOSITORY: 'octo/kinoite-zfs',
    GITHUB_SHA: sha,
    GITHUB_REF: 'refs/pull/7/merge',
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_RUN_ID: '1001',
    GITHUB_RUN_ATTEMPT: '1',
  });
  assert.equal(r.exitCode, 0, r.all);
  const out = JSON.parse(r.stdout);
  assert.equal(out.outcome, 'candidate-only');
  assert.deepEqual(out.recipe, { ref: sha, commit: sha }, 'the run records the commit it built');
  assert.equal(out.candidate.verify, undefined, 'a PR candidate is not signed');
  const seen = await inImage(out.candidate.ref, 'cat /usr/share/kinoite-zfs-pr-marker');
  assert.equal(seen.exitCode, 0, seen.all);
  assert.equal(String(seen.stdout).trim(), marker, "the candidate holds the PR's change");
  const written = writes(await registryRequests(world, mark)).map((w) => w.uri);
  assert.deepEqual(
    written.filter((u) => u.startsWith(repoPath(s.stable)) || u.startsWith(repoPath(s.akmodsStable))),
    [],
    'nothing was written to the stable repositories',
  );
  assert.ok(!written.some((u) => /\.sig|\.att/.test(u)), 'nothing was signed');
  assert.ok(
    written.some((u) => u.includes('/manifests/pr-7-43')),
    'the PR candidate went to the candidate repository',
  );
  assert.equal(await digestOf(`${s.stable}:latest`), stableBefore);
});

test('a commit the recipe repository does not have is refused; once pushed, re-running it starts a new run that builds it', async () => {
  const { sha, clone } = await recipeSideCommit(world, scratch, { push: false });
  const gh = (attempt: string) => ({
    GITHUB_ACTIONS: 'true',
    GITHUB_REPOSITORY: 'octo/kinoite-zfs',
    GITHUB_SHA: sha,
    GITHUB_REF: 'refs/pull/8/merge',
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_RUN_ID: '2002',
    GITHUB_RUN_ATTEMPT: attempt,
  });
  const mark = await registryLogMark(world);
  const first = await cli(['run', '--mode', 'pr', '--pr', '8', '--wait', '--json'], gh('1'));
  assert.equal(first.exitCode, ExitCode.RunFailed, first.all);
  const failed = JSON.parse(first.stdout);
  assert.match(
    failed.message,
    new RegExp(`Recipe commit ${sha} does not exist in ${world.info.recipe.git}, the configured recipe repository`),
  );
  assert.deepEqual(writes(await registryRequests(world, mark)), [], 'nothing was written');
  await git(clone, ['push', '--quiet', 'origin', 'HEAD']);
  const second = await cli(['run', '--mode', 'pr', '--pr', '8', '--wait', '--json'], gh('2'));
  assert.equal(second.exitCode, 0, second.all);
  const rerun = JSON.parse(second.stdout);
  assert.equal(rerun.workflowId, failed.workflowId);
  assert.notEqual(rerun.runId, failed.runId, 'a new run, not the failed one');
  assert.equal(rerun.recipe.commit, sha);
});

test("a branch run at its commit publishes a signed branch image; the printed verify command is the workers', not the client's", async () => {
  const { sha } = await recipeSideCommit(world, scratch);
  // A client whose config names another public key and asks for the transparency log: the command
  // must still be the one that verifies what the workers signed.
  const raw = parse(await readFile(world.configFile, 'utf8')) as { streams: Record<string, any> };
  raw.streams[world.stream].signing.publicKeyFile = join(scratch, 'client-only.pub');
  raw.streams[world.stream].signing.tlog = true;
  const clientConfig = join(scratch, 'client.yaml');
  await writeFile(clientConfig, stringify(raw));
  const r = await cli(
    ['run', '--mode', 'branch', '--branch', 'feature/x', '--commit', sha, '--wait', '--json'],
    {},
    clientConfig,
  );
  assert.equal(r.exitCode, 0, r.all);
  const out = JSON.parse(r.stdout);
  assert.equal(out.recipe.commit, sha);
  const tag = branchTag({ branch: 'feature/x', fedora: '43' });
  assert.equal(await digestOf(`${world.info.stream.candidate}:${tag}`), out.candidate.digest);
  assert.ok(out.candidate.verify.includes(world.info.signing.publicKeyFile), out.candidate.verify);
  assert.match(out.candidate.verify, / --insecure-ignore-tlog /);
  const v = await runAsPrinted(out.candidate.verify);
  assert.equal(v.exitCode, 0, `the printed command verifies the branch image:\n${v.all}`);
  assert.ok(await cosignVerifies(out.candidate.ref, world.info.signing.publicKeyFile));
});

test('a workflow_dispatch on a non-default branch builds and tests but does not promote', async () => {
  // New inputs on the configured branch: a main run would promote them.
  const repo = world.info.recipe.git;
  await git(repo, ['commit', '--quiet', '--allow-empty', '-m', `main ${randomBytes(4).toString('hex')}`]);
  const head = await git(repo, ['rev-parse', 'HEAD']);
  const event = join(scratch, 'event.json');
  await writeFile(event, JSON.stringify({ repository: { default_branch: 'main' }, inputs: {} }));
  const stable = `${world.info.stream.stable}:latest`;
  const before = await digestOf(stable);
  const r = await cli(['run', '--wait', '--json'], {
    GITHUB_ACTIONS: 'true',
    GITHUB_REPOSITORY: 'octo/kinoite-zfs',
    GITHUB_SHA: head,
    GITHUB_REF: 'refs/heads/feature/y',
    GITHUB_EVENT_NAME: 'workflow_dispatch',
    GITHUB_EVENT_PATH: event,
    GITHUB_RUN_ID: '3003',
    GITHUB_RUN_ATTEMPT: '1',
  });
  assert.equal(r.exitCode, 0, r.all);
  const out = JSON.parse(r.stdout);
  assert.equal(out.outcome, 'candidate-only', out.message);
  assert.equal(out.recipe.commit, head, 'a main run builds recipe.ref');
  assert.equal(await digestOf(stable), before, 'stable did not move');
});
