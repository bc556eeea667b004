/**
 * Shared parts of the growth and no-op benchmarks (scripts/bench-growth.ts, scripts/bench-noop.ts):
 * bringing a world up from an inline spec, reading the registry's own log, running the stream,
 * reading Temporal histories, emulating the original pipeline's nightly run with real tools, and
 * formatting numbers.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { execa } from 'execa';
import { parse as parseYaml, stringify } from 'yaml';
import { Client, Connection } from '@temporalio/client';
import protoPackage from '@temporalio/proto';
import { worldUp, worldDown } from '../world/world.ts';
import { ensureTemporal } from '../world/services.ts';
import { loadConfig } from '../client/config-file.ts';
import { startPipelineRun } from '../client/temporal.ts';
import { triggerStream, waitForRun, streamState } from '../client/stream-client.ts';
import { repoRoot, type TestWorld } from '../test/support/harness.ts';
import { RegistryClient } from '../activities/registry-http.ts';
import { digestRef } from '../core/refs.ts';
import type { PipelineResult } from '../core/pipeline.ts';
import type { Config } from '../core/config.ts';

export { repoRoot };

// ------------------------------------------------------------------ registry log

/** One completed request of the registry's log. */
export interface LogEntry {
  method: string;
  uri: string;
  status: number;
  /** Response body bytes the registry sent (http.response.written). */
  written: number;
}

/** Size of a registry log, as a mark (characters: the log is ASCII). */
export async function logMark(file: string): Promise<number> {
  return (await readFile(file, 'utf8').catch(() => '')).length;
}

/** Completed requests of a registry log between two marks. */
export async function logEntries(file: string, since: number, until?: number): Promise<LogEntry[]> {
  const text = (await readFile(file, 'utf8')).slice(since, until);
  const out: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!/msg="response completed/.test(line)) continue;
    const method = /http\.request\.method=(\w+)/.exec(line)?.[1];
    const m = /http\.request\.uri=(?:"([^"]+)"|(\S+))/.exec(line);
    const uri = m?.[1] ?? m?.[2];
    if (!method || !uri) continue;
    out.push({
      method,
      uri,
      status: Number(/http\.response\.status=(\d+)/.exec(line)?.[1] ?? 0),
      written: Number(/http\.response\.written=(\d+)/.exec(line)?.[1] ?? 0),
    });
  }
  return out;
}

/** Traffic of a log slice, per the registry's own log. */
export interface Traffic {
  requests: number;
  /** PUT, POST, PATCH, DELETE. */
  writes: number;
  /** Bytes the registry served (response bodies). */
  down: number;
  /** Bytes the registry received: sizes of the blobs whose upload completed plus the manifests pushed. */
  up: number;
  /** Cross-repository mounts answered 201. */
  mounts: number;
  entries: LogEntry[];
}

const MANIFEST_ACCEPT =
  'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';

async function contentLength(url: string): Promise<number> {
  const res = await fetch(url, { method: 'HEAD', headers: { Accept: MANIFEST_ACCEPT } });
  return res.ok ? Number(res.headers.get('content-length') ?? 0) : 0;
}

/**
 * Sums a log slice. The log does not record request body sizes, so uploaded bytes are the sizes
 * (HEAD, Content-Length) of the blobs whose upload completed and of the manifests pushed; a
 * cross-repository mount (POST ?mount= answered 201) moves no bytes.
 */
export async function traffic(host: string, entries: LogEntry[]): Promise<Traffic> {
  let up = 0;
  for (const e of entries) {
    if (e.method === 'PUT' && e.status === 201) {
      const blob = /^\/v2\/(.+)\/blobs\/uploads\/.*[?&]digest=([^&]+)/.exec(e.uri);
      const manifest = /^\/v2\/(.+)\/manifests\/([^?]+)$/.exec(e.uri);
      if (blob) up += await contentLength(`http://${host}/v2/${blob[1]}/blobs/${decodeURIComponent(blob[2]!)}`);
      else if (manifest) up += await contentLength(`http://${host}/v2/${manifest[1]}/manifests/${manifest[2]}`);
    }
  }
  return {
    requests: entries.length,
    writes: entries.filter((e) => e.method !== 'GET' && e.method !== 'HEAD').length,
    down: entries.reduce((n, e) => n + e.written, 0),
    up,
    mounts: entries.filter((e) => e.method === 'POST' && e.status === 201 && /[?&]mount=/.test(e.uri)).length,
    entries,
  };
}

/** What one measured thing cost. */
export interface Cost {
  seconds: number;
  traffic: Traffic;
}

/** Runs `fn` and returns its result, wall seconds and the registry traffic of that window. */
export function observed<T>(world: TestWorld, fn: () => Promise<T>): Promise<Cost & { value: T }> {
  return observedLog(world.info.registry.logFile, world.info.registry.host, fn);
}

/** {@link observed} for a registry given by its log file and host. */
export async function observedLog<T>(
  logFile: string,
  host: string,
  fn: () => Promise<T>,
): Promise<Cost & { value: T }> {
  const mark = await logMark(logFile);
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  // The registry writes its log line after the response: give the last line a moment to land.
  await new Promise((r) => setTimeout(r, 150));
  const until = await logMark(logFile);
  return { value, seconds, traffic: await traffic(host, await logEntries(logFile, mark, until)) };
}

/** Adds costs measured one after the other. */
export function sumCosts(costs: Cost[]): Cost {
  return {
    seconds: costs.reduce((n, c) => n + c.seconds, 0),
    traffic: {
      requests: costs.reduce((n, c) => n + c.traffic.requests, 0),
      writes: costs.reduce((n, c) => n + c.traffic.writes, 0),
      down: costs.reduce((n, c) => n + c.traffic.down, 0),
      up: costs.reduce((n, c) => n + c.traffic.up, 0),
      mounts: costs.reduce((n, c) => n + c.traffic.mounts, 0),
      entries: costs.flatMap((c) => c.traffic.entries),
    },
  };
}

// ------------------------------------------------------------------ world

/** `n` synthetic kernel releases of Fedora 43, oldest first. */
export function syntheticKernels(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `6.18.${i + 1}-200.fc43.x86_64`);
}

/** A world spec with one base version holding `kernels`, optionally with filler layers. */
export function benchSpec(name: string, kernels: string[], filler?: { layers: number; size: string }) {
  return {
    name,
    base: {
      repository: 'ublue-os/kinoite-main',
      versions: [{ version: '43.20261201.0', kernels }],
      ...(filler ? { filler } : {}),
    },
    builder: { repository: 'ublue-os/devcontainer' },
    zfs: { releases: [{ version: '2.4.4', linuxMin: '4.18', linuxMax: '7.2' }] },
    stream: { name, zfsLine: '2.4', owner: 'kinoite', promotion: 'auto' },
  };
}

/** Terminates running stream workflows of these streams (left by an earlier run of a world). */
export async function terminateStreams(names: string[]): Promise<void> {
  const temporal = await ensureTemporal();
  const connection = await Connection.connect({ address: temporal.address });
  try {
    const c = new Client({ connection });
    for (const name of names) {
      for await (const wf of c.workflow.list({
        query: `ExecutionStatus = 'Running' AND (WorkflowId = 'stream/${name}' OR WorkflowId STARTS_WITH 'stream/${name}/')`,
      })) {
        await c.workflow
          .getHandle(wf.workflowId)
          .terminate('fresh bench world')
          .catch(() => undefined);
      }
    }
  } finally {
    await connection.close();
  }
}

/**
 * Brings the world in `dir` up from `spec` (the stream is named after the folder). With `fresh`,
 * the folder and the stream's workflow are removed first, so the first run builds and promotes.
 */
export async function bringUp(dir: string, spec: object, opts: { fresh?: boolean } = {}): Promise<TestWorld> {
  await ensureTemporal();
  const name = basename(dir);
  if (opts.fresh) {
    await worldDown({ dir }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    await terminateStreams([name]);
  }
  await mkdir(dir, { recursive: true });
  const specFile = join(dir, 'spec.yaml');
  const s = spec as { stream?: Record<string, unknown> };
  await writeFile(specFile, stringify({ ...spec, name, stream: { ...s.stream, name } }));
  const { info } = await worldUp({ specFile, dir, log: (l) => console.error(`world ${name}: ${l}`) });
  const config = await loadConfig(info.configFile);
  return { dir, info, config, configFile: info.configFile, stream: Object.keys(config.streams)[0]! };
}

/** Stops a world's registry and release source. */
export async function bringDown(world: TestWorld | undefined): Promise<void> {
  if (world) await worldDown({ dir: world.dir }).catch(() => undefined);
}

/**
 * A config with `n` streams that follow the world's base, each publishing to its own repositories
 * (`<owner>/<stream>-sI…`); written next to the world's config. Returns the config and the stream names.
 */
export async function multiStreamConfig(world: TestWorld, n: number): Promise<{ config: Config; streams: string[] }> {
  const raw = parseYaml(await readFile(world.configFile, 'utf8')) as {
    streams: Record<string, Record<string, unknown>>;
  };
  const one = raw.streams[world.stream]!;
  const images = one.images as Record<string, string>;
  const streams: string[] = [];
  const out: Record<string, unknown> = {};
  for (let i = 1; i <= n; i++) {
    const name = `${world.stream}-s${i}`;
    streams.push(name);
    out[name] = {
      ...one,
      images: Object.fromEntries(
        Object.entries(images).map(([k, v]) => [k, typeof v === 'string' ? v.replace(world.stream, name) : v]),
      ),
    };
  }
  const file = join(world.dir, `config-${n}-streams.yaml`);
  await writeFile(file, stringify({ ...raw, streams: out }));
  return { config: await loadConfig(file), streams };
}

/** Triggers `stream` and waits for the run's result; returns it with the run's workflow id. */
export async function streamRun(
  c: Client,
  config: Config,
  stream: string,
): Promise<{ result: PipelineResult; runWorkflowId: string }> {
  const requestId = randomUUID();
  const reply = await triggerStream(c, config, stream, { trigger: { source: 'bench', requestId } });
  const runWorkflowId = reply.runWorkflowId ?? (await waitForRun(c, stream, requestId));
  return { result: (await c.workflow.getHandle(runWorkflowId).result()) as PipelineResult, runWorkflowId };
}

/** True when the stream has promoted a release and its stable tag exists. */
export async function hasRelease(c: Client, config: Config, stream: string): Promise<boolean> {
  const s = await streamState(c, stream).catch(() => undefined);
  if (!s?.lastGood) return false;
  const registry = new RegistryClient({ insecureHosts: config.registries.insecure });
  return !!(await registry.resolveDigest(`${config.streams[stream]!.images.stable}:latest`).catch(() => undefined));
}

// ------------------------------------------------------------------ Temporal histories

/** Events and workflow tasks of a workflow's history (the current run). */
export interface HistoryCount {
  events: number;
  workflowTasks: number;
}

/** Counts a workflow's history events and completed workflow tasks. */
export async function historyCount(c: Client, workflowId: string): Promise<HistoryCount> {
  const history = await c.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const completed = protoPackage.temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED;
  return { events: events.length, workflowTasks: events.filter((e) => e.eventType === completed).length };
}

/** Waits until a workflow's history stops growing (its last signal processed), then counts it. */
export async function settledHistoryCount(c: Client, workflowId: string): Promise<HistoryCount> {
  let last = await historyCount(c, workflowId);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 250));
    const now = await historyCount(c, workflowId);
    if (now.events === last.events) return now;
    last = now;
  }
  return last;
}

// ------------------------------------------------------------------ the original's nightly

/**
 * The original pipeline's nightly run on its persistent self-hosted runner, with real tools, in
 * the same world. The nightly always rebuilds akmods (reference §4 S4(a)), so it is never a no-op:
 *
 * 1. S1: `skopeo inspect` of the base, `podman run <base@digest> find /usr/lib/modules` on storage
 *    that already holds the base (the persistent runner), `skopeo inspect` of each immutable tag
 *    candidate and of the builder; S3: `skopeo inspect` of the akmods cache twice (existence, labels).
 * 2. S5-S8: every kernel built again, merged, pushed, then the candidate composed and pushed: our
 *    own stages doing that work (a run with `rebuildAkmods` on a worker whose build cache is empty,
 *    so every kernel's builder runs as the original's `BUILDAH_LAYERS=false` does; promote off).
 * 3. S9: `skopeo copy` of the whole candidate to a `dir:` layout (the original's smoke test reads every layer).
 * 4. S10: `skopeo copy` of the candidate to the stable and audit tags and of the akmods cache (into
 *    bench repositories of the same registry, so the stream's stable tags do not move; blobs mount).
 *
 * Not included: cosign signing (S11, about half a second) and BlueBuild's own overheads, so this
 * is a lower bound of the original. `buildCacheDir` is emptied before the run.
 */
export async function originalNightly(opts: {
  c: Client;
  world: TestWorld;
  config: Config;
  stream: string;
  buildCacheDir: string;
  scratch: string;
}): Promise<Cost & { parts: Record<string, number> }> {
  const { c, world, config, stream } = opts;
  const env = { CONTAINERS_CONF: world.info.containersConf };
  const s = config.streams[stream]!;
  const host = world.info.registry.host;
  const skopeo = (args: string[]) => execa('skopeo', args, { env });
  const inspect = async (ref: string) =>
    JSON.parse((await skopeo(['inspect', '--tls-verify=false', `docker://${ref}`])).stdout) as {
      Digest: string;
      Labels: Record<string, string>;
    };
  const parts: Record<string, number> = {};
  const costs: Cost[] = [];
  const part = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const r = await observed(world, fn);
    parts[name] = r.seconds;
    costs.push(r);
    return r.value;
  };
  // The persistent runner already holds the base: pull it before the measurement.
  const base = await inspect(s.baseImage);
  const basePinned = digestRef(s.baseImage.replace(/:[^:/@]+$/, ''), base.Digest);
  await execa('podman', ['pull', '--quiet', '--tls-verify=false', basePinned], { env });

  await part('resolve and cache check (skopeo, podman run)', async () => {
    const b = await inspect(s.baseImage);
    await execa('podman', podmanKernelScanArgs(basePinned), { env });
    const name = s.baseImage.replace(/:[^:/@]+$/, '');
    const suffix = b.Labels['org.opencontainers.image.version']!.split('.').slice(1).join('.');
    for (const t of [`latest-${suffix}`, `43-${suffix}`]) await inspect(`${name}:${t}`).catch(() => undefined);
    await inspect(s.builderImage);
    for (let i = 0; i < 2; i++) await inspect(`${s.images.akmodsCandidate}:main-43`).catch(() => undefined);
  });
  await rm(opts.buildCacheDir, { recursive: true, force: true });
  await mkdir(opts.buildCacheDir, { recursive: true });
  const run = await part('rebuild every kernel, merge, compose (S4a-S8)', async () => {
    const handle = await startPipelineRun(c, config, {
      stream,
      trigger: { source: 'bench-original-nightly' },
      options: { rebuildAkmods: true, promote: false },
    });
    return (await handle.result()) as PipelineResult;
  });
  if (run.outcome === 'failed')
    throw new Error(`The original-nightly emulation run failed: ${run.message}; fix the world before benchmarking`);
  if (!run.candidate)
    throw new Error(`The original-nightly emulation run made no candidate (${run.outcome}: ${run.message})`);
  const candidateRef = digestRef(run.candidate.repo, run.candidate.digest);
  const dirOut = await mkdtemp(join(opts.scratch, 'candidate-image-smoke-'));
  try {
    await part('smoke test: skopeo copy of the whole candidate (S9)', () =>
      skopeo(['copy', '--src-tls-verify=false', `docker://${candidateRef}`, `dir:${join(dirOut, 'image')}`]),
    );
  } finally {
    await rm(dirOut, { recursive: true, force: true });
  }
  const stamp = randomUUID().slice(0, 8);
  await part('promotion copies (S10)', async () => {
    for (const tag of ['latest', `stable-${stamp}`])
      await skopeo([
        'copy',
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${candidateRef}`,
        `docker://${host}/bench-original/${stream}:${tag}`,
      ]);
    await skopeo([
      'copy',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${s.images.akmodsCandidate}:main-43`,
      `docker://${host}/bench-original/${stream}-akmods:main-43`,
    ]);
  });
  return { ...sumCosts(costs), parts };
}

// ------------------------------------------------------------------ formatting

/** Bytes in B, KiB, MiB or GiB. */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** Two significant digits below 0.1 s, else two decimals. */
export function fmtSeconds(s: number): string {
  return s < 0.1 ? Number(s.toPrecision(2)).toString() : s.toFixed(2);
}

/** naive/ours; `∞` when ours is zero and naive is not. */
export function ratio(naive: number, ours: number): string {
  if (ours === 0) return naive === 0 ? '1' : '∞';
  const r = naive / ours;
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

/** `<bytes>, <requests> req, <seconds> s` of a cost (bytes served plus received). */
export function fmtCost(c: Cost): string {
  return `${fmtBytes(c.traffic.down + c.traffic.up)}, ${c.traffic.requests} req, ${fmtSeconds(c.seconds)} s`;
}

/** Ratios of two costs, bytes and time. */
export function costRatios(naive: Cost, ours: Cost): string {
  return `bytes ${ratio(naive.traffic.down + naive.traffic.up, ours.traffic.down + ours.traffic.up)}, time ${ratio(naive.seconds, ours.seconds)}`;
}

/** The machine, for the notes under a table. */
export async function machine(): Promise<string> {
  const { cpus, totalmem } = await import('node:os');
  return `${cpus().length} cores, ${Math.round(totalmem() / 1024 ** 3)} GiB RAM, ${new Date().toISOString().slice(0, 10)}`;
}

/** Removes the local images a world left in its containers storage: pulled images of its registry, filler and base builds. */
export async function removeLocalImages(world: TestWorld): Promise<void> {
  const env = { CONTAINERS_CONF: world.info.containersConf };
  const { stdout } = await execa('podman', ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'], { env });
  const ids = stdout
    .split('\n')
    .filter(
      (l) =>
        l.includes(world.info.registry.host) ||
        l.includes('kinoite-zfs-world/filler') ||
        world.info.base.versions.some((v) => l.startsWith(`${v.localImage} `)),
    )
    .map((l) => l.split(' ')[1]!);
  if (ids.length) await execa('podman', ['rmi', '--force', ...new Set(ids)], { env, reject: false });
}

/** The original's S1 kernel scan of a base already in local storage: `podman run … find /usr/lib/modules`. */
export function podmanKernelScanArgs(pinnedBase: string): string[] {
  return [
    'run',
    '--rm',
    '--pull=never',
    pinnedBase,
    'find',
    '/usr/lib/modules',
    '-mindepth',
    '1',
    '-maxdepth',
    '1',
    '-type',
    'd',
  ];
}
