/**
 * Benchmark: what the pipeline's registry-side shortcuts save, as ratios against the naive way,
 * both measured in the same run on the same world (machines are noisy: compare ratios, never
 * absolute times).
 *
 *   node --import tsx scripts/bench.ts [--world DIR] [--quick] [--fresh] [--keep-up]
 *
 * --world DIR  world folder to bring up or reuse (default .state/test-worlds/bench)
 * --quick      skip the slow naive sides that pull/build with podman, buildah and skopeo
 * --fresh      remove the world first (the full-run row is then measured again)
 * --keep-up    leave the world's registry running afterwards
 *
 * Prints a Markdown table and writes it to test/output/bench.md. See docs/benchmarks.md.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { randomUUID } from 'node:crypto';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { MockActivityEnvironment } from '@temporalio/testing';
import { worldUp, worldDown } from '../world/world.ts';
import { ensureTemporal, ensureRegistry, stopRegistry } from '../world/services.ts';
import { loadConfig } from '../client/config-file.ts';
import { triggerStream, waitForRun } from '../client/stream-client.ts';
import { repoRoot, worldSpec, startWorker, client as temporalClient, type TestWorld } from '../test/support/harness.ts';
import { RegistryClient } from '../activities/registry-http.ts';
import { Host } from '../activities/host.ts';
import { resolveActivities } from '../activities/resolve.ts';
import { smokeTestActivities } from '../activities/smoke-test.ts';
import { promotionActivities } from '../activities/promotion.ts';
import { scanLayers } from '../activities/layer-reader.ts';
import { pushImage, scratchImage } from '../activities/podman.ts';
import { LayerScan, wantsModuleContent } from '../core/layers.ts';
import { cacheLabels } from '../core/cache.ts';
import { digestRef } from '../core/refs.ts';
import type { PipelineResult } from '../core/pipeline.ts';
import { Client as TemporalClient, Connection, type Client } from '@temporalio/client';

const K1 = '6.17.7-300.fc43.x86_64';
const K2 = '6.18.5-200.fc43.x86_64';

/** One side of a measurement. */
interface Side {
  bytes: number;
  requests: number;
  seconds: number;
  /** How the numbers were obtained, for the notes under the table. */
  how: string;
}

/** One row of the table. */
interface Row {
  name: string;
  ours: Side;
  naive: Side | undefined;
  note?: string;
}

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

// ------------------------------------------------------------------ registry log

interface LogEntry {
  method: string;
  uri: string;
  status: number;
  /** Response body bytes the registry sent (http.response.written). */
  written: number;
}

/** Size of a registry log, as a mark (characters: the log is ASCII). */
async function logMark(file: string): Promise<number> {
  return (await readFile(file, 'utf8').catch(() => '')).length;
}

/** Completed requests of a registry log between two marks. */
async function logEntries(file: string, since: number, until?: number): Promise<LogEntry[]> {
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

/** Traffic between two marks per the registry's own log. */
interface Traffic {
  requests: number;
  writes: number;
  /** Bytes the registry served (response bodies). */
  down: number;
  /** Bytes the registry received: sizes of blobs whose upload completed plus pushed manifests. */
  up: number;
}

/**
 * Sums a log slice. The log does not record request body sizes, so uploaded bytes are the sizes
 * (HEAD, Content-Length) of the blobs whose upload completed and of the manifests pushed; a
 * cross-repository mount (POST ?mount= answered 201) moves no bytes.
 */
async function traffic(host: string, entries: LogEntry[]): Promise<Traffic> {
  let up = 0;
  for (const e of entries) {
    if (e.method === 'PUT' && e.status === 201) {
      const blob = /^\/v2\/(.+)\/blobs\/uploads\/.*[?&]digest=([^&]+)/.exec(e.uri);
      const manifest = /^\/v2\/(.+)\/manifests\/([^?]+)$/.exec(e.uri);
      if (blob) up += await contentLength(`http://${host}/v2/${blob[1]}/blobs/${decodeURIComponent(blob[2]!)}`);
      else if (manifest) up += await contentLength(`http://${host}/v2/${manifest[1]}/manifests/${manifest[2]}`);
    }
  }
  const writes = entries.filter((e) => e.method !== 'GET' && e.method !== 'HEAD').length;
  return { requests: entries.length, writes, down: entries.reduce((n, e) => n + e.written, 0), up };
}

async function contentLength(url: string): Promise<number> {
  const res = await fetch(url, {
    method: 'HEAD',
    headers: {
      Accept:
        'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json',
    },
  });
  return res.ok ? Number(res.headers.get('content-length') ?? 0) : 0;
}

/** Runs `fn` and returns its result, wall seconds and the registry log slice it caused. */
async function observed<T>(
  logFile: string,
  host: string,
  fn: () => Promise<T>,
): Promise<{ value: T; seconds: number; traffic: Traffic }> {
  const mark = await logMark(logFile);
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const until = await logMark(logFile);
  return { value, seconds, traffic: await traffic(host, await logEntries(logFile, mark, until)) };
}

// ------------------------------------------------------------------ world

/** Brings the world in `dir` up (as the test harness does, but in any folder). */
async function bringUp(dir: string, fresh: boolean): Promise<TestWorld> {
  const temporal = await ensureTemporal();
  const name = basename(dir);
  if (fresh) {
    await worldDown({ dir }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    // The stream remembers its last release in Temporal, not in the folder: without this the
    // first run of the fresh world would end as unchanged.
    const connection = await Connection.connect({ address: temporal.address });
    try {
      await new TemporalClient({ connection }).workflow
        .getHandle(`stream/${name}`)
        .terminate('fresh bench world')
        .catch(() => undefined);
    } finally {
      await connection.close();
    }
  }
  await mkdir(dir, { recursive: true });
  const specFile = join(dir, 'spec.yaml');
  const spec = worldSpec({ versions: [[K1, K2]] });
  await writeFile(specFile, stringify({ name, ...spec, stream: { ...spec.stream, name } }));
  const { info } = await worldUp({ specFile, dir, log: (l) => console.error(`world: ${l}`) });
  const config = await loadConfig(info.configFile);
  return { dir, info, config, configFile: info.configFile, stream: Object.keys(config.streams)[0]! };
}

/** Triggers the stream and waits for the run's result. */
async function streamRun(c: Client, world: TestWorld): Promise<PipelineResult> {
  const requestId = randomUUID();
  const reply = await triggerStream(c, world.config, world.stream, { trigger: { source: 'bench', requestId } });
  const id = reply.runWorkflowId ?? (await waitForRun(c, world.stream, requestId));
  return (await c.workflow.getHandle(id).result()) as PipelineResult;
}

/** The recorded full run of this world (measured once, when the world had no stable image). */
interface FullRunRecord {
  at: string;
  seconds: number;
  traffic: Traffic;
  outcome: string;
}

// ------------------------------------------------------------------ measurements

const fresh = () => new RegistryClient({ insecureHosts: worldInsecure });
let worldInsecure: string[] = [];

function side(stats: RegistryClient['stats'], seconds: number, how: string, extraBytes = 0): Side {
  return { bytes: stats.blobBytesRead + stats.blobBytesWritten + extraBytes, requests: stats.requests, seconds, how };
}

function fromTraffic(t: Traffic, seconds: number, how: string): Side {
  return { bytes: t.down + t.up, requests: t.requests, seconds, how };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  const quick = flag('--quick');
  const dir = resolve(option('--world') ?? join(repoRoot, '.state', 'test-worlds', 'bench'));
  const world = await bringUp(dir, flag('--fresh'));
  const { info } = world;
  const host = info.registry.host;
  const logFile = info.registry.logFile;
  worldInsecure = world.config.registries.insecure;
  const env = { CONTAINERS_CONF: info.containersConf };
  const s = info.stream;
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  const rows: Row[] = [];
  const scratch = await mkdtemp(join(tmpdir(), 'kz-bench-'));
  const c = await temporalClient(world);
  const worker = await startWorker(world.config);
  try {
    // A full run, once per world, so the registry holds a candidate, a stable image and an akmods cache.
    const recordFile = join(dir, 'bench-full-run.json');
    let full: FullRunRecord | undefined = JSON.parse(await readFile(recordFile, 'utf8').catch(() => 'null'));
    if (!full || !(await fresh().resolveDigest(`${s.stable}:latest`))) {
      console.error('bench: full pipeline run (once per world)…');
      const run = await observed(logFile, host, () => streamRun(c, world));
      if (run.value.outcome !== 'promoted')
        throw new Error(
          `The full run ended ${run.value.outcome}: ${run.value.message}; fix the pipeline before benchmarking`,
        );
      full = { at: new Date().toISOString(), seconds: run.seconds, traffic: run.traffic, outcome: run.value.outcome };
      await writeFile(recordFile, JSON.stringify(full, null, 2));
    }

    const probe = fresh();
    const baseImage = await probe.getImage(info.base.reference);
    const base = digestRef(`${host}/${info.base.repository}`, baseImage.indexDigest ?? baseImage.digest);
    const candidateDigest = (await probe.resolveDigest(`${s.stable}:latest`))!;
    const candidate = digestRef(s.candidate, candidateDigest);
    const candidateImage = await probe.getImage(candidate);
    const baseLayerBytes = baseImage.layers.reduce((n, l) => n + l.size, 0);

    // 1. Kernel resolution: memo hit (and the first, streaming scan) vs podman pull + run + find.
    {
      const workDir = join(scratch, 'work');
      const registry = fresh();
      const acts = resolveActivities({
        registry,
        host: new Host({ ...world.config, worker: { ...world.config.worker, workDir } }),
      });
      const envA = new MockActivityEnvironment();
      const first = await timed(() =>
        envA.run(acts.listBaseKernels, { pinned: base, digest: baseImage.indexDigest ?? baseImage.digest }),
      );
      const firstSide = side(
        registry.stats,
        first.seconds,
        `listBaseKernels, empty memo: streams ${first.value.layersRead} base layers`,
      );
      const statsAfterFirst = { ...registry.stats };
      const second = await timed(() =>
        envA.run(acts.listBaseKernels, { pinned: base, digest: baseImage.indexDigest ?? baseImage.digest }),
      );
      if (!second.value.memoised || second.value.layersRead !== 0)
        throw new Error('listBaseKernels did not answer the second call from its memo');
      const memoSide: Side = {
        bytes: registry.stats.blobBytesRead - statsAfterFirst.blobBytesRead,
        requests: registry.stats.requests - statsAfterFirst.requests,
        seconds: second.seconds,
        how: 'listBaseKernels, memo hit: 0 layers read',
      };
      let naive: Side | undefined;
      if (!quick) {
        // An empty, throw-away containers storage: the world built the base locally, so the
        // host's storage already holds its layers and a plain `podman rmi` would not force a pull.
        // vfs needs no mounts, so the folder can simply be removed afterwards.
        const store = await mkdtemp(join(repoRoot, '.state', 'bench-podman-'));
        const storage = ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--storage-driver', 'vfs'];
        try {
          const run = await observed(logFile, host, () =>
            execa(
              'podman',
              [
                ...storage,
                'run',
                '--rm',
                '--tls-verify=false',
                base,
                'find',
                '/usr/lib/modules',
                '-mindepth',
                '1',
                '-maxdepth',
                '1',
                '-type',
                'd',
              ],
              { env },
            ),
          );
          const found = run.value.stdout.split('\n').filter(Boolean).length;
          naive = fromTraffic(
            run.traffic,
            run.seconds,
            `podman run <base@digest> find /usr/lib/modules with an empty containers storage (pull + run; ${found} kernels found)`,
          );
        } finally {
          await rm(store, { recursive: true, force: true });
        }
      }
      rows.push({ name: 'kernel resolution (memo hit)', ours: memoSide, naive });
      rows.push({ name: 'kernel resolution (first scan)', ours: firstSide, naive });
    }

    // 2. Smoke test: only the layers the base lacks vs every candidate layer.
    {
      const registry = fresh();
      const acts = smokeTestActivities({ registry, host: new Host(world.config) });
      const ours = await timed(() =>
        new MockActivityEnvironment().run(acts.smokeTestCandidate, { candidate, base, kernels: [K1, K2] }),
      );
      const naiveClient = fresh();
      const naive = await timed(async () => {
        const scan = new LayerScan({ expectedKernels: [K1, K2] });
        await scanLayers({
          client: naiveClient,
          ref: candidate,
          onLayer: () => scan.beginLayer(),
          wantContent: (_i, e) => wantsModuleContent(e.name),
          onEntry: (_i, e, content) => scan.entry(e, content),
        });
        const result = scan.smoke(candidate);
        if (!result.ok) throw new Error(result.message);
      });
      rows.push({
        name: 'smoke test',
        ours: side(
          registry.stats,
          ours.seconds,
          `smokeTestCandidate: ${ours.value.layersRead} layers read, ${ours.value.layersSkipped} base layers skipped`,
        ),
        naive: side(
          naiveClient.stats,
          naive.seconds,
          `scanLayers over all ${candidateImage.layers.length} candidate layers`,
        ),
      });
    }

    // 3. Akmods merge: registry-side assemble vs download, merge, re-upload.
    {
      const tags = await probe.listTags(s.akmodsCandidate);
      const sources: { repo: string; digest: string; kernel: string }[] = [];
      for (const kernel of [K1, K2]) {
        const tag = tags.find((t) => t.endsWith(`-${kernel}`));
        if (!tag)
          throw new Error(`No per-kernel akmods tag for ${kernel} in ${s.akmodsCandidate} (tags: ${tags.join(', ')})`);
        sources.push({
          repo: s.akmodsCandidate,
          digest: (await probe.resolveDigest(`${s.akmodsCandidate}:${tag}`))!,
          kernel,
        });
      }
      const zfsVersion = info.releaseSource.releases.at(-1)?.version ?? '2.4.4';
      const labels = cacheLabels({ kernels: [K1, K2], zfsVersion });
      const registry = fresh();
      const ours = await observed(logFile, host, () =>
        registry.assembleImage({
          repo: `${host}/bench/akmods-ours-${stamp}`,
          tag: 'main-43',
          layersFrom: sources.map(({ repo, digest }) => ({ repo, digest })),
          labels,
        }),
      );
      let naive: Side | undefined;
      if (!quick) {
        const root = join(scratch, 'akmods-root');
        await mkdir(root, { recursive: true });
        const local = `localhost/kz-bench-akmods:${stamp}`;
        const run = await observed(logFile, host, async () => {
          for (const src of sources) {
            const out = join(scratch, `dl-${src.kernel}`);
            await execa('skopeo', [
              'copy',
              '--src-tls-verify=false',
              `docker://${src.repo}@${src.digest}`,
              `dir:${out}`,
            ]);
            const image = await fresh().getImage(`${src.repo}@${src.digest}`);
            for (const l of image.layers)
              await execa('tar', ['-xf', join(out, l.digest.replace('sha256:', '')), '-C', root]);
          }
          await scratchImage({ dir: root, labels, tag: local, env });
          return pushImage(
            {
              local,
              dest: `${host}/bench/akmods-naive-${stamp}:main-43`,
              digestFile: join(scratch, 'naive.digest'),
              tls: ['--tls-verify=false'],
              env,
            },
            'podman',
          );
        });
        await execa('podman', ['rmi', '--force', local], { env, reject: false });
        naive = fromTraffic(
          run.traffic,
          run.seconds,
          'skopeo copy each per-kernel image to dir:, untar, buildah from scratch + copy + commit, podman push',
        );
      }
      rows.push({
        name: 'akmods merge',
        ours: {
          ...fromTraffic(
            ours.traffic,
            ours.seconds,
            `assembleImage: ${registry.stats.blobsMounted} blobs mounted, config read/written ${registry.stats.blobBytesRead}/${registry.stats.blobBytesWritten} B`,
          ),
          requests: registry.stats.requests,
        },
        naive,
      });
    }

    // 4. Promotion copy: mount + put manifest in one registry vs skopeo copy to another registry.
    {
      const registry = fresh();
      const acts = promotionActivities({ registry, host: new Host(world.config) });
      const ours = await observed(logFile, host, () =>
        acts.copyImageByDigest({ from: candidate, to: `${host}/bench/promote-${stamp}:latest` }),
      );
      if (ours.value.digest !== candidateDigest)
        throw new Error(`copyImageByDigest changed the digest to ${ours.value.digest}`);
      const reupload =
        candidateImage.layers.reduce((n, l) => n + l.size, 0) + (candidateImage.manifest.config.size as number);
      let naive: Side | undefined;
      if (!quick) {
        const otherDir = join(dir, 'bench-other');
        await stopRegistry({ dir: otherDir }).catch(() => undefined);
        await rm(otherDir, { recursive: true, force: true });
        const other = await ensureRegistry({ dir: otherDir });
        try {
          const markSrc = await logMark(logFile);
          const markDst = await logMark(other.logFile);
          const t = await timed(() =>
            execa('skopeo', [
              'copy',
              '--src-tls-verify=false',
              '--dest-tls-verify=false',
              `docker://${candidate}`,
              `docker://${other.host}/bench/promote:latest`,
            ]),
          );
          const src = await traffic(host, await logEntries(logFile, markSrc, await logMark(logFile)));
          const dst = await traffic(other.host, await logEntries(other.logFile, markDst, await logMark(other.logFile)));
          naive = {
            bytes: src.down + dst.up,
            requests: src.requests + dst.requests,
            seconds: t.seconds,
            how: 'skopeo copy docker://candidate@digest to a second registry (no mount possible)',
          };
        } finally {
          await stopRegistry({ dir: otherDir }).catch(() => undefined);
        }
      }
      rows.push({
        name: 'promotion copy',
        ours: {
          ...fromTraffic(
            ours.traffic,
            ours.seconds,
            `copyImageByDigest: ${registry.stats.blobsMounted} blobs mounted, manifest put`,
          ),
          requests: registry.stats.requests,
        },
        naive,
        note: `a re-upload would move ${reupload} B of layers and config`,
      });
    }

    // 5. Unchanged stream run vs the world's full run.
    {
      const run = await observed(logFile, host, () => streamRun(c, world));
      if (run.value.outcome !== 'unchanged')
        throw new Error(`Expected an unchanged run, got ${run.value.outcome}: ${run.value.message}`);
      rows.push({
        name: 'unchanged run (registry writes)',
        ours: {
          bytes: run.traffic.up,
          requests: run.traffic.writes,
          seconds: run.seconds,
          how: `bytes written / write requests to the registry (it also served ${run.traffic.down} B in ${run.traffic.requests} requests)`,
        },
        naive: {
          bytes: full.traffic.up,
          requests: full.traffic.writes,
          seconds: full.seconds,
          how: `the world's full run at ${full.at} (bytes written / write requests; it also served ${full.traffic.down} B)`,
        },
      });
    }

    const table = render(rows, { quick, baseLayerBytes });
    console.log(table);
    await mkdir(join(repoRoot, 'test', 'output'), { recursive: true });
    await writeFile(join(repoRoot, 'test', 'output', 'bench.md'), table + '\n');
  } finally {
    await worker.stop();
    await c.connection.close();
    await rm(scratch, { recursive: true, force: true });
    if (!flag('--keep-up')) await worldDown({ dir }).catch(() => undefined);
  }
}

// ------------------------------------------------------------------ table

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Two significant digits below 0.1 s (a memo hit takes microseconds), else two decimals. */
function fmtSeconds(s: number): string {
  return s < 0.1 ? Number(s.toPrecision(2)).toString() : s.toFixed(2);
}

function fmtSide(x: Side | undefined): string {
  return x ? `${fmtBytes(x.bytes)}, ${x.requests} req, ${fmtSeconds(x.seconds)} s` : 'skipped (--quick)';
}

/** naive/ours; `∞` when ours is zero and naive is not. */
function ratio(naive: number, ours: number): string {
  if (ours === 0) return naive === 0 ? '1' : '∞';
  const r = naive / ours;
  return r >= 100 ? r.toFixed(0) : r.toFixed(1);
}

function render(rows: Row[], opts: { quick: boolean; baseLayerBytes: number }): string {
  const lines = [
    `Benchmark (${new Date().toISOString()}${opts.quick ? ', --quick' : ''}); base image layers ${fmtBytes(opts.baseLayerBytes)}`,
    '',
    '| measurement | ours (bytes, requests, seconds) | naive (bytes, requests, seconds) | ratio naive/ours (bytes) | ratio naive/ours (time) |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${fmtSide(r.ours)} | ${fmtSide(r.naive)} | ${r.naive ? ratio(r.naive.bytes, r.ours.bytes) : '-'} | ${r.naive ? ratio(r.naive.seconds, r.ours.seconds) : '-'} |`,
    ),
    '',
    'How each side was measured:',
    '',
    ...rows.flatMap((r) => [
      `- ${r.name}: ours = ${r.ours.how}; naive = ${r.naive?.how ?? 'skipped'}${r.note ? `; ${r.note}` : ''}`,
    ]),
  ];
  return lines.join('\n');
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
