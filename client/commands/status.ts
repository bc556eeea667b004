/**
 * `kinoite-zfs status [--stream S] [--json] [--limit N]`: last runs, their outcomes, the current
 * stable digest, and a running run's stage.
 */
import { parseArgs } from 'node:util';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { connectClient, runUrl } from '../temporal.ts';
import { RegistryClient } from '../../activities/registry-http.ts';
import { progressQuery } from '../../workflows/shared.ts';
import { ExitCode } from '../exit-codes.ts';
import type { RunProgress } from '../../core/pipeline.ts';

/** Prints the state of each stream. */
export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, stream: { type: 'string' }, json: { type: 'boolean', default: false }, limit: { type: 'string', default: '5' } } });
  const config = await loadConfig(values.config ?? defaultConfigPath());
  const client = await connectClient(config);
  const registry = new RegistryClient({ insecureHosts: config.registries.insecure, authFile: config.registries.authFile ?? process.env.REGISTRY_AUTH_FILE });
  const out: Record<string, unknown>[] = [];
  for (const stream of values.stream ? [values.stream] : Object.keys(config.streams)) {
    const s = config.streams[stream];
    if (!s) {
      console.error(`unknown stream "${stream}"`);
      return ExitCode.ConfigError;
    }
    const runs: Record<string, unknown>[] = [];
    for await (const wf of client.workflow.list({ query: `WorkflowType = 'pipelineRunWorkflow' AND KzStream = '${stream}'`, pageSize: Number(values.limit) })) {
      const sa = wf.typedSearchAttributes;
      const get = (name: string) => sa.getAll().find((p) => p.key.name === name)?.value;
      const row: Record<string, unknown> = { workflowId: wf.workflowId, status: wf.status.name, started: wf.startTime.toISOString(), outcome: get('KzOutcome'), stage: get('KzStage'), kernels: get('KzKernels'), zfs: get('KzZfsRelease'), candidateDigest: get('KzCandidateDigest'), url: runUrl(config, wf.workflowId, wf.runId) };
      if (wf.status.name === 'RUNNING') {
        const p = (await client.workflow.getHandle(wf.workflowId).query(progressQuery).catch(() => undefined)) as RunProgress | undefined;
        if (p) row.stage = p.stage;
      }
      runs.push(row);
      if (runs.length >= Number(values.limit)) break;
    }
    const stable: Record<string, string | null> = {};
    for (const pattern of s.images.stableTags.filter((t) => !t.includes('{'))) {
      stable[`${s.images.stable}:${pattern}`] = (await registry.resolveDigest(`${s.images.stable}:${pattern}`).catch(() => undefined)) ?? null;
    }
    out.push({ stream, stable, runs });
  }
  if (values.json) {
    console.log(JSON.stringify(out.length === 1 ? out[0] : out, null, 2));
    return ExitCode.Ok;
  }
  for (const s of out) {
    console.log(`stream ${s.stream}`);
    for (const [ref, digest] of Object.entries(s.stable as Record<string, string | null>)) console.log(`  stable ${ref} → ${digest ?? '(not promoted yet)'}`);
    for (const r of s.runs as Record<string, unknown>[]) {
      console.log(`  ${r.workflowId}  ${String(r.status).padEnd(10)} ${r.outcome ?? r.stage ?? ''}  ${r.started}${r.kernels ? `  kernels ${(r.kernels as string[]).join(',')}` : ''}`);
    }
    if (!(s.runs as unknown[]).length) console.log('  no runs yet: kinoite-zfs run --stream ' + s.stream + ' --wait');
  }
  return ExitCode.Ok;
}
