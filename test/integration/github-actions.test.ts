/**
 * GitHub Actions as a client: `kinoite-zfs run --wait` as a child process in a simulated Actions
 * environment (GITHUB_* variables, temporary step-summary and output files, planted credentials).
 * Checked independently of the CLI's own report: digests through skopeo, runs through Temporal's
 * visibility API and histories, and a scan of everything recorded for the planted secrets.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Client } from '@temporalio/client';
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
import { streamState, streamWorkflowId } from '../../client/stream-client.ts';
import { ExitCode } from '../../client/exit-codes.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const WORLD = 'gh-actions';
const CLI = join(repoRoot, 'bin', 'kinoite-zfs.js');
// Fresh commits per test execution: finished runs of earlier executions stay in Temporal's visibility.
const SHA_PASS = randomBytes(20).toString('hex');
const SHA_FAIL = randomBytes(20).toString('hex');
const GITHUB_TOKEN = 'ghs_kzTestSecretAAAAbbbbCCCCdddd0123456789';
const REGISTRY_TOKEN = 'kz-registry-secret-5f3c9a1e7b2d4c6e8f0a';

let world: TestWorld;
let configFile: string;
let c: Client;
let worker: { stop: () => Promise<void> } | undefined;
let scratch: string;

/** The `run --json` fields these tests read. */
interface Summary {
  workflowId: string;
  runId: string;
  outcome: string;
  trigger?: string;
  candidate?: { tag: string; digest: string };
  stable?: { digest: string; ref: string };
  url?: string;
}

/** One simulated job: its env, files and what the CLI printed. */
interface Job {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  summaryMd: string;
  outputs: Record<string, string>;
  outputText: string;
  json?: Summary;
}

const jobs: Job[] = [];
const runIds = new Set<string>();

/** Reads the $GITHUB_OUTPUT format as the runner does (name=value lines and name<<DELIM blocks). */
function parseGithubOutput(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== heredoc[2]; i++) body.push(lines[i]!);
      out[heredoc[1]!] = body.join('\n');
    } else {
      const eq = line.indexOf('=');
      out[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return out;
}

/** Runs `kinoite-zfs run --config … --wait --json` as a GitHub Actions job for a push of `sha` to main. */
async function actionsJob(sha: string, runId: number): Promise<Job> {
  const summaryFile = join(scratch, `summary-${runId}.md`);
  const outputFile = join(scratch, `output-${runId}`);
  await writeFile(summaryFile, '');
  await writeFile(outputFile, '');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    GITHUB_REPOSITORY: 'octo/kinoite-zfs-recipe',
    GITHUB_SHA: sha,
    GITHUB_REF: 'refs/heads/main',
    GITHUB_REF_NAME: 'main',
    GITHUB_ACTOR: 'octocat',
    GITHUB_RUN_ID: String(runId),
    GITHUB_RUN_NUMBER: String(runId % 1000),
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_EVENT_NAME: 'push',
    GITHUB_WORKFLOW: 'Build and promote main image',
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_OUTPUT: outputFile,
    GITHUB_TOKEN,
    REGISTRY_TOKEN,
  };
  const r = await execa(process.execPath, [CLI, 'run', '--config', configFile, '--wait', '--json'], {
    cwd: repoRoot,
    env,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: 600_000,
  });
  const outputText = await readFile(outputFile, 'utf8');
  let json: Summary | undefined;
  try {
    json = JSON.parse(r.stdout.trim()) as Summary;
  } catch {
    json = undefined;
  }
  const job: Job = {
    exitCode: r.exitCode,
    stdout: r.stdout,
    stderr: r.stderr,
    summaryMd: await readFile(summaryFile, 'utf8'),
    outputs: parseGithubOutput(outputText),
    outputText,
    json,
  };
  jobs.push(job);
  if (json?.workflowId) runIds.add(json.workflowId);
  return job;
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'gh-actions-'));
  world = await bringUpWorld(WORLD, worldSpec({ versions: [[K1]] }), { fresh: true });
  configFile = world.configFile;
  const config = await loadConfig(configFile);
  c = await connectClient(config);
  worker = await startWorker({ config, configFile });
});

after(async () => {
  await worker?.stop();
  await c?.connection.close();
  await tearDownWorld(world);
  await rm(scratch, { recursive: true, force: true });
});

let first: Job | undefined;

test('a simulated push exits 0 and writes a step summary with the stage table and Web UI link, and outputs whose digests match the registry', async () => {
  const job = (first = await actionsJob(SHA_PASS, 7000000001));
  assert.equal(job.exitCode, ExitCode.Ok, `exit code; stderr:\n${job.stderr}\nstdout:\n${job.stdout}`);
  assert.equal(job.json?.outcome, 'promoted', job.stdout);

  // Step summary: the stage table, a link into the Web UI, a link to the GitHub run.
  const md = job.summaryMd;
  assert.match(md, /^\| Stage \| Status \| Duration \| Detail \|$/m, md);
  for (const stage of ['resolve', 'akmods', 'compose', 'smoke-test', 'promote'])
    assert.match(
      md,
      new RegExp(`^\\| ${stage} \\| .*done.* \\| \\d+\\.\\d s \\|`, 'm'),
      `a done row for ${stage}:\n${md}`,
    );
  const uiUrl = world.info.temporal.uiUrl!;
  const link = new RegExp(`\\]\\((${uiUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/namespaces/[^)]+)\\)`).exec(md);
  assert.ok(link, `a Markdown link into the Web UI (${uiUrl}):\n${md}`);
  assert.equal((await fetch(link[1]!)).status, 200, 'the Web UI serves the linked run');
  assert.ok(
    md.includes('](https://github.com/octo/kinoite-zfs-recipe/actions/runs/7000000001)'),
    'a link to the GitHub run',
  );
  assert.ok(md.includes(K1), 'the kernel');
  assert.match(md, /cosign verify/);

  // Outputs: independent of the CLI's JSON, compare with skopeo.
  const out = job.outputs;
  assert.equal(out.outcome, 'promoted', job.outputText);
  const stableLatest = await digestOf(`${world.info.stream.stable}:latest`);
  assert.match(String(stableLatest), /^sha256:[0-9a-f]{64}$/);
  assert.equal(out['stable-digest'], stableLatest, 'stable-digest is what skopeo says for latest');
  assert.equal(
    out['candidate-digest'],
    await digestOf(`${world.info.stream.candidate}:${job.json!.candidate!.tag}`),
    'candidate-digest is what skopeo says for the candidate tag',
  );
  assert.equal(out['stable-ref'], `${world.info.stream.stable}@${stableLatest}`);
  assert.equal(out['workflow-id'], job.json!.workflowId);
  assert.equal(out['run-url'], link[1]);
});

test('the same simulated push sent twice yields one run', async (t) => {
  if (!first?.json) return t.skip('needs the first push');
  const again = await actionsJob(SHA_PASS, 7000000002);
  assert.equal(again.exitCode, ExitCode.Ok, `exit code; stderr:\n${again.stderr}`);
  assert.equal(again.json?.trigger, 'duplicate', again.stdout);
  assert.equal(again.json?.workflowId, first.json.workflowId, 'the second job follows the first run');
  assert.equal(again.outputs['stable-digest'], first.outputs['stable-digest']);

  // Temporal's own view: one pipeline run for this commit, and the stream recorded the duplicate.
  const query = `WorkflowType = 'pipelineRunWorkflow' AND KzStream = '${world.stream}' AND KzCommit = '${SHA_PASS}'`;
  let count = 0;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    count = (await c.workflow.count(query)).count;
    if (count >= 1) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(count, 1, `one pipeline run in visibility for ${query}`);
  const state = await streamState(c, world.stream);
  const forCommit = state?.triggers.filter((x) => x.commit === SHA_PASS) ?? [];
  assert.deepEqual(forCommit.map((x) => x.status).sort(), ['duplicate', 'started']);
  assert.ok(
    forCommit.every((x) => !x.runWorkflowId || x.runWorkflowId === first!.json!.workflowId),
    JSON.stringify(forCommit),
  );
});

test('a push whose recipe fails the smoke test exits non-zero and reports the failure in the summary and outputs', async () => {
  world = await bringUpWorld(
    WORLD,
    worldSpec({
      versions: [[K1]],
      append: { 'os/Containerfile': `RUN rm -f /usr/lib/modules/${K1}/extra/zfs/zfs.ko\n` },
    }),
  );
  configFile = world.configFile;
  const job = await actionsJob(SHA_FAIL, 7000000003);
  assert.notEqual(job.exitCode, ExitCode.Ok, `exit code; stdout:\n${job.stdout}`);
  assert.equal(job.exitCode, ExitCode.RunFailed, `exit code 1 (run did not succeed); stderr:\n${job.stderr}`);
  assert.equal(job.outputs.outcome, 'failed', job.outputText);
  assert.equal(job.outputs['stable-digest'], '');
  assert.match(job.summaryMd, /FAILED/);
  assert.match(job.summaryMd, /^\| smoke-test \| .*failed/m, job.summaryMd);
  assert.notEqual(job.json?.workflowId, first?.json?.workflowId, 'a different commit is a new run');
});

/**
 * All text in a value, with every byte buffer decoded as UTF-8 (history payloads are bytes). Walks
 * the object itself: JSON.stringify would call the protobuf messages' toJSON, which base64s them.
 */
function decodedJson(value: unknown, seen = new Set<unknown>()): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (typeof value !== 'object') return String(value);
  if (seen.has(value)) return '';
  seen.add(value);
  if (value instanceof Map)
    return [...value.entries()].map(([k, v]) => `${decodedJson(k, seen)}=${decodedJson(v, seen)}`).join('\n');
  if (Array.isArray(value)) return value.map((v) => decodedJson(v, seen)).join('\n');
  return Object.entries(value)
    .map(([k, v]) => `${k}: ${decodedJson(v, seen)}`)
    .join('\n');
}

test('no planted credential or the cosign password reaches the histories, memos, search attributes, step summaries or outputs', async (t) => {
  if (jobs.length === 0 || runIds.size === 0) return t.skip('needs the runs above');
  const password = (await readFile(world.info.signing.passwordFile, 'utf8')).trim();
  assert.ok(password.length >= 4, 'the world has a cosign password to look for');
  const secrets = { GITHUB_TOKEN, REGISTRY_TOKEN, 'cosign password': password };
  const texts: [string, string][] = [];
  for (const id of [...runIds, streamWorkflowId(world.stream)]) {
    const handle = c.workflow.getHandle(id);
    const d = await handle.describe();
    texts.push([`${id} history`, decodedJson(await handle.fetchHistory())]);
    texts.push([`${id} memo`, decodedJson(d.memo ?? {})]);
    texts.push([
      `${id} search attributes`,
      decodedJson({ raw: d.searchAttributes, typed: d.typedSearchAttributes.getAll() }),
    ]);
  }
  for (const [i, j] of jobs.entries()) {
    texts.push(
      [`job ${i} step summary`, j.summaryMd],
      [`job ${i} outputs`, j.outputText],
      [`job ${i} stdout`, j.stdout],
      [`job ${i} stderr`, j.stderr],
    );
  }
  // The scan can fail: the decoded history does hold what the GitHub job sent (the commit and the actor).
  const firstHistory = texts.find(([name]) => name === `${first?.json?.workflowId} history`)?.[1] ?? texts[0]![1];
  assert.ok(
    firstHistory.includes(SHA_PASS) && firstHistory.includes('octocat'),
    'the decoded history holds the GitHub trigger (so the scan reads payloads)',
  );
  const memo = texts.find(([name]) => name === `${first?.json?.workflowId} memo`)?.[1] ?? '';
  assert.ok(
    memo.includes('octo/kinoite-zfs-recipe') && memo.includes('actions/runs/7000000001'),
    `the memo records the GitHub repository and run: ${memo}`,
  );
  for (const [name, text] of texts) {
    for (const [what, secret] of Object.entries(secrets))
      assert.ok(!text.includes(secret), `${name} contains the ${what}`);
  }
});
