/**
 * GitHub Actions glue: context parsing, step summary, outputs file format, trigger; the
 * composite action's structure and script-injection rule; actionlint over the workflows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import {
  githubContext,
  stepSummaryMarkdown,
  githubOutputs,
  formatGithubOutput,
  triggerFromGithub,
  githubPromotionBlock,
  readGithubEvent,
  writeGithubFiles,
  redactSecrets,
  tableCell,
} from '../../client/github.ts';
import type { RunSummary } from '../../client/follow.ts';
import { toolPath } from '../../activities/host.ts';
import { repoRoot } from '../support/harness.ts';

const SHA = 'a'.repeat(20) + '0123456789abcdef0123';

const pushEnv = (over: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  GITHUB_ACTIONS: 'true',
  GITHUB_REPOSITORY: 'octo/kinoite-zfs',
  GITHUB_SHA: SHA,
  GITHUB_REF: 'refs/heads/main',
  GITHUB_REF_NAME: 'main',
  GITHUB_ACTOR: 'octocat',
  GITHUB_RUN_ID: '9876543210',
  GITHUB_RUN_ATTEMPT: '2',
  GITHUB_RUN_NUMBER: '41',
  GITHUB_EVENT_NAME: 'push',
  GITHUB_SERVER_URL: 'https://github.example.com',
  ...over,
});

/** A parser of the $GITHUB_OUTPUT format as the runner reads it (name=value and name<<DELIM blocks). */
function parseGithubOutput(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delim] = heredoc;
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) body.push(lines[i]!);
      assert.ok(i < lines.length, `delimiter ${delim} closes ${name}`);
      out[name!] = body.join('\n');
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `a name=value line: ${line}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

const summary = (over: Partial<RunSummary> = {}): RunSummary & { trigger?: string } => ({
  workflowId: 'run/kinoite-zfs/7',
  runId: 'r-1',
  outcome: 'promoted',
  message: 'Promoted localhost:5000/kinoite/kinoite-zfs@sha256:bb.',
  kernels: ['6.17.7-300.fc43.x86_64', '6.18.5-200.fc43.x86_64'],
  zfsRelease: '2.4.4',
  inputsHash: 'sha256:1234',
  candidate: {
    repo: 'localhost:5000/kinoite/kinoite-zfs-candidate',
    tag: 'abc1234-43',
    digest: `sha256:${'c'.repeat(64)}`,
    ref: `localhost:5000/kinoite/kinoite-zfs-candidate@sha256:${'c'.repeat(64)}`,
  },
  stable: {
    repo: 'localhost:5000/kinoite/kinoite-zfs',
    digest: `sha256:${'c'.repeat(64)}`,
    ref: `localhost:5000/kinoite/kinoite-zfs@sha256:${'c'.repeat(64)}`,
    tags: ['latest', 'stable-43'],
    auditTag: 'stable-43-20261120-7',
  },
  verify: `cosign verify --key /keys/cosign.pub --insecure-ignore-tlog --allow-insecure-registry localhost:5000/kinoite/kinoite-zfs@sha256:${'c'.repeat(64)}`,
  url: 'http://127.0.0.1:8233/namespaces/default/workflows/run%2Fkinoite-zfs%2F7/r-1',
  stages: [
    {
      stage: 'resolve',
      status: 'done',
      startedAt: '2026-11-20T10:00:00.000Z',
      endedAt: '2026-11-20T10:00:02.500Z',
      detail: 'kernels a | b',
    },
    {
      stage: 'akmods',
      status: 'done',
      startedAt: '2026-11-20T10:00:02.500Z',
      endedAt: '2026-11-20T10:01:02.500Z',
      detail: 'line one\nline two',
    },
    {
      stage: 'smoke-test',
      status: 'failed',
      startedAt: '2026-11-20T10:01:02.500Z',
      endedAt: '2026-11-20T10:01:05.000Z',
    },
    { stage: 'promote', status: 'running', startedAt: '2026-11-20T10:01:05.000Z' },
  ],
  trigger: 'started',
  ...over,
});

test('githubContext is undefined outside GitHub Actions (GITHUB_ACTIONS unset or not "true")', () => {
  assert.equal(githubContext({}), undefined);
  assert.equal(githubContext(pushEnv({ GITHUB_ACTIONS: undefined })), undefined);
  assert.equal(githubContext(pushEnv({ GITHUB_ACTIONS: '1' })), undefined);
});

test('githubContext reads a push: repository, sha, ref, actor, run identity and the run URL', () => {
  const ctx = githubContext(pushEnv())!;
  assert.equal(ctx.repository, 'octo/kinoite-zfs');
  assert.equal(ctx.sha, SHA);
  assert.equal(ctx.ref, 'refs/heads/main');
  assert.equal(ctx.refName, 'main');
  assert.equal(ctx.actor, 'octocat');
  assert.equal(ctx.runId, '9876543210');
  assert.equal(ctx.runAttempt, 2);
  assert.equal(ctx.runNumber, 41);
  assert.equal(ctx.eventName, 'push');
  assert.equal(ctx.serverUrl, 'https://github.example.com');
  assert.equal(ctx.runUrl, 'https://github.example.com/octo/kinoite-zfs/actions/runs/9876543210');
  assert.equal(ctx.prNumber, undefined);
});

test('githubContext takes the pull request number from refs/pull/<n>/merge', () => {
  const ctx = githubContext(
    pushEnv({ GITHUB_REF: 'refs/pull/123/merge', GITHUB_REF_NAME: '123/merge', GITHUB_EVENT_NAME: 'pull_request' }),
  )!;
  assert.equal(ctx.prNumber, 123);
  assert.equal(
    githubContext(pushEnv({ GITHUB_REF: 'refs/heads/pull/5/merge' }))!.prNumber,
    undefined,
    'a branch named like a PR ref is not a PR',
  );
});

test('githubContext defaults the server to github.com and drops a GITHUB_SHA that is not a SHA', () => {
  const ctx = githubContext(pushEnv({ GITHUB_SERVER_URL: undefined, GITHUB_SHA: 'main; rm -rf /' }))!;
  assert.equal(ctx.serverUrl, 'https://github.com');
  assert.equal(ctx.runUrl, 'https://github.com/octo/kinoite-zfs/actions/runs/9876543210');
  assert.equal(ctx.sha, '');
});

test('githubContext never copies GITHUB_TOKEN or other variables into the context', () => {
  const ctx = githubContext(pushEnv({ GITHUB_TOKEN: 'ghs_secretvalue123', ACTIONS_RUNTIME_TOKEN: 'rt-secret-456' }))!;
  const text = JSON.stringify(ctx);
  assert.doesNotMatch(text, /ghs_secretvalue123|rt-secret-456/);
});

test('triggerFromGithub records source github, the actor, the commit and the GitHub run', () => {
  const ctx = githubContext(pushEnv())!;
  assert.deepEqual(triggerFromGithub(ctx), {
    source: 'github',
    by: 'octocat',
    commit: SHA,
    github: {
      repository: 'octo/kinoite-zfs',
      ref: 'refs/heads/main',
      runId: '9876543210',
      runUrl: ctx.runUrl,
      eventName: 'push',
    },
  });
  assert.equal(
    'commit' in triggerFromGithub(githubContext(pushEnv({ GITHUB_SHA: '' }))!),
    false,
    'no commit when GITHUB_SHA is missing',
  );
});

test('a pull request maps to its merge commit and number: the commit a PR run builds', () => {
  const ctx = githubContext(
    pushEnv({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_REF: 'refs/pull/12/merge', GITHUB_REF_NAME: '12/merge' }),
  )!;
  assert.equal(ctx.prNumber, 12);
  assert.equal(triggerFromGithub(ctx).commit, SHA);
});

test('githubContext takes the default branch from the event payload that GITHUB_EVENT_PATH names', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kz-gh-event-'));
  try {
    const file = join(dir, 'event.json');
    await writeFile(file, JSON.stringify({ repository: { default_branch: 'trunk' }, inputs: {} }));
    const env = pushEnv({ GITHUB_EVENT_PATH: file });
    assert.equal(githubContext(env, readGithubEvent(env))!.defaultBranch, 'trunk');
    assert.equal(readGithubEvent(pushEnv({ GITHUB_EVENT_PATH: join(dir, 'missing.json') })), undefined);
    assert.equal(githubContext(env)!.defaultBranch, undefined, 'no payload, no default branch');
    assert.equal(githubContext(env, { repository: { default_branch: 7 } })!.defaultBranch, undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a workflow_dispatch promotes only on the default branch; one elsewhere, or where the default branch is unknown, never does', () => {
  const event = { repository: { default_branch: 'main' } };
  const dispatch = (ref: string, ev: unknown = event) =>
    githubContext(pushEnv({ GITHUB_EVENT_NAME: 'workflow_dispatch', GITHUB_REF: ref }), ev)!;
  assert.equal(githubPromotionBlock(dispatch('refs/heads/main')), undefined);
  assert.match(
    githubPromotionBlock(dispatch('refs/heads/feature/x'))!,
    /^a workflow_dispatch on refs\/heads\/feature\/x does not promote: only one on the default branch \(main\) may/,
  );
  assert.match(githubPromotionBlock(dispatch('refs/tags/main'))!, /does not promote/, 'a tag named like the branch');
  assert.match(githubPromotionBlock(dispatch('refs/heads/main', null))!, /default branch \(unknown/);
  // Pushes and pull requests choose no branch by hand: their workflow files decide the mode.
  assert.equal(githubPromotionBlock(githubContext(pushEnv(), event)!), undefined);
  assert.equal(githubPromotionBlock(githubContext(pushEnv({ GITHUB_REF: 'refs/heads/dev' }))!), undefined);
});

test('stepSummaryMarkdown has one table row per stage with status and duration', () => {
  const s = summary();
  const md = stepSummaryMarkdown(s, githubContext(pushEnv()));
  const rows = md.split('\n').filter((l) => /^\| (resolve|akmods|smoke-test|promote) \|/.test(l));
  assert.equal(rows.length, s.stages.length, md);
  assert.match(md, /^\| Stage \| Status \| Duration \| Detail \|$/m);
  assert.match(rows[0]!, /\| 2\.5 s \|/);
  assert.match(rows[1]!, /\| 60\.0 s \|/);
  assert.match(rows[2]!, /failed/);
  assert.match(rows[3]!, /running \| {2}\|/, 'a running stage has no duration');
});

test('stepSummaryMarkdown escapes | and line breaks inside table cells', () => {
  const md = stepSummaryMarkdown(summary());
  const resolve = md.split('\n').find((l) => l.startsWith('| resolve |'))!;
  assert.ok(resolve.includes('kernels a \\| b'), resolve);
  assert.equal(resolve.split(/(?<!\\)\|/).length - 2, 4, `four cells: ${resolve}`);
  const akmods = md.split('\n').find((l) => l.startsWith('| akmods |'))!;
  assert.ok(akmods.includes('line one<br>line two'), akmods);
  assert.equal(tableCell('a|b\r\nc'), 'a\\|b<br>c');
});

test('stepSummaryMarkdown names the outcome, kernels, ZFS release, digests, the cosign command and both links', () => {
  const s = summary();
  const ctx = githubContext(pushEnv())!;
  const md = stepSummaryMarkdown(s, ctx);
  assert.match(md, /^## .* PROMOTED$/m);
  for (const k of s.kernels) assert.ok(md.includes(k), `kernel ${k}`);
  assert.ok(md.includes('`2.4.4`'));
  assert.ok(md.includes(s.candidate!.ref) && md.includes(s.stable!.ref));
  assert.ok(md.includes(`\`\`\`sh\n${s.verify}\n\`\`\``), 'the verify command in a code block');
  assert.ok(md.includes(`](${s.url})`), 'a link to the Web UI');
  assert.ok(md.includes(`](${ctx.runUrl})`), 'a link to the GitHub run');
  const failed = stepSummaryMarkdown(
    summary({ outcome: 'failed', message: 'smoke-test failed: no zfs.ko', stable: undefined, verify: undefined }),
  );
  assert.match(failed, /^## ❌ .* FAILED$/m);
  assert.doesNotMatch(failed, /cosign verify/);
});

test('githubOutputs gives the outcome and digests, with empty strings when absent', () => {
  assert.deepEqual(githubOutputs(summary()), {
    outcome: 'promoted',
    'workflow-id': 'run/kinoite-zfs/7',
    'candidate-digest': `sha256:${'c'.repeat(64)}`,
    'stable-digest': `sha256:${'c'.repeat(64)}`,
    'stable-ref': `localhost:5000/kinoite/kinoite-zfs@sha256:${'c'.repeat(64)}`,
    'run-url': summary().url,
  });
  const failed = githubOutputs(summary({ outcome: 'failed', candidate: undefined, stable: undefined, url: undefined }));
  assert.equal(failed['candidate-digest'], '');
  assert.equal(failed['stable-digest'], '');
  assert.equal(failed['run-url'], '');
});

test('formatGithubOutput writes name=value lines and heredoc blocks for multi-line values that round-trip', () => {
  const record = {
    outcome: 'failed',
    message: 'line 1\nline 2',
    tricky: 'a\nKINOITE_ZFS_EOF\nb',
    trickier: 'x\nKINOITE_ZFS_EOF_1\nKINOITE_ZFS_EOF\ny',
    empty: '',
  };
  const text = formatGithubOutput(record);
  assert.match(text, /^outcome=failed$/m);
  assert.match(text, /^message<<\S+$/m);
  assert.deepEqual(parseGithubOutput(text), record);
  assert.equal(formatGithubOutput(record), text, 'deterministic');
});

test('formatGithubOutput refuses a name that would corrupt the file', () => {
  assert.throws(() => formatGithubOutput({ 'a=b': 'x' }), /not valid/);
  assert.throws(() => formatGithubOutput({ 'a\nb': 'x' }), /not valid/);
});

test('redactSecrets replaces values of secret-looking variables only', () => {
  const env = {
    GITHUB_TOKEN: 'ghs_abcdefgh12345',
    COSIGN_PASSWORD: 'pw-0123456789',
    TEMPORAL_ADDRESS: 'temporal:7233',
    SHORT_TOKEN: 'abc',
  };
  assert.equal(
    redactSecrets('t=ghs_abcdefgh12345 p=pw-0123456789 a=temporal:7233 s=abc', env),
    't=*** p=*** a=temporal:7233 s=abc',
  );
});

test('writeGithubFiles appends the summary and outputs only to the files that are set', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gh-files-'));
  try {
    const summaryFile = join(dir, 'summary.md');
    const outputFile = join(dir, 'output');
    await writeFile(outputFile, 'earlier=1\n');
    const env = pushEnv({
      GITHUB_STEP_SUMMARY: summaryFile,
      GITHUB_OUTPUT: outputFile,
      GITHUB_TOKEN: 'ghs_planted0123456789',
    });
    const s = summary({ message: 'oops ghs_planted0123456789 leaked' });
    const written = await writeGithubFiles(s, env);
    assert.deepEqual(written, { summaryFile, outputFile });
    const md = await readFile(summaryFile, 'utf8');
    assert.match(md, /\| Stage \| Status/);
    assert.doesNotMatch(md, /ghs_planted/);
    const out = parseGithubOutput(await readFile(outputFile, 'utf8'));
    assert.equal(out.earlier, '1', 'appends, never truncates');
    assert.equal(out.outcome, 'promoted');
    assert.equal(out['stable-digest'], s.stable!.digest);
    const none = await writeGithubFiles(s, pushEnv());
    assert.deepEqual(none, {});
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ---- the composite action ----

interface ActionStep {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  shell?: string;
  env?: Record<string, string>;
  with?: Record<string, string>;
  if?: string;
}
interface ActionFile {
  name: string;
  description: string;
  inputs: Record<string, { description?: string; required?: boolean; default?: string }>;
  outputs: Record<string, { description?: string; value?: string }>;
  runs: { using: string; steps: ActionStep[] };
}

const loadAction = async () =>
  parse(await readFile(join(repoRoot, 'deploy', 'github', 'action.yml'), 'utf8')) as ActionFile;

/** Problems with an action file: structure, undocumented inputs/outputs, expressions inside run scripts. */
function actionProblems(a: ActionFile): string[] {
  const problems: string[] = [];
  if (!a.name) problems.push('no name');
  if (!a.description) problems.push('no description');
  if (a.runs?.using !== 'composite') problems.push(`runs.using is ${a.runs?.using}, not composite`);
  for (const [k, v] of Object.entries(a.inputs ?? {}))
    if (!v?.description) problems.push(`input ${k} has no description`);
  const ids = new Set((a.runs?.steps ?? []).map((s) => s.id).filter(Boolean));
  for (const [k, v] of Object.entries(a.outputs ?? {})) {
    if (!v?.description) problems.push(`output ${k} has no description`);
    const m = /^\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}$/.exec(v?.value ?? '');
    if (!m) problems.push(`output ${k} is not mapped from a step output`);
    else if (!ids.has(m[1])) problems.push(`output ${k} refers to unknown step ${m[1]}`);
  }
  for (const [i, s] of (a.runs?.steps ?? []).entries()) {
    if (s.run !== undefined) {
      if (!s.shell) problems.push(`step ${s.name ?? i} has no shell (required in composite actions)`);
      if (s.run.includes('${{')) problems.push(`step ${s.name ?? i} interpolates an expression into its run script`);
    }
    for (const [where, map] of [
      ['env', s.env],
      ['with', s.with],
    ] as const) {
      for (const value of Object.values(map ?? {})) {
        for (const m of String(value).matchAll(/inputs\.([\w-]+)/g))
          if (!(m[1]! in (a.inputs ?? {}))) problems.push(`step ${s.name ?? i} ${where} uses undeclared input ${m[1]}`);
      }
    }
  }
  return problems;
}

test('the composite action is well formed: documented inputs and outputs, outputs mapped from its steps', async () => {
  const a = await loadAction();
  assert.deepEqual(actionProblems(a), []);
  for (const input of [
    'config',
    'stream',
    'mode',
    'branch',
    'pr',
    'lock',
    'rebuild-akmods',
    'promote',
    'artifacts',
    'wait',
    'working-directory',
  ])
    assert.ok(input in a.inputs, `input ${input}`);
  assert.equal(a.inputs.wait!.default, 'true');
  for (const output of ['outcome', 'candidate-digest', 'stable-digest', 'run-url'])
    assert.ok(output in a.outputs, `output ${output}`);
  const run = a.runs.steps.find((s) => s.id === 'run')!;
  assert.match(run.run!, /bin\/kinoite-zfs\.js" "\$\{args\[@\]\}"/, 'runs the CLI with an argument array');
});

test('the composite action passes every input to its scripts through env only', async () => {
  const a = await loadAction();
  const script = a.runs.steps
    .filter((s) => s.run)
    .map((s) => s.run)
    .join('\n');
  assert.doesNotMatch(script, /\$\{\{/);
  const envValues = a.runs.steps.flatMap((s) => Object.values(s.env ?? {}));
  for (const input of ['config', 'mode', 'branch', 'pr', 'lock', 'temporal-api-key', 'temporal-tls-cert']) {
    assert.ok(
      envValues.some((v) => v.includes(`inputs.${input}`)),
      `input ${input} reaches the script through env`,
    );
  }
});

test('the action check rejects a run script that interpolates an input (so the check can fail)', async () => {
  const a = await loadAction();
  const bad: ActionFile = structuredClone(a);
  bad.runs.steps.push({ name: 'echo branch', shell: 'bash', run: 'echo "${{ inputs.branch }}"' });
  bad.outputs['x'] = { description: 'x', value: '${{ steps.nope.outputs.x }}' };
  const problems = actionProblems(bad);
  assert.ok(
    problems.some((p) => /interpolates an expression/.test(p)),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => /unknown step nope/.test(p)),
    problems.join('\n'),
  );
});

test('the run script builds the right CLI arguments for each mode and refuses a non-numeric PR', async () => {
  const a = await loadAction();
  const script = a.runs.steps.find((s) => s.id === 'run')!.run!;
  const dir = await mkdtemp(join(tmpdir(), 'gh-action-'));
  try {
    // A stand-in CLI that prints its arguments and the TLS environment, one per line.
    await mkdir(join(dir, 'bin'));
    await writeFile(
      join(dir, 'bin', 'kinoite-zfs.js'),
      'console.log(JSON.stringify({ args: process.argv.slice(2), cert: process.env.TEMPORAL_TLS_CERT ?? null, key: process.env.TEMPORAL_TLS_KEY ?? null, api: process.env.TEMPORAL_API_KEY ?? null, pem: process.env.KZ_TLS_KEY_PEM ?? null, mode: process.env.TEMPORAL_TLS_KEY ? (require("fs").statSync(process.env.TEMPORAL_TLS_KEY).mode & 0o777).toString(8) : null }));\n',
    );
    await writeFile(join(dir, 'package.json'), '{"type":"commonjs"}');
    const base = {
      KZ_HOME: dir,
      KZ_CONFIG: 'kinoite-zfs.yaml',
      KZ_STREAM: '',
      KZ_MODE: 'main',
      KZ_BRANCH: '',
      KZ_PR: '',
      KZ_LOCK: '',
      KZ_REBUILD_AKMODS: 'false',
      KZ_PROMOTE: 'true',
      KZ_ARTIFACTS: '',
      KZ_WAIT: 'true',
      KZ_ADDRESS: '',
      KZ_NAMESPACE: '',
      KZ_WEB_URL: '',
      KZ_API_KEY: '',
      KZ_TLS_CERT_PEM: '',
      KZ_TLS_KEY_PEM: '',
      KZ_TLS_CA_PEM: '',
      RUNNER_TEMP: dir,
      PATH: process.env.PATH,
    };
    const runScript = (env: Record<string, string>) =>
      execa('bash', ['-c', script], { cwd: dir, env: { ...base, ...env }, extendEnv: false, reject: false });
    const parsed = async (env: Record<string, string>) => {
      const r = await runScript(env);
      assert.equal(r.exitCode, 0, r.stderr + r.stdout);
      return JSON.parse(r.stdout) as {
        args: string[];
        cert: string | null;
        key: string | null;
        api: string | null;
        pem: string | null;
        mode: string | null;
      };
    };
    assert.deepEqual((await parsed({})).args, ['run', '--config', 'kinoite-zfs.yaml', '--mode', 'main', '--wait']);
    assert.deepEqual(
      (
        await parsed({
          KZ_REBUILD_AKMODS: 'true',
          KZ_PROMOTE: 'false',
          KZ_LOCK: 'ci/inputs.lock.json',
          KZ_STREAM: 's1',
        })
      ).args,
      [
        'run',
        '--config',
        'kinoite-zfs.yaml',
        '--stream',
        's1',
        '--mode',
        'main',
        '--lock',
        'ci/inputs.lock.json',
        '--rebuild-akmods',
        '--no-promote',
        '--wait',
      ],
    );
    assert.deepEqual(
      (await parsed({ KZ_LOCK: 'ci/inputs.lock.json', KZ_ARTIFACTS: 'artifacts' })).args,
      [
        'run',
        '--config',
        'kinoite-zfs.yaml',
        '--mode',
        'main',
        '--lock',
        'ci/inputs.lock.json',
        '--promote',
        '--wait',
        '--artifacts',
        'artifacts',
      ],
      'a replay dispatched with promote_to_stable=true asks to promote (a replay does not by default)',
    );
    const hostile = '$(touch pwned)`id`; echo x';
    assert.deepEqual(
      (await parsed({ KZ_MODE: 'branch', KZ_BRANCH: hostile })).args,
      ['run', '--config', 'kinoite-zfs.yaml', '--mode', 'branch', '--branch', hostile, '--wait'],
      'a hostile branch name stays one argument',
    );
    assert.deepEqual(await readdir(dir).then((f) => f.includes('pwned')), false, 'nothing ran from the branch name');
    assert.deepEqual((await parsed({ KZ_MODE: 'pr', KZ_PR: '42', KZ_WAIT: 'false' })).args, [
      'run',
      '--config',
      'kinoite-zfs.yaml',
      '--mode',
      'pr',
      '--pr',
      '42',
    ]);
    const badPr = await runScript({ KZ_MODE: 'pr', KZ_PR: '42; rm -rf ~' });
    assert.equal(badPr.exitCode, 2);
    assert.match(badPr.stdout, /::error .*mode pr needs the pr input as a number/);
    const badMode = await runScript({ KZ_MODE: 'release' });
    assert.equal(badMode.exitCode, 2);
    const tls = await parsed({
      KZ_TLS_CERT_PEM: '-----BEGIN CERTIFICATE-----\nMIIcert\n-----END CERTIFICATE-----',
      KZ_TLS_KEY_PEM: '-----BEGIN PRIVATE KEY-----\nMIIkey\n-----END PRIVATE KEY-----',
      KZ_API_KEY: 'api-key-123456',
    });
    assert.ok(
      tls.cert?.startsWith(dir) && tls.key?.startsWith(dir),
      `PEM files under RUNNER_TEMP: ${tls.cert} ${tls.key}`,
    );
    assert.equal(tls.mode, '600', 'the key file is private');
    assert.equal(tls.pem, null, 'the PEM contents are not left in the CLI environment');
    assert.equal(tls.api, 'api-key-123456');
    assert.equal(
      (await readdir(dir)).some((f) => f.startsWith('kinoite-zfs-tls.')),
      false,
      'the TLS folder is removed when the step ends',
    );
    const half = await runScript({ KZ_TLS_CERT_PEM: 'cert only' });
    assert.equal(half.exitCode, 2, 'a certificate without a key is refused');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ---- actionlint ----

test('actionlint passes on .github/workflows (which also checks the inputs given to ./deploy/github)', async () => {
  const files = (await readdir(join(repoRoot, '.github', 'workflows')))
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join('.github', 'workflows', f));
  assert.ok(files.length >= 3, `workflow files: ${files.join(', ')}`);
  const r = await execa(toolPath('actionlint'), ['-no-color', ...files], { cwd: repoRoot, reject: false });
  assert.equal(r.exitCode, 0, `actionlint:\n${r.stdout}\n${r.stderr}`);
});

test('actionlint rejects a workflow with an unknown action input and an injected expression (so the lint can fail)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gh-lint-'));
  try {
    await mkdir(join(dir, '.github', 'workflows'), { recursive: true });
    await mkdir(join(dir, 'deploy', 'github'), { recursive: true });
    await writeFile(
      join(dir, 'deploy', 'github', 'action.yml'),
      await readFile(join(repoRoot, 'deploy', 'github', 'action.yml'), 'utf8'),
    );
    const bad = [
      'name: bad',
      'on: push',
      'jobs:',
      '  build:',
      '    runs-on: ubuntu-latest',
      '    steps:',
      '      - uses: ./deploy/github',
      '        with:',
      '          no-such-input: x',
      '      - run: echo "${{ github.event.head_commit.message }}"',
      '',
    ].join('\n');
    await writeFile(join(dir, '.github', 'workflows', 'bad.yml'), bad);
    await execa('git', ['init', '-q'], { cwd: dir });
    const r = await execa(toolPath('actionlint'), ['-no-color', '.github/workflows/bad.yml'], {
      cwd: dir,
      reject: false,
    });
    assert.notEqual(r.exitCode, 0, 'actionlint fails');
    assert.match(r.stdout, /no-such-input/);
    assert.match(r.stdout, /potentially untrusted/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
