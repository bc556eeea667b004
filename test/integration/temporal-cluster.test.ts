/**
 * A self-hosted Temporal cluster, really run (deploy/temporal/): PostgreSQL in a folder of its own
 * (not the system's cluster), the schema made by temporal-sql-tool, the Temporal server v1.29.1
 * and the Web UI server, all on loopback. Before `kinoite-zfs temporal setup`, `run` and the worker
 * refuse with one line naming the command (no stack trace); setup creates the namespace and the
 * search attributes, and changes nothing the second time; then a full pipeline on a small world
 * promotes through this cluster, the UI shows the run, and everything is torn down.
 * Skipped, saying why, only when the server binaries are not built (scripts/setup.sh builds them).
 *
 * Lane: side
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import {
  bringUpWorld,
  worldSpec,
  spawnWorker,
  killWorker,
  digestOf,
  tearDownWorld,
  repoRoot,
  type TestWorld,
} from '../support/harness.ts';
import { clusterTools, clusterUp, clusterDown, type ClusterInfo } from '../../services/temporal-cluster.ts';
import { isAlive } from '../../services/daemon.ts';
import { temporalBin } from '../../services/tools.ts';
import { SEARCH_ATTRIBUTES } from '../../services/namespace.ts';
import { ExitCode } from '../../client/exit-codes.ts';
import type { RunSummary } from '../../client/follow.ts';

const CLI = join(repoRoot, 'bin', 'kinoite-zfs.js');
const NAMESPACE = 'kinoite-zfs';
const K1 = '6.17.7-300.fc43.x86_64';

let missing: string | undefined;
try {
  clusterTools();
} catch (err) {
  missing = (err as Error).message;
}
if (missing) console.log(`# temporal-cluster: skipped: ${missing}`);

let dir: string;
let cluster: ClusterInfo;
let world: TestWorld;
let worker: ChildProcess | undefined;

/** The CLI from the sources (this checkout), with the world's config. */
function cli(args: string[], timeout = 300_000) {
  return execa(process.execPath, [CLI, ...args, '--config', world.configFile], {
    cwd: repoRoot,
    reject: false,
    stdin: 'ignore',
    timeout,
    env: { KINOITE_ZFS_FROM_SOURCE: '1' },
  });
}

/** Stderr is one line naming the setup command for this namespace, with no stack trace. */
function assertOneLineNamingSetup(stderr: string) {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line:\n${stderr}`);
  assert.match(lines[0]!, new RegExp(`kinoite-zfs temporal setup --namespace ${NAMESPACE}`));
  assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
}

before(async () => {
  if (missing) return;
  dir = await mkdtemp(join(tmpdir(), 'kz-cluster-'));
  cluster = await clusterUp({ dir });
  world = await bringUpWorld('temporal-cluster', worldSpec({ versions: [[K1]] }), {
    fresh: true,
    temporal: { address: cluster.address, namespace: NAMESPACE, webUrl: cluster.uiUrl },
  });
});

after(async () => {
  if (missing) return;
  if (worker) killWorker(worker);
  await tearDownWorld(world);
  if (!dir) return;
  await clusterDown({ dir, remove: true });
  // Nothing of the cluster is left: no process, no folder.
  if (cluster) {
    for (const [part, pid] of [
      ['postgres', cluster.postgres.pid],
      ['temporal server', cluster.server.pid],
      ['web UI', cluster.ui.pid],
    ] as const)
      assert.equal(isAlive(pid), false, `${part} (pid ${pid}) stopped`);
    const left = await execa('pgrep', ['-f', dir], { reject: false });
    assert.equal(left.stdout.trim(), '', `no process still names ${dir}`);
  }
  assert.equal(existsSync(dir), false, `${dir} removed`);
});

test('the cluster serves: PostgreSQL in its own folder, the frontend, and the Web UI', { skip: missing }, async () => {
  assert.ok(existsSync(join(dir, 'pgdata', 'PG_VERSION')), 'PostgreSQL data lives in the cluster folder');
  const health = await execa(temporalBin(), ['operator', 'cluster', 'health', '--address', cluster.address]);
  assert.match(health.stdout, /SERVING/);
  const ui = await fetch(cluster.uiUrl);
  assert.equal(ui.status, 200);
  assert.match(await ui.text(), /<html/i);
});

test('before setup, run and the worker refuse with one line naming the setup command', { skip: missing }, async () => {
  const run = await cli(['run', '--wait'], 60_000);
  assert.equal(run.exitCode, ExitCode.ConfigError, `run exit code; stderr:\n${run.stderr}`);
  assertOneLineNamingSetup(run.stderr);
  assert.match(run.stderr, /does not exist/);

  const w = await execa(process.execPath, [CLI, 'worker', '--config', world.configFile], {
    reject: false,
    stdin: 'ignore',
    timeout: 120_000,
    env: { KINOITE_ZFS_FROM_SOURCE: '1' },
  });
  assert.equal(w.exitCode, ExitCode.ConfigError, `worker exit code; output:\n${w.stdout}\n${w.stderr}`);
  assertOneLineNamingSetup(w.stderr);
  assert.doesNotMatch(w.stdout, /worker serving/, 'the worker did not start');
});

test(
  'temporal setup creates the namespace and search attributes; a second run changes nothing',
  { skip: missing },
  async () => {
    const first = await cli(['temporal', 'setup', '--namespace', NAMESPACE]);
    assert.equal(first.exitCode, ExitCode.Ok, first.stderr);
    assert.match(first.stdout, /created the namespace/);
    assert.match(first.stdout, /added the search attributes/);

    const again = await cli(['temporal', 'setup', '--namespace', NAMESPACE]);
    assert.equal(again.exitCode, ExitCode.Ok, again.stderr);
    assert.match(again.stdout, /nothing changed/);

    // Independently of the project's code: the Temporal CLI sees the attributes and the retention.
    const list = await execa(temporalBin(), [
      'operator',
      'search-attribute',
      'list',
      '--address',
      cluster.address,
      '--namespace',
      NAMESPACE,
      '--output',
      'json',
    ]);
    for (const a of SEARCH_ATTRIBUTES) assert.ok(list.stdout.includes(`"${a.name}"`), `${a.name} registered`);
    const ns = await execa(temporalBin(), [
      'operator',
      'namespace',
      'describe',
      '--address',
      cluster.address,
      '--namespace',
      NAMESPACE,
    ]);
    assert.match(ns.stdout, /720h/);
  },
);

test(
  'a full pipeline run promotes through the self-hosted cluster, and the Web UI shows it',
  { skip: missing },
  async () => {
    worker = await spawnWorker(world.configFile, join(world.dir, 'worker', 'cluster-worker.log'));
    const run = await cli(['run', '--wait', '--json']);
    assert.equal(run.exitCode, ExitCode.Ok, `exit code; stderr:\n${run.stderr}\nstdout:\n${run.stdout}`);
    const summary = JSON.parse(run.stdout) as RunSummary;
    assert.equal(summary.outcome, 'promoted');
    assert.equal(await digestOf(`${world.info.stream.stable}:latest`), summary.stable?.digest);

    // The UI server answers for this namespace from the cluster's frontend (its HTTP API).
    const r = await fetch(
      `${cluster.uiUrl}/api/v1/namespaces/${NAMESPACE}/workflows?query=${encodeURIComponent(`WorkflowId = '${summary.workflowId}'`)}`,
    );
    assert.equal(r.status, 200);
    const body = (await r.json()) as { executions?: { execution?: { workflowId?: string } }[] };
    assert.ok(
      body.executions?.some((e) => e.execution?.workflowId === summary.workflowId),
      `the UI lists ${summary.workflowId}: ${JSON.stringify(body).slice(0, 300)}`,
    );
  },
);
