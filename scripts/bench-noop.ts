/**
 * The no-op nightly: on a world whose base has 50 layers and 2 GB (a rechunked Kinoite image has 60+;
 * 50 is as deep as this host's buildah can build, see docs/world.md),
 * after one full promoted run, a second run with nothing changed. Wall time, registry requests and
 * bytes (the registry's own log), workflow tasks and history events (the Temporal histories of the
 * run workflow and the stream workflow's new events), against the goal (under 2 s and 64 KiB), the
 * physical floor and the original's nightly on the same world.
 *
 *   node --import tsx scripts/bench-noop.ts [--reuse] [--keep]
 *
 * --reuse  keep the world and its stream if they are there (the full run is then skipped when the
 *          stream already has a release); by default the world is made fresh
 * --keep   leave the world's folder and its local images afterwards (they are 2 GB each)
 *
 * Prints the section's Markdown and writes it to test/output/bench-noop.md. See docs/benchmarks.md.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startWorker, client as temporalClient } from '../test/support/harness.ts';
import { RegistryClient } from '../activities/registry-http.ts';
import { rowsTable, type BenchRow, type BenchSection } from './bench-section.ts';
import { isMain, runStandalone } from './bench-results.ts';
import {
  benchSpec,
  bringDown,
  bringUp,
  fmtBytes,
  fmtCost,
  fmtSeconds,
  hasRelease,
  historyCount,
  machine,
  observed,
  originalNightly,
  ratio,
  repoRoot,
  settledHistoryCount,
  streamRun,
  syntheticKernels,
  removeLocalImages,
  type Cost,
  type LogEntry,
} from './bench-world.ts';

const GOAL_SECONDS = 2;
const GOAL_BYTES = 64 * 1024;
const NAME = 'bench-noop';
/** Extra unchanged runs after the measured one, to show the spread on a noisy machine. */
const REPEATS = 3;

/** Groups a log slice by what was asked for: `GET manifest kinoite-main`, `HEAD manifest …`, `GET blob …`. */
function breakdown(entries: LogEntry[]): string {
  const groups = new Map<string, { n: number; bytes: number }>();
  for (const e of entries) {
    const m = /^\/v2\/(.+)\/(manifests|blobs|tags)\/?([^?]*)/.exec(e.uri);
    const key = m
      ? `${e.method} ${m[2] === 'blobs' ? 'blob' : m[2] === 'tags' ? 'tag list' : 'manifest'} ${m[1]}`
      : `${e.method} ${e.uri}`;
    const g = groups.get(key) ?? { n: 0, bytes: 0 };
    g.n += 1;
    g.bytes += e.written;
    groups.set(key, g);
  }
  return [...groups.entries()]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .map(([k, g]) => `${k} ×${g.n} (${fmtBytes(g.bytes)})`)
    .join('; ');
}

/** Runs the no-op nightly benchmark and returns the section for docs/benchmarks.md. */
export async function runNoopBench(opts: { reuse?: boolean; keep?: boolean } = {}): Promise<BenchSection> {
  const spec = benchSpec(NAME, syntheticKernels(2), { layers: 48, size: '2GB' });
  const world = await bringUp(join(repoRoot, '.state', 'test-worlds', NAME), spec, { fresh: !opts.reuse });
  const scratch = await mkdtemp(join(tmpdir(), 'kz-bench-noop-'));
  const buildCache = join(scratch, 'build-cache');
  const config = { ...world.config, worker: { ...world.config.worker, buildCacheDir: buildCache } };
  const c = await temporalClient(world);
  const worker = await startWorker(config);
  const streamId = `stream/${world.stream}`;
  try {
    const registry = new RegistryClient({ insecureHosts: config.registries.insecure });
    const baseManifest = await registry.getManifest(world.info.base.reference);
    const baseImage = await registry.getImage(world.info.base.reference);
    const baseBytes = baseImage.layers.reduce((n, l) => n + l.size, 0);

    // 1. The full promoted run (once).
    let full: (Cost & { tasks: number; events: number }) | undefined;
    if (!(await hasRelease(c, config, world.stream))) {
      console.error('bench-noop: full pipeline run…');
      const r = await observed(world, () => streamRun(c, config, world.stream));
      if (r.value.result.outcome !== 'promoted')
        throw new Error(`The full run ended ${r.value.result.outcome}: ${r.value.result.message}`);
      const h = await historyCount(c, r.value.runWorkflowId);
      full = { ...r, tasks: h.workflowTasks, events: h.events };
    }

    // 2. The unchanged run, and a few more for the spread.
    const runs: (Cost & {
      run: { events: number; workflowTasks: number };
      stream: { events: number; workflowTasks: number };
    })[] = [];
    for (let i = 0; i < 1 + REPEATS; i++) {
      const before = await settledHistoryCount(c, streamId);
      const r = await observed(world, () => streamRun(c, config, world.stream));
      if (r.value.result.outcome !== 'unchanged')
        throw new Error(`Expected an unchanged run, got ${r.value.result.outcome}: ${r.value.result.message}`);
      const after = await settledHistoryCount(c, streamId);
      const run = await historyCount(c, r.value.runWorkflowId);
      runs.push({
        ...r,
        run,
        // A continue-as-new in between would restart the count; the stream's limit is 2000 events.
        stream: { events: after.events - before.events, workflowTasks: after.workflowTasks - before.workflowTasks },
      });
    }
    const noop = runs[0]!;
    const noopBytes = noop.traffic.down + noop.traffic.up;

    // 3. The original's nightly on the same world.
    console.error("bench-noop: the original's nightly…");
    const naive = await originalNightly({ c, world, config, stream: world.stream, buildCacheDir: buildCache, scratch });
    const naiveBytes = naive.traffic.down + naive.traffic.up;

    // 4. The floor: what a run must read to know nothing changed.
    const floorBytes = baseManifest.bytes.length + (baseImage.manifest.config.size as number);
    const floorRequests = 4;

    const met = noop.seconds < GOAL_SECONDS && noopBytes < GOAL_BYTES;
    // The registry logs a HEAD's Content-Length as written, though a HEAD answer has no body.
    const headBytes = noop.traffic.entries.filter((e) => e.method === 'HEAD').reduce((n, e) => n + e.written, 0);
    const rows: BenchRow[] = [
      {
        measurement: 'nightly, nothing changed: wall time',
        ours: `${fmtSeconds(noop.seconds)} s`,
        naive: `${fmtSeconds(naive.seconds)} s`,
        ratios: ratio(naive.seconds, noop.seconds),
      },
      {
        measurement: 'registry requests (writes)',
        ours: `${noop.traffic.requests} (${noop.traffic.writes})`,
        naive: `${naive.traffic.requests} (${naive.traffic.writes})`,
        ratios: ratio(naive.traffic.requests, noop.traffic.requests),
      },
      {
        measurement: 'registry bytes (served + received)',
        ours: `${fmtBytes(noop.traffic.down)} + ${fmtBytes(noop.traffic.up)}`,
        naive: `${fmtBytes(naive.traffic.down)} + ${fmtBytes(naive.traffic.up)}`,
        ratios: ratio(naiveBytes, noopBytes),
      },
      {
        measurement: 'workflow tasks / history events: run workflow',
        ours: `${noop.run.workflowTasks} / ${noop.run.events}`,
        naive: 'a GitHub Actions run of 5 jobs',
        ratios: '-',
      },
      {
        measurement: "workflow tasks / history events: stream workflow's new events",
        ours: `${noop.stream.workflowTasks} / ${noop.stream.events}`,
        naive: '-',
        ratios: '-',
      },
      {
        measurement: 'goal',
        ours: `under ${GOAL_SECONDS} s and ${fmtBytes(GOAL_BYTES)}: ${met ? 'met' : 'missed'}`,
        naive: '-',
        ratios: '-',
      },
      {
        measurement:
          'physical floor: base manifest + config, HEADs of the immutable base tag, builder and nothing else',
        ours: `${fmtBytes(floorBytes)} (manifest ${fmtBytes(baseManifest.bytes.length)}, config ${fmtBytes(baseImage.manifest.config.size as number)}), ${floorRequests} req`,
        naive: '-',
        ratios: `ours/floor bytes ${ratio(noopBytes, floorBytes)}`,
      },
    ];
    const spread = runs
      .slice(1)
      .map((r) => `${fmtSeconds(r.seconds)} s, ${fmtBytes(r.traffic.down + r.traffic.up)}, ${r.traffic.requests} req`)
      .join('; ');
    return {
      title: 'The no-op nightly',
      intro: `
The run a nightly schedule makes most often: nothing changed. The world's base has
${baseImage.layers.length} layers and ${fmtBytes(baseBytes)} (two synthetic kernels on 48 filler layers
of incompressible content, as a rechunked Kinoite image); after one full promoted run, the stream is
triggered again. Bytes and requests come from the registry's own log; workflow tasks and events from
the Temporal histories of the run workflow and of the stream workflow (only the events this run added).

- **the original, nightly**: its scheduled run always rebuilds akmods (reference §4 S4(a)), so the
  original has no no-op nightly. Emulated with real tools on its persistent runner, which already
  holds the base (\`skopeo inspect\`s, \`podman run … find\`, every kernel built again with an empty
  build cache, merged, composed and pushed, \`skopeo copy\` of the whole candidate for its smoke test,
  \`skopeo copy\` promotion into the same registry); signing left out, so it is a lower bound.
`,
      table: rowsTable(rows),
      notes: `
Measured on ${await machine()}. ${met ? 'The goal is met.' : 'The goal is missed.'}
${full ? `The full promoted run before it: ${fmtCost(full)}, ${full.tasks} workflow tasks, ${full.events} events.` : 'The full promoted run was made by an earlier invocation (--reuse).'}
Three more unchanged runs right after: ${spread}.

Where our bytes and requests go: ${breakdown(noop.traffic.entries)}. The registry's log counts a
\`HEAD\`'s Content-Length as written although a \`HEAD\` answer has no body: of our
${fmtBytes(noopBytes)}, ${fmtBytes(headBytes)} are such \`HEAD\`s, so ${fmtBytes(noopBytes - headBytes)}
of bodies went over the wire, against a floor of ${fmtBytes(floorBytes)}.
The kernels come from the worker's memo of the base digest (no layer read); the builder and the
immutable base tag are resolved by \`HEAD\` (no body). The original's nightly
spends its bytes on the smoke test's copy of the whole candidate (${fmtBytes(baseBytes)} of base
layers included) and its time on rebuilding every kernel.
`,
    };
  } finally {
    await worker.stop();
    await c.connection.close();
    await rm(scratch, { recursive: true, force: true });
    await bringDown(world);
    if (!opts.keep) {
      await removeLocalImages(world);
      await rm(world.dir, { recursive: true, force: true });
    }
  }
}

if (isMain(import.meta.url)) {
  runStandalone('noop', 'bench-noop.md', () =>
    runNoopBench({ reuse: process.argv.includes('--reuse'), keep: process.argv.includes('--keep') }),
  );
}
