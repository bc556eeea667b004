/**
 * The Temporal Web UI shows pipeline runs: after a real `run --wait --json`, headless Chromium
 * (through scripts/screenshot-ui.ts, as an operator would call it) screenshots the workflow list
 * and the run's page into test/output/, and the list's rendered DOM names the run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { bringUpWorld, worldSpec, startWorker, tearDownWorld, repoRoot, type TestWorld } from '../support/harness.ts';
import { loadConfig } from '../../client/config-file.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const WORLD = 'op-web-ui';
const OUT = join(repoRoot, 'test', 'output');
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let world: TestWorld;
let configFile: string;
let worker: { stop: () => Promise<void> } | undefined;
let run: { workflowId: string; runId: string; outcome: string; message: string; url?: string } | undefined;

/** Runs scripts/screenshot-ui.ts as a child process, the way an operator would. */
async function screenshot(args: string[]) {
  const r = await execa(process.execPath, ['--import', 'tsx', join(repoRoot, 'scripts', 'screenshot-ui.ts'), ...args], {
    cwd: repoRoot,
    reject: false,
    timeout: 120_000,
  });
  assert.equal(r.exitCode, 0, `screenshot-ui failed:\n${r.stderr}`);
}

/** Asserts that `file` is a PNG of more than 20 KB. */
async function assertPng(file: string) {
  const bytes = await readFile(file);
  assert.ok(bytes.subarray(0, 8).equals(PNG_SIGNATURE), `${file} starts with the PNG signature`);
  assert.ok(bytes.length > 20 * 1024, `${file} is more than 20 KB (${bytes.length} bytes)`);
}

before(async () => {
  world = await bringUpWorld(WORLD, worldSpec({ versions: [[K1]] }), { fresh: true });
  // Task queues of its own, so other worlds' workers on the same Temporal server never pick up this run.
  const raw = parse(await readFile(world.configFile, 'utf8')) as { temporal: Record<string, unknown> };
  raw.temporal.taskQueues = { control: `${WORLD}-control`, build: `${WORLD}-build` };
  configFile = join(world.dir, 'web-ui-config.yaml');
  await writeFile(configFile, stringify(raw));
  worker = await startWorker({ config: await loadConfig(configFile), configFile });
  const r = await execa(
    process.execPath,
    [join(repoRoot, 'bin', 'kinoite-zfs.js'), 'run', '--config', configFile, '--wait', '--json'],
    { cwd: repoRoot, reject: false, stdin: 'ignore', timeout: 600_000 },
  );
  assert.equal(r.exitCode, 0, `run --wait --json failed:\n${r.stderr}\n${r.stdout}`);
  run = JSON.parse(r.stdout);
});

after(async () => {
  await worker?.stop();
  await tearDownWorld(world);
});

test('the Web UI workflow list is screenshotted and its rendered DOM names the finished run', async () => {
  assert.equal(run?.outcome, 'promoted', run?.message);
  const uiUrl = world.info.temporal.uiUrl;
  assert.ok(uiUrl, 'the world names its Web UI');
  const png = join(OUT, 'web-ui-workflows.png');
  const dom = join(OUT, 'web-ui-workflows.html');
  await screenshot(['--url', `${uiUrl}/namespaces/default/workflows`, '--out', png, '--dom', dom]);
  await assertPng(png);
  const html = await readFile(dom, 'utf8');
  assert.ok(html.includes(run!.workflowId), `the rendered list contains ${run!.workflowId}`);
  assert.ok(html.includes(run!.runId), `the rendered list contains run id ${run!.runId}`);
});

test('the run page from `run --json` is screenshotted and its rendered DOM shows the run completed', async () => {
  assert.ok(run?.url, 'run --json printed a Web UI url');
  const png = join(OUT, 'web-ui-run.png');
  const dom = join(OUT, 'web-ui-run.html');
  await screenshot(['--url', run!.url!, '--out', png, '--dom', dom]);
  await assertPng(png);
  const html = await readFile(dom, 'utf8');
  assert.ok(html.includes(run!.workflowId), `the run page names ${run!.workflowId}`);
  assert.match(html, /Completed/, 'the run page shows the Completed status');
});
