/**
 * GitHub Actions as a client of the pipeline: read the run's identity from the `GITHUB_*`
 * variables, describe the trigger recorded on the Temporal run, and write the step summary and
 * step outputs. Everything but {@link writeGithubFiles} is pure. Only non-secret variables are
 * read here: never GITHUB_TOKEN or any credential.
 */
import { readFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { SUCCESS_OUTCOMES, type RunSummary } from './follow.ts';

/** Identity of the GitHub Actions job the CLI runs in (non-secret `GITHUB_*` values only). */
export interface GithubContext {
  /** owner/name, from GITHUB_REPOSITORY. */
  repository: string;
  /** Commit of the event (for pull_request: the merge commit), from GITHUB_SHA; '' when not a hex SHA. */
  sha: string;
  /** Full ref, e.g. refs/heads/main or refs/pull/12/merge. */
  ref: string;
  /** Short ref name, e.g. main or 12/merge. */
  refName: string;
  /** Who triggered the workflow. */
  actor: string;
  /** Workflow run id (a large integer, kept as a string). */
  runId: string;
  /** Attempt of this run (1 unless re-run). */
  runAttempt: number;
  /** Run number of this workflow in the repository. */
  runNumber: number;
  /** push, pull_request, workflow_dispatch, ... */
  eventName: string;
  /** https://github.com or a GitHub Enterprise address. */
  serverUrl: string;
  /** Link to the workflow run on GitHub; '' when the repository or run id is missing. */
  runUrl: string;
  /** Pull request number when GITHUB_REF is refs/pull/<n>/merge (or /head). */
  prNumber?: number;
  /** The repository's default branch, from the event payload (repository.default_branch); absent when unknown. */
  defaultBranch?: string;
}

/** A git object name: SHA-1 (40 hex) or SHA-256 (64 hex). */
const SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

const positiveInt = (v: string | undefined): number => {
  const n = Number(v);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
};

/**
 * Reads the GitHub Actions context from the environment (and `event`, the parsed event payload, for
 * the default branch: {@link readGithubEvent}); undefined unless GITHUB_ACTIONS is "true".
 */
export function githubContext(env: NodeJS.ProcessEnv, event?: unknown): GithubContext | undefined {
  if (env.GITHUB_ACTIONS !== 'true') return undefined;
  const repository = env.GITHUB_REPOSITORY ?? '';
  const runId = /^\d+$/.test(env.GITHUB_RUN_ID ?? '') ? env.GITHUB_RUN_ID! : '';
  const serverUrl = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '');
  const ref = env.GITHUB_REF ?? '';
  const sha = (env.GITHUB_SHA ?? '').toLowerCase();
  const pr = /^refs\/pull\/(\d+)\/(?:merge|head)$/.exec(ref)?.[1];
  const defaultBranch = (event as { repository?: { default_branch?: unknown } } | undefined)?.repository
    ?.default_branch;
  return {
    repository,
    sha: SHA.test(sha) ? sha : '',
    ref,
    refName: env.GITHUB_REF_NAME ?? '',
    actor: env.GITHUB_ACTOR ?? '',
    runId,
    runAttempt: positiveInt(env.GITHUB_RUN_ATTEMPT) || 1,
    runNumber: positiveInt(env.GITHUB_RUN_NUMBER),
    eventName: env.GITHUB_EVENT_NAME ?? '',
    serverUrl,
    runUrl: repository && runId ? `${serverUrl}/${repository}/actions/runs/${runId}` : '',
    ...(pr ? { prNumber: Number(pr) } : {}),
    ...(typeof defaultBranch === 'string' && defaultBranch ? { defaultBranch } : {}),
  };
}

/** The event payload GITHUB_EVENT_PATH names, parsed; undefined when it is unset or unreadable. */
export function readGithubEvent(env: NodeJS.ProcessEnv): unknown {
  if (!env.GITHUB_EVENT_PATH) return undefined;
  try {
    return JSON.parse(readFileSync(env.GITHUB_EVENT_PATH, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Why a run started by this GitHub event may not promote, or undefined when it may. A manual
 * `workflow_dispatch` runs the workflow file (and lock file) of whatever branch it was started on,
 * so only one on the default branch may promote; when the default branch is unknown, none does.
 */
export function githubPromotionBlock(ctx: GithubContext): string | undefined {
  if (ctx.eventName !== 'workflow_dispatch') return undefined;
  if (ctx.defaultBranch && ctx.ref === `refs/heads/${ctx.defaultBranch}`) return undefined;
  return `a workflow_dispatch on ${ctx.ref || 'an unknown ref'} does not promote: only one on the default branch (${ctx.defaultBranch ?? 'unknown: the event payload does not name it'}) may; this run builds and tests a candidate only`;
}

/** The trigger a GitHub Actions job records on its run (memo and search attributes). */
export interface GithubTrigger {
  source: 'github';
  /** The GitHub actor. */
  by: string;
  /** The event's commit; absent when GITHUB_SHA was not a SHA (then the trigger is not deduplicated by commit). */
  commit?: string;
  github: { repository: string; ref: string; runId: string; runUrl: string; eventName: string };
}

/** The trigger for a run started from GitHub Actions. */
export function triggerFromGithub(ctx: GithubContext): GithubTrigger {
  return {
    source: 'github',
    by: ctx.actor,
    ...(ctx.sha ? { commit: ctx.sha } : {}),
    github: {
      repository: ctx.repository,
      ref: ctx.ref,
      runId: ctx.runId,
      runUrl: ctx.runUrl,
      eventName: ctx.eventName,
    },
  };
}

/** Escapes a value for one Markdown table cell: `|` would end the cell, a newline the row. */
export function tableCell(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/\r?\n|\r/g, '<br>');
}

/** Escapes text placed inside Markdown link brackets. */
function linkText(value: string): string {
  return value.replace(/([\\[\]])/g, '\\$1').replace(/\r?\n|\r/g, ' ');
}

/** A fenced code block whose fence is longer than any backtick run in `code`. */
function codeBlock(code: string, lang = ''): string {
  const longest = Math.max(0, ...[...code.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}${lang}\n${code}\n${fence}`;
}

/** Seconds between two ISO times, one decimal; '' when the stage has not ended. */
function duration(startedAt: string, endedAt?: string): string {
  if (!endedAt) return '';
  const ms = Date.parse(endedAt) - Date.parse(startedAt);
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : '';
}

const STATUS_MARK: Record<string, string> = {
  done: '✅ done',
  failed: '❌ failed',
  skipped: '⏭️ skipped',
  running: '⏳ running',
};

/**
 * The Markdown step summary of a finished run: outcome headline, a stage table with durations,
 * kernels, ZFS release, candidate and stable digests, the `cosign verify` command, a link to the
 * run in the Temporal Web UI and one to the GitHub run.
 */
export function stepSummaryMarkdown(summary: RunSummary & { trigger?: string }, ctx?: GithubContext): string {
  const ok = SUCCESS_OUTCOMES.includes(summary.outcome);
  const out: string[] = [];
  out.push(`## ${ok ? '✅' : '❌'} kinoite-zfs: ${tableCell(summary.outcome.toUpperCase())}`, '');
  // The message may hold several lines (a failure's cause); a quote keeps it visually one block.
  if (summary.message) out.push(...summary.message.split(/\r?\n/).map((l) => `> ${l}`), '');
  const ui = summary.url ? `[${linkText(summary.workflowId)}](${summary.url})` : `\`${summary.workflowId}\``;
  out.push(`Run ${ui} in the Temporal Web UI${summary.trigger ? ` (trigger: ${tableCell(summary.trigger)})` : ''}.`);
  if (ctx?.runUrl)
    out.push(
      `GitHub run: [${linkText(`${ctx.repository} #${ctx.runNumber || ctx.runId}`)}](${ctx.runUrl})${ctx.sha ? ` at \`${ctx.sha.slice(0, 7)}\`` : ''}.`,
    );
  out.push('');
  if (summary.stages.length) {
    out.push('| Stage | Status | Duration | Detail |', '|---|---|---|---|');
    for (const s of summary.stages) {
      out.push(
        `| ${tableCell(s.stage)} | ${tableCell(STATUS_MARK[s.status] ?? s.status)} | ${duration(s.startedAt, s.endedAt)} | ${tableCell(s.detail ?? '')} |`,
      );
    }
    out.push('');
  }
  const facts: [string, string | undefined][] = [
    ['Kernels', summary.kernels.length ? summary.kernels.map((k) => `\`${k}\``).join(', ') : undefined],
    ['ZFS release', summary.zfsRelease ? `\`${summary.zfsRelease}\`` : undefined],
    ['Inputs hash', summary.inputsHash ? `\`${summary.inputsHash}\`` : undefined],
    ['Candidate', summary.candidate ? `\`${summary.candidate.ref}\`` : undefined],
    [
      'Stable',
      summary.stable
        ? `\`${summary.stable.ref}\` (${summary.stable.tags.map((t) => `\`${t}\``).join(', ')}; audit \`${summary.stable.auditTag}\`)`
        : undefined,
    ],
    [
      'Akmods',
      summary.akmods ? `\`${summary.akmods.ref}\` (built: ${summary.akmods.built.join(', ') || 'none'})` : undefined,
    ],
  ];
  const shown = facts.filter(([, v]) => v !== undefined);
  if (shown.length) {
    out.push('| | |', '|---|---|', ...shown.map(([k, v]) => `| ${k} | ${tableCell(v!)} |`), '');
  }
  if (summary.verify) out.push('Verify the signature of the stable image:', '', codeBlock(summary.verify, 'sh'), '');
  if (summary.candidate?.verify)
    out.push('Verify the signature of the candidate image:', '', codeBlock(summary.candidate.verify, 'sh'), '');
  return `${out.join('\n')}\n`;
}

/** Step outputs of a run (empty strings when absent), for `$GITHUB_OUTPUT`. */
export function githubOutputs(summary: RunSummary): Record<string, string> {
  return {
    outcome: summary.outcome,
    'workflow-id': summary.workflowId,
    'candidate-digest': summary.candidate?.digest ?? '',
    'stable-digest': summary.stable?.digest ?? '',
    'stable-ref': summary.stable?.ref ?? '',
    'run-url': summary.url ?? '',
  };
}

/** Base of the heredoc delimiter; fixed so the file is deterministic. */
const DELIMITER = 'KINOITE_ZFS_EOF';

/**
 * The `$GITHUB_OUTPUT` (or `$GITHUB_ENV`) file format: `name=value` lines, and the heredoc form
 * `name<<DELIM` … `DELIM` for values with a line break. The delimiter is deterministic and
 * extended until it does not occur in the value, so a value cannot end its own block early.
 */
export function formatGithubOutput(record: Record<string, string>): string {
  let text = '';
  for (const [name, value] of Object.entries(record)) {
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name))
      throw new Error(
        `GitHub output name "${name}" is not valid: use letters, digits, "_" and "-" (it is written to $GITHUB_OUTPUT as a key)`,
      );
    if (!/[\r\n]/.test(value)) {
      text += `${name}=${value}\n`;
      continue;
    }
    let delimiter = DELIMITER;
    for (let i = 1; value.includes(delimiter); i++) delimiter = `${DELIMITER}_${i}`;
    text += `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
  }
  return text;
}

/** Environment variable names whose values are treated as secrets and never written to the files. */
const SECRET_NAME = /(TOKEN|PASSWORD|PASSPHRASE|SECRET|API_KEY|PRIVATE_KEY)/i;

/**
 * Replaces the values of secret-looking environment variables (≥ 8 characters) with `***`.
 * Defence in depth: nothing secret should reach a summary, but the step summary, unlike the log,
 * is not masked by GitHub.
 */
export function redactSecrets(text: string, env: NodeJS.ProcessEnv): string {
  const secrets = Object.entries(env)
    .filter(([k, v]) => SECRET_NAME.test(k) && typeof v === 'string' && v.length >= 8)
    .map(([, v]) => v!)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

/**
 * Appends the step summary to `$GITHUB_STEP_SUMMARY` and the outputs to `$GITHUB_OUTPUT`, each
 * only when its variable is set; returns the files written.
 */
export async function writeGithubFiles(
  summary: RunSummary & { trigger?: string },
  env: NodeJS.ProcessEnv,
): Promise<{ summaryFile?: string; outputFile?: string }> {
  const written: { summaryFile?: string; outputFile?: string } = {};
  if (env.GITHUB_STEP_SUMMARY) {
    await appendFile(env.GITHUB_STEP_SUMMARY, redactSecrets(stepSummaryMarkdown(summary, githubContext(env)), env));
    written.summaryFile = env.GITHUB_STEP_SUMMARY;
  }
  if (env.GITHUB_OUTPUT) {
    const outputs = Object.fromEntries(
      Object.entries(githubOutputs(summary)).map(([k, v]) => [k, redactSecrets(v, env)]),
    );
    await appendFile(env.GITHUB_OUTPUT, formatGithubOutput(outputs));
    written.outputFile = env.GITHUB_OUTPUT;
  }
  return written;
}
