/**
 * What an operator sees: `kinoite-zfs run --wait [--json]` as a child process (exit code, the one
 * JSON object, plain stage lines without a terminal), the run's search attributes through
 * Temporal's visibility API, and a worker that refuses to start when a tool its queues need is
 * missing. Results are checked through the process exit codes, Temporal's API, skopeo and cosign.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import {
  bringUpWorld,
  worldSpec,
  startWorker,
  digestOf,
  tearDownWorld,
  repoRoot,
  type TestWorld,
} from '../support/harness.ts';
import { loadConfig } from '../../client/config-file.ts';
import { connectClient } from '../../client/temporal.ts';
import { ExitCode } from '../../client/exit-codes.ts';
import { toolPath } from '../../activities/host.ts';
import { SearchAttr } from '../../workflows/shared.ts';
import type { Config } from '../../core/config.ts';
import type { RunSummary } from '../../client/follow.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const K2 = '6.18.5-200.fc43.x86_64';
const WORLD = 'op-operator';
const CLI = join(repoRoot, 'bin', 'kinoite-zfs.js');

let world: TestWorld;
/** The world's config with task queues of its own, so other worlds' workers on the same server never pick up these runs. */
let configFile: string;
let config: Config;
let c: Client;
let worker: { stop: () => Promise<void> } | undefined;

/** The `run --json` summary. */
type Summary = RunSummary;

/** `kinoite-zfs <args>` as a child process with piped stdio (so no terminal). */
function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; extendEnv?: boolean; timeout?: number } = {}) {
  return execa(process.execPath, [CLI, ...args], {
    cwd: repoRoot,
    reject: false,
    stdin: 'ignore',
    timeout: opts.timeout ?? 300_000,
    env: opts.env,
    extendEnv: opts.extendEnv ?? true,
  });
}

/** Parses stdout that must be exactly one JSON object. */
function oneJsonObject(stdout: string): Summary {
  const text = stdout.trim();
  assert.equal(text.split('\n').length, 1, `stdout is one line of JSON, got:\n${stdout}`);
  const value = JSON.parse(text) as unknown;
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), 'stdout is a JSON object');
  return value as Summary;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let passing: Summary | undefined;

before(async () => {
  world = await bringUpWorld(WORLD, worldSpec({ versions: [[K1]] }), { fresh: true });
  configFile = world.configFile;
  config = await loadConfig(configFile);
  c = await connectClient(config);
  worker = await startWorker({ config, configFile });
});

after(async () => {
  await worker?.stop();
  await c?.connection.close();
  await tearDownWorld(world);
});

test('run --wait without a terminal prints plain stage lines to stderr in pipeline order', async () => {
  const r = await cli(['run', '--config', configFile, '--wait']);
  assert.equal(r.exitCode, ExitCode.Ok, `exit code; stderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
  for (const [name, text] of [
    ['stderr', r.stderr],
    ['stdout', r.stdout],
  ] as const) {
    assert.doesNotMatch(text, /\r/, `${name} has no carriage return (spinner)`);
    assert.doesNotMatch(text, /\x1b/, `${name} has no escape sequence`);
  }
  const lines = r.stderr.split('\n');
  const started = (stage: string) => lines.indexOf(`▶ ${stage}`);
  const finished = (stage: string) => lines.findIndex((l) => l.startsWith(`✔ ${stage} (`));
  const order = ['resolve', 'akmods', 'compose', 'smoke-test', 'promote'];
  for (const stage of order) {
    assert.ok(started(stage) >= 0, `a "▶ ${stage}" line; stderr:\n${r.stderr}`);
    assert.ok(finished(stage) > started(stage), `"✔ ${stage}" comes after "▶ ${stage}"; stderr:\n${r.stderr}`);
  }
  for (let i = 1; i < order.length; i++) {
    assert.ok(
      started(order[i - 1]!) < started(order[i]!),
      `▶ ${order[i - 1]} before ▶ ${order[i]}; stderr:\n${r.stderr}`,
    );
  }
  assert.match(r.stdout, /PROMOTED/, 'the human summary goes to stdout');
});

test('run --wait --json on a passing world exits 0 and prints one JSON object whose digests match the registry and whose verify command verifies', async () => {
  // A new base version: the inputs change, so the stream builds and promotes instead of answering "unchanged".
  world = await bringUpWorld(WORLD, worldSpec({ versions: [[K1], [K1]] }));
  const r = await cli(['run', '--config', configFile, '--wait', '--json']);
  assert.equal(r.exitCode, ExitCode.Ok, `exit code; stderr:\n${r.stderr}`);
  const s = oneJsonObject(r.stdout);
  passing = s;
  assert.equal(s.outcome, 'promoted', s.message);
  assert.deepEqual(s.kernels, [K1]);
  assert.equal(s.zfsRelease, '2.4.4');
  const stableLatest = await digestOf(`${world.info.stream.stable}:latest`);
  assert.match(String(s.candidate?.digest), /^sha256:[0-9a-f]{64}$/);
  assert.equal(s.candidate?.digest, s.stable?.digest, 'candidate and stable digests are equal');
  assert.equal(s.stable?.digest, stableLatest, 'the stable digest is what skopeo says for latest');
  assert.equal(
    await digestOf(`${world.info.stream.candidate}:${s.candidate!.tag}`),
    s.candidate!.digest,
    'the candidate tag holds the candidate digest',
  );

  const uiUrl = world.info.temporal.uiUrl!;
  assert.ok(s.url?.startsWith(`${uiUrl}/namespaces/default/workflows/`), `url points into the Web UI: ${s.url}`);
  assert.ok(
    s.url!.includes(encodeURIComponent(s.workflowId)) && s.url!.endsWith(`/${s.runId}`),
    `url names the run: ${s.url}`,
  );
  const page = await fetch(s.url!);
  assert.equal(page.status, 200, 'the Web UI serves the run page');

  assert.equal(typeof s.verify, 'string');
  const argv = s.verify!.split(/\s+/).filter(Boolean);
  assert.equal(argv[0], 'cosign', `verify is a cosign command: ${s.verify}`);
  assert.ok(
    argv.includes(s.stable!.ref) && s.stable!.ref.endsWith(`@${stableLatest}`),
    `verify names the stable digest: ${s.verify}`,
  );
  const v = await execa(toolPath('cosign'), argv.slice(1), { reject: false, timeout: 60_000 });
  assert.equal(v.exitCode, 0, `the printed verify command passes:\n${v.stderr}`);
});

test('a finished run carries its stream, stage, kernels, ZFS release, outcome and candidate digest as search attributes', async (t) => {
  if (!passing) return t.skip('needs the passing run of the previous test');
  const query = `WorkflowId = '${passing.workflowId}' AND KzOutcome = 'promoted' AND KzStage = 'done'`;
  let found: WorkflowExecutionInfo | undefined;
  const deadline = Date.now() + 10_000;
  while (!found && Date.now() < deadline) {
    for await (const wf of c.workflow.list({ query })) if (wf.runId === passing.runId) found = wf;
    if (!found) await new Promise((r) => setTimeout(r, 500));
  }
  assert.ok(found, `visibility lists the run with: ${query}`);
  const a = found.typedSearchAttributes;
  assert.equal(a.get(SearchAttr.stream), world.stream);
  assert.equal(a.get(SearchAttr.stage), 'done');
  assert.deepEqual(a.get(SearchAttr.kernels), [K1]);
  assert.equal(a.get(SearchAttr.zfsRelease), '2.4.4');
  assert.equal(a.get(SearchAttr.outcome), 'promoted');
  assert.equal(a.get(SearchAttr.candidateDigest), passing.candidate!.digest);
});

/** A folder with symlinks to only the named tools (found on the current PATH), for a PATH that lacks the others. */
async function pathWith(tools: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'op-path-'));
  for (const tool of tools) {
    const where = (await execa('which', [tool])).stdout.trim();
    await symlink(where, join(dir, tool));
  }
  return dir;
}

/** A TCP listener that counts connections, standing in for Temporal to show whether a worker tried to connect. */
async function connectionCounter(): Promise<{ address: string; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server: Server = createServer((socket) => {
    n++;
    socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { address: `127.0.0.1:${port}`, count: () => n, close: () => new Promise((r) => server.close(() => r())) };
}

test('a build worker without podman exits 2 naming podman and the build queue, without connecting to Temporal', async () => {
  const bin = await pathWith(['git', 'buildah']);
  const temporal = await connectionCounter();
  try {
    const t0 = Date.now();
    const r = await cli(['worker', '--config', configFile, '--queues', 'build'], {
      env: { ...process.env, PATH: bin, TEMPORAL_ADDRESS: temporal.address },
      extendEnv: false,
      timeout: 30_000,
    });
    const seconds = (Date.now() - t0) / 1000;
    assert.equal(r.exitCode, ExitCode.ConfigError, `exit code; stderr:\n${r.stderr}`);
    assert.match(r.stderr, /podman \(needed by the build queue\)/);
    assert.doesNotMatch(r.stderr, /buildah \(needed|git \(needed/, 'only the missing tool is named');
    assert.doesNotMatch(r.stdout, /worker serving/);
    assert.ok(seconds < 10, `exits within seconds (took ${seconds.toFixed(1)}s)`);
    assert.equal(temporal.count(), 0, 'no connection to Temporal was attempted');
  } finally {
    await temporal.close();
    await rm(bin, { recursive: true, force: true });
  }
});

test('a control worker whose cosign is missing exits 2 naming cosign and the control queue, without connecting to Temporal', async () => {
  const temporal = await connectionCounter();
  try {
    const r = await cli(['worker', '--config', configFile, '--queues', 'control'], {
      env: { KINOITE_ZFS_COSIGN: '/nonexistent/cosign', TEMPORAL_ADDRESS: temporal.address },
      timeout: 30_000,
    });
    assert.equal(r.exitCode, ExitCode.ConfigError, `exit code; stderr:\n${r.stderr}`);
    assert.match(r.stderr, /cosign \(needed by the control queue\)/);
    assert.doesNotMatch(r.stderr, /git \(needed/);
    assert.equal(temporal.count(), 0, 'no connection to Temporal was attempted');
  } finally {
    await temporal.close();
  }
});

test('a worker with every tool does connect to the Temporal address (so the two checks above can fail)', async () => {
  const temporal = await connectionCounter();
  let child: ResultPromise | undefined;
  try {
    child = execa(process.execPath, [CLI, 'worker', '--config', configFile, '--queues', 'build'], {
      cwd: repoRoot,
      reject: false,
      stdin: 'ignore',
      env: { TEMPORAL_ADDRESS: temporal.address },
    });
    const deadline = Date.now() + 20_000;
    while (temporal.count() === 0 && Date.now() < deadline && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(temporal.count() > 0, 'the worker connected to the given Temporal address');
  } finally {
    child?.kill('SIGKILL');
    await child;
    await temporal.close();
  }
});

test('run --wait --json on a world whose recipe drops one kernel module exits 1 with outcome failed naming that kernel', async () => {
  world = await bringUpWorld(
    WORLD,
    worldSpec({
      versions: [[K1, K2]],
      append: { 'os/Containerfile': `RUN rm -f /usr/lib/modules/${K2}/extra/zfs/zfs.ko\n` },
    }),
  );
  configFile = world.configFile;
  const r = await cli(['run', '--config', configFile, '--wait', '--json']);
  assert.equal(r.exitCode, ExitCode.RunFailed, `exit code; stderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
  const s = oneJsonObject(r.stdout);
  assert.equal(s.outcome, 'failed');
  assert.match(s.message, new RegExp(escape(K2)), `the message names ${K2}: ${s.message}`);
  assert.doesNotMatch(s.message, new RegExp(escape(K1)), 'only the kernel without a module is named');
});
