/**
 * Many streams: one control worker and one build worker (separate processes, as
 * deploy/kinoite-zfs-worker@.service runs them) serving 1 stream, then 20 streams triggered at once,
 * on the world's synthetic kernels. Every run must promote, then every stream gets an unchanged
 * nightly. Reports, for 1 against 20 streams in the same invocation: the workers' memory, the
 * workflow task latency the SDK's own metrics give (the control worker's worker.metrics endpoint),
 * history events per run and per stream-day. Then one stream is triggered until it continues as new,
 * showing its history stays bounded.
 *
 *   node --import tsx scripts/bench-streams.ts [--streams 20] [--cap 400]
 *
 * --streams  how many streams in the second round (default 20)
 * --cap      most unchanged triggers of the continue-as-new check before giving up (default 400)
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { parse as parseYaml, stringify } from 'yaml';
import type { ChildProcess } from 'node:child_process';
import { bringUpWorld, client, killWorker, spawnWorker, tearDownWorld } from '../test/support/harness.ts';
import { freePort } from '../services/daemon.ts';
import { streamHandle } from '../client/stream-client.ts';
import type { BenchSection } from './bench-section.ts';
import { isMain, runStandalone } from './bench-results.ts';
import {
  benchSpec,
  historyCount,
  multiStreamConfig,
  settledHistoryCount,
  streamRun,
  syntheticKernels,
  terminateStreams,
} from './bench-world.ts';

const log = (s: string) => console.error(`bench-streams: ${s}`);

/** Sum and count of every series of one SDK histogram, and its buckets summed over labels. */
interface Histogram {
  sum: number;
  count: number;
  buckets: Map<number, number>;
}

/** Reads one histogram (all label sets summed) from a Prometheus text exposition. */
export function readHistogram(text: string, name: string): Histogram {
  const h: Histogram = { sum: 0, count: 0, buckets: new Map() };
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const [, metric, labels = '', value] = m;
    const v = Number(value);
    if (metric === `${name}_sum`) h.sum += v;
    else if (metric === `${name}_count`) h.count += v;
    else if (metric === `${name}_bucket`) {
      const le = /le="([^"]+)"/.exec(labels)?.[1];
      if (le) {
        const bound = le === '+Inf' ? Infinity : Number(le);
        h.buckets.set(bound, (h.buckets.get(bound) ?? 0) + v);
      }
    }
  }
  return h;
}

/** The histogram of what was observed between two scrapes. */
export function histogramDelta(after: Histogram, before: Histogram): Histogram {
  const buckets = new Map<number, number>();
  for (const [le, v] of after.buckets) buckets.set(le, v - (before.buckets.get(le) ?? 0));
  return { sum: after.sum - before.sum, count: after.count - before.count, buckets };
}

/** The upper bound of the bucket holding quantile q (what a Prometheus histogram can say). */
export function quantileBound(h: Histogram, q: number): number {
  const want = h.count * q;
  for (const [le, v] of [...h.buckets].sort((a, b) => a[0] - b[0])) if (v >= want) return le;
  return Infinity;
}

/** Peak resident memory of processes while `work` runs, sampled every 200 ms (MiB). */
async function peakRss<T>(
  pids: Record<string, number>,
  work: () => Promise<T>,
): Promise<{ value: T; peak: Record<string, number> }> {
  const peak: Record<string, number> = Object.fromEntries(Object.keys(pids).map((k) => [k, 0]));
  const sample = async () => {
    for (const [k, pid] of Object.entries(pids)) {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak[k] = Math.max(peak[k]!, kb / 1024);
    }
  };
  let done = false;
  const sampler = (async () => {
    while (!done) {
      await sample();
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  try {
    return { value: await work(), peak };
  } finally {
    done = true;
    await sampler;
  }
}

/** What one round (n streams triggered at once) cost. */
interface Round {
  n: number;
  wall: number;
  rss: Record<string, number>;
  scheduleToStart: Histogram;
  execution: Histogram;
  runEvents: number[];
  streamEvents: number[];
}

export async function runStreamsBench(opts: { streams?: number; cap?: number } = {}): Promise<BenchSection> {
  const n = opts.streams ?? 20;
  const cap = opts.cap ?? 400;
  const world = await bringUpWorld('bench-streams', benchSpec('bench-streams', syntheticKernels(2)), { fresh: true });
  // Stream 1 warms the workers up (workflow code loaded, builder image pulled, builds in the host
  // cache) and is not measured; stream 2 is the one-stream point; streams 3…n+2 the n-stream point.
  const multi = await multiStreamConfig(world, n + 2);
  await terminateStreams(multi.streams);
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  const raw = parseYaml(await readFile(join(world.dir, `config-${n + 2}-streams.yaml`), 'utf8')) as {
    worker: Record<string, unknown>;
  };
  const controlConfig = join(world.dir, 'config-streams-control.yaml');
  await writeFile(controlConfig, stringify({ ...raw, worker: { ...raw.worker, metrics: metricsAddress } }));
  const buildConfig = join(world.dir, `config-${n + 2}-streams.yaml`);
  const c = await client(world);
  const workers: ChildProcess[] = [];
  try {
    workers.push(await spawnWorker(controlConfig, join(world.dir, 'worker', 'control.log'), { queues: ['control'] }));
    workers.push(await spawnWorker(buildConfig, join(world.dir, 'worker', 'build.log'), { queues: ['build'] }));
    const pids = { control: workers[0]!.pid!, build: workers[1]!.pid! };
    const scrape = async () => {
      const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
      return {
        s2s: readHistogram(text, 'temporal_workflow_task_schedule_to_start_latency'),
        exec: readHistogram(text, 'temporal_workflow_task_execution_latency'),
      };
    };
    const round = async (streams: string[], expect: 'promoted' | 'unchanged'): Promise<Round> => {
      log(`${streams.length} stream(s), expecting ${expect}…`);
      const before = await scrape();
      // The stream workflow's current execution (an earlier bench run's, terminated, counts as none).
      const execution = async (s: string) => {
        const d = await streamHandle(c, s)
          .describe()
          .catch(() => undefined);
        return d?.status.name === 'RUNNING' ? { runId: d.runId, events: d.historyLength } : undefined;
      };
      const streamBefore = await Promise.all(streams.map(execution));
      const t0 = Date.now();
      const { value: runs, peak } = await peakRss(pids, () =>
        Promise.all(streams.map((s) => streamRun(c, multi.config, s))),
      );
      const wall = (Date.now() - t0) / 1000;
      for (const [i, r] of runs.entries())
        if (r.result.outcome !== expect)
          throw new Error(`${streams[i]}: expected ${expect}, the run ended ${r.result.outcome}: ${r.result.message}`);
      const after = await scrape();
      const runEvents = await Promise.all(runs.map((r) => historyCount(c, r.runWorkflowId).then((h) => h.events)));
      for (const s of streams) await settledHistoryCount(c, `stream/${s}`);
      const streamAfter = await Promise.all(streams.map(execution));
      // Events each stream's execution gained in the round; one that continued as new in it is left out.
      const streamEvents = streamAfter.flatMap((after, i) => {
        const before = streamBefore[i];
        if (!after) return [];
        if (!before) return [after.events];
        return before.runId === after.runId ? [after.events - before.events] : [];
      });
      return {
        n: streams.length,
        wall,
        rss: peak,
        scheduleToStart: histogramDelta(after.s2s, before.s2s),
        execution: histogramDelta(after.exec, before.exec),
        runEvents,
        streamEvents,
      };
    };
    log('warm-up run…');
    await round([multi.streams[0]!], 'promoted');
    const one = [multi.streams[1]!];
    const many = multi.streams.slice(2);
    const first1 = await round(one, 'promoted');
    const firstN = await round(many, 'promoted');
    const night1 = await round(one, 'unchanged');
    const nightN = await round(many, 'unchanged');

    // Continue-as-new: unchanged nightlies of one stream until its workflow continues as new.
    log('continue-as-new check…');
    const handle = streamHandle(c, one[0]!);
    const firstRunId = (await handle.describe()).runId;
    let triggers = 0;
    let maxEvents = 0;
    for (; triggers < cap; triggers++) {
      await streamRun(c, multi.config, one[0]!);
      const d = await handle.describe();
      maxEvents = Math.max(maxEvents, d.historyLength);
      if (d.runId !== firstRunId) break;
    }
    if (triggers >= cap)
      throw new Error(
        `stream/${one[0]} did not continue as new after ${cap} unchanged triggers (history ${maxEvents} events)`,
      );
    const cont = { triggers: triggers + 1, maxEvents, afterEvents: (await handle.describe()).historyLength };

    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const ms = (h: Histogram) => (h.count ? h.sum / h.count : NaN);
    const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '∞');
    const ratio = (a: number, b: number) => (a && Number.isFinite(a) && Number.isFinite(b) ? fmt(b / a, 2) : 'n/a');
    const row = (what: string, a: number, b: number, unit: string, digits = 1) =>
      `| ${what} | ${fmt(a, digits)}${unit} | ${fmt(b, digits)}${unit} | ${ratio(a, b)} |`;
    const rows = [
      `| measurement | 1 stream | ${n} streams | ratio (${n}/1) |`,
      '| --- | --- | --- | --- |',
      row('first runs, all promoted: wall time of the round', first1.wall, firstN.wall, ' s'),
      row('  control worker, peak memory (RSS)', first1.rss.control!, firstN.rss.control!, ' MiB', 0),
      row('  build worker, peak memory (RSS)', first1.rss.build!, firstN.rss.build!, ' MiB', 0),
      row('  workflow task schedule-to-start, mean', ms(first1.scheduleToStart), ms(firstN.scheduleToStart), ' ms'),
      row(
        '  workflow task schedule-to-start, p95 bucket',
        quantileBound(first1.scheduleToStart, 0.95),
        quantileBound(firstN.scheduleToStart, 0.95),
        ' ms',
        0,
      ),
      row('  workflow task execution, mean', ms(first1.execution), ms(firstN.execution), ' ms'),
      row('  history events per run (median)', median(first1.runEvents), median(firstN.runEvents), '', 0),
      row(
        '  events added to the stream per run (median)',
        median(first1.streamEvents),
        median(firstN.streamEvents),
        '',
        0,
      ),
      row('unchanged nightly: wall time of the round', night1.wall, nightN.wall, ' s'),
      row('  control worker, peak memory (RSS)', night1.rss.control!, nightN.rss.control!, ' MiB', 0),
      row('  workflow task schedule-to-start, mean', ms(night1.scheduleToStart), ms(nightN.scheduleToStart), ' ms'),
      row('  history events per run (median)', median(night1.runEvents), median(nightN.runEvents), '', 0),
      row(
        '  events added to the stream per nightly (median)',
        median(night1.streamEvents),
        median(nightN.streamEvents),
        '',
        0,
      ),
    ];
    const perDay = median(nightN.streamEvents);
    return {
      title: 'Many streams',
      intro: `
One control worker and one build worker (separate processes) serve 1 stream, then ${n} streams
triggered at once (their first runs, each building and promoting, then an unchanged nightly each),
on the world's synthetic kernels. Memory is each worker process's peak resident set while the round
ran; workflow task latencies come from the SDK's own histograms on the control worker's
\`worker.metrics\` endpoint (the p95 is the upper bound of the bucket holding it, as Prometheus
histograms give it). There is no "original" column: the original runs one GitHub Actions job per
image and has no long-lived state to measure; the ratio is ${n} streams against 1 in the same run.
`,
      table: rows.join('\n'),
      notes: `
A stream-day with its one nightly trigger adds about ${fmt(perDay, 0)} events to the stream's
history; a stream's first run, from the stream's start to its promotion, adds about ${fmt(median(firstN.streamEvents), 0)}. The stream workflow continues as new when idle past
2000 events: triggered with unchanged nightlies one after another, \`stream/${one[0]}\` continued as new
after ${cont.triggers} triggers, its history never above ${cont.maxEvents} events (${cont.afterEvents} right after),
so a stream's history stays bounded at any age (about ${fmt(2000 / perDay, 0)} quiet days per execution).
Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores with the project's Temporal dev server.
`,
    };
  } finally {
    for (const w of workers) killWorker(w);
    await terminateStreams(multi.streams);
    await c.connection.close();
    await tearDownWorld(world);
  }
}

if (isMain(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  runStandalone('streams', 'bench-streams.md', () => runStreamsBench({ streams: arg('--streams'), cap: arg('--cap') }));
}
