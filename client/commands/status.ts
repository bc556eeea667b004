/**
 * `kinoite-zfs status [--stream S] [--json] [--limit N]`: the stream's state (current run and its
 * stage, pending approval with the exact command that approves it, last good release, history,
 * hold, vetoes), the stable digests in the registry, and the last runs with their outcomes.
 */
import { parseArgs } from 'node:util';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { connectClient, runUrl } from '../temporal.ts';
import { streamState } from '../stream-client.ts';
import { RegistryClient } from '../../activities/registry-http.ts';
import { resolveAuthFile } from '../../activities/registry-credentials.ts';
import { progressQuery } from '../../workflows/shared.ts';
import type { StreamStateData } from '../../workflows/stream-state.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';
import type { RunProgress } from '../../core/pipeline.ts';
import { holdText, lagText } from '../../core/compat-hold.ts';

/** What `status` reports for one stream (also its `--json` shape). */
interface StreamStatus {
  stream: string;
  /** Each stable tag and the digest it points to now (null: not promoted yet). */
  stable: Record<string, string | null>;
  /** The stream workflow's state, or null before its first run. */
  state: StreamStateData | null;
  /** The exact command that approves the pending candidate, if one waits. */
  approveCommand?: string;
  /** The last runs, newest first. */
  runs: Record<string, unknown>[];
}

/** Prints the state of each stream. */
export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      stream: { type: 'string' },
      json: { type: 'boolean', default: false },
      limit: { type: 'string', default: '5' },
    },
  });
  const config = await loadConfig(values.config ?? defaultConfigPath());
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive integer');
  const client = await connectClient(config);
  const registry = new RegistryClient({
    insecureHosts: config.registries.insecure,
    authFile: resolveAuthFile(config.registries.authFile),
  });
  const out: StreamStatus[] = [];
  for (const stream of values.stream ? [values.stream] : Object.keys(config.streams)) {
    const s = config.streams[stream];
    if (!s)
      throw new UsageError(`unknown stream "${stream}": the config has ${Object.keys(config.streams).join(', ')}`);
    const state = await streamState(client, stream);
    const runs: Record<string, unknown>[] = [];
    const query = `WorkflowType = 'pipelineRunWorkflow' AND KzStream = '${stream}' AND TaskQueue = '${config.temporal.taskQueues.control}'`;
    for await (const wf of client.workflow.list({ query, pageSize: limit })) {
      const get = (name: string) => wf.typedSearchAttributes.getAll().find((p) => p.key.name === name)?.value;
      const row: Record<string, unknown> = {
        workflowId: wf.workflowId,
        status: wf.status.name,
        started: wf.startTime.toISOString(),
        outcome: get('KzOutcome'),
        stage: get('KzStage'),
        kernels: get('KzKernels'),
        zfs: get('KzZfsRelease'),
        candidateDigest: get('KzCandidateDigest'),
        url: runUrl(config, wf.workflowId, wf.runId),
      };
      if (wf.status.name === 'RUNNING') {
        const p = (await client.workflow
          .getHandle(wf.workflowId)
          .query(progressQuery)
          .catch(() => undefined)) as RunProgress | undefined;
        if (p) {
          row.stage = p.stage;
          if (p.waiting?.length) row.waiting = p.waiting;
        }
      }
      runs.push(row);
      if (runs.length >= limit) break;
    }
    const stableTags = state?.lastGood?.stableTags ?? s.images.stableTags.filter((t) => !t.includes('{'));
    const stable: Record<string, string | null> = {};
    for (const tag of stableTags)
      stable[`${s.images.stable}:${tag}`] =
        (await registry.resolveDigest(`${s.images.stable}:${tag}`).catch(() => undefined)) ?? null;
    const pending = state?.parked;
    out.push({
      stream,
      stable,
      state: state ?? null,
      approveCommand: pending
        ? `kinoite-zfs approve --stream ${stream} --digest ${pending.digest} --inputs-hash ${pending.inputsHash} --by <approver>`
        : undefined,
      runs,
    });
  }
  if (values.json) {
    console.log(JSON.stringify(out.length === 1 ? out[0] : out, null, 2));
    return ExitCode.Ok;
  }
  for (const s of out) {
    const st = s.state;
    console.log(
      `stream ${s.stream}${st ? ` (runs ${st.runCounter}${st.hold ? `, HELD by ${st.hold.by}: ${st.hold.reason}` : ''})` : ' (not started yet: kinoite-zfs run --stream ' + s.stream + ')'}`,
    );
    for (const [ref, digest] of Object.entries(s.stable as Record<string, string | null>))
      console.log(`  stable   ${ref} → ${digest ?? '(not promoted yet)'}`);
    if (st?.compatHold)
      console.log(`  HELD BY COMPATIBILITY: ${holdText(st.compatHold)}; stable stays on its last good release`);
    if (st?.lastGood)
      console.log(
        `  last good ${st.lastGood.digest} (${st.lastGood.kind} ${st.lastGood.auditTag}, ${st.lastGood.at}, approved by ${st.lastGood.approvedBy}; kernels ${st.lastGood.kernels.join(', ')}; ZFS ${st.lastGood.zfsVersion})`,
      );
    const current = st?.current;
    if (current) {
      const stage = runs(s).find((r) => r.workflowId === current.runWorkflowId)?.stage;
      console.log(`  running  ${current.runWorkflowId}${stage ? ` (stage ${stage})` : ''}`);
      const waiting = runs(s).find((r) => r.workflowId === current.runWorkflowId)?.waiting as string[] | undefined;
      for (const w of waiting ?? []) console.log(`  WAITING  ${w}`);
    }
    if (st?.next) console.log(`  queued   one follow-up run (${st.next.requestIds.length} trigger(s) coalesced)`);
    if (st?.parked) {
      console.log(
        `  PENDING APPROVAL ${st.parked.runWorkflowId}: ${st.parked.digest} (kernels ${st.parked.kernels.join(', ')}; ZFS ${st.parked.zfsVersion}; until ${st.parked.deadline})`,
      );
      console.log(`    approve: ${s.approveCommand}`);
      console.log(
        `    reject:  kinoite-zfs reject --stream ${s.stream} --digest ${st.parked.digest} --inputs-hash ${st.parked.inputsHash} --reason "..." --by <approver>`,
      );
    }
    for (const w of st?.lastWarnings?.warnings ?? []) console.log(`  WARNING  ${st?.lastWarnings?.run}: ${w}`);
    for (const l of st?.kernelLag ?? []) console.log(`  kernel   ${lagText(l, new Date().toISOString())}`);
    if (st?.notifications)
      console.log(
        `  notify   ${st.notifications.sent} delivered, ${st.notifications.failed} failed${st.notifications.lastFailure ? ` (last failure ${st.notifications.lastFailure.at}: ${st.notifications.lastFailure.event} to webhook ${st.notifications.lastFailure.webhook}: ${st.notifications.lastFailure.error})` : ''}`,
      );
    for (const v of st?.vetoes ?? []) console.log(`  veto     ${v.kind} ${v.value} by ${v.by}: ${v.reason}`);
    for (const n of (st?.notes ?? []).slice(-3)) console.log(`  note     ${n.at} ${n.text}`);
    if (st?.releases?.length)
      console.log(
        `  history  ${[...st.releases]
          .reverse()
          .slice(0, 5)
          .map((r) => `${r.auditTag} ${r.digest.slice(7, 19)} (${r.kind})`)
          .join('; ')}`,
      );
    for (const r of s.runs as Record<string, unknown>[])
      console.log(
        `  run      ${r.workflowId}  ${String(r.status).padEnd(10)} ${r.outcome ?? r.stage ?? ''}  ${r.started}`,
      );
    if (!(s.runs as unknown[]).length) console.log(`  no runs yet: kinoite-zfs run --stream ${s.stream} --wait`);
  }
  return ExitCode.Ok;
}

function runs(s: StreamStatus): Record<string, unknown>[] {
  return s.runs;
}
