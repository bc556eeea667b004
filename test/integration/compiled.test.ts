/**
 * The compiled worker and CLI (`npm run build` → dist/) run a real pipeline: a worker started
 * through bin/kinoite-zfs.js loads the prebuilt workflow bundle instead of bundling at start, and
 * `run --wait` from dist/ promotes, then finds the next run unchanged. Builds dist/ first when a
 * source is newer (so it fails, naming the file, only when someone edits a source meanwhile).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
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
import { ExitCode } from '../../client/exit-codes.ts';
import { compiledState } from '../../bin/compiled-state.js';
import { build } from '../../scripts/build.ts';
import type { RunSummary } from '../../client/follow.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const CLI = join(repoRoot, 'bin', 'kinoite-zfs.js');
const NOTICE = /running from TypeScript/;

let world: TestWorld;
let worker: ChildProcess | undefined;
let workerLog: string;

/** `kinoite-zfs run --config … --wait --json` from dist/ (KINOITE_ZFS_FROM_SOURCE unset). */
function run() {
  return execa(process.execPath, [CLI, 'run', '--config', world.configFile, '--wait', '--json'], {
    cwd: repoRoot,
    reject: false,
    stdin: 'ignore',
    timeout: 600_000,
    env: { KINOITE_ZFS_FROM_SOURCE: undefined },
  });
}

before(async () => {
  world = await bringUpWorld('compiled', worldSpec({ versions: [[K1]] }), { fresh: true });
  if (compiledState(repoRoot).state !== 'current') await build();
  workerLog = join(world.dir, 'worker', 'compiled-worker.log');
  worker = await spawnWorker(world.configFile, workerLog);
});

after(async () => {
  if (worker) killWorker(worker);
  await tearDownWorld(world);
});

test('a worker started through the executable runs from dist/ with the prebuilt workflow bundle', async () => {
  const log = await readFile(workerLog, 'utf8');
  assert.doesNotMatch(log, NOTICE, `the worker ran from TypeScript:\n${log}`);
  assert.match(log, /worker serving control .* \(prebuilt workflow bundle\)/);
  assert.doesNotMatch(log, /Workflow bundle created|webpack/i, 'nothing is bundled at start');
});

test('run --wait from dist/ promotes on the compiled worker, and the next run is unchanged', async () => {
  const first = await run();
  assert.doesNotMatch(first.stderr, NOTICE, 'the CLI ran from dist/');
  assert.equal(first.exitCode, ExitCode.Ok, `exit code; stderr:\n${first.stderr}\nstdout:\n${first.stdout}`);
  const summary = JSON.parse(first.stdout) as RunSummary;
  assert.equal(summary.outcome, 'promoted');
  // Independently of the CLI's report: the stable tag points at the digest the run promoted.
  assert.equal(await digestOf(`${world.info.stream.stable}:latest`), summary.stable?.digest);

  const again = await run();
  assert.equal(again.exitCode, ExitCode.Ok, `exit code; stderr:\n${again.stderr}`);
  assert.equal((JSON.parse(again.stdout) as RunSummary).outcome, 'unchanged');
});
