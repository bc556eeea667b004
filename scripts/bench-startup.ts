/**
 * Benchmark: how fast the CLI and the worker start, compiled (`npm run build` → dist/, what
 * bin/kinoite-zfs.js runs while dist/ is current) against the TypeScript sources compiled by tsx at
 * every start (how every command started before dist/ existed), measured in the same run.
 *
 *   node --import tsx scripts/bench-startup.ts [--repeat N] [--keep-up]
 *
 * Brings up the demo world (world/specs/demo.yaml, its world and stream renamed bench-startup so it
 * never shares a stream workflow with the demo) in .state/bench-startup through the CLI, starts a
 * worker, runs the pipeline once, then times `--help`, `config check`, a worker's start, an
 * unchanged `run --wait` end to end and five `run` calls started together. Each cell is the median
 * wall time, with the CPU seconds the process used (less sensitive to a busy machine) in brackets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { parse as parseYaml, stringify } from 'yaml';
import { loadConfig } from '../client/config-file.ts';
import { connectClient } from '../client/temporal.ts';
import { streamState } from '../client/stream-client.ts';
import { compiledState } from '../bin/compiled-state.js';
import { build } from './build.ts';
import { rowsTable, type BenchRow, type BenchSection } from './bench-section.ts';
import { isMain, runStandalone } from './bench-results.ts';

const repo = fileURLToPath(new URL('..', import.meta.url));
const bin = join(repo, 'bin', 'kinoite-zfs.js');
const NOTICE = /running from TypeScript/;

/** Options of {@link runStartupBench}. */
export interface StartupBenchOptions {
  /** Progress lines. @default console.error */
  log?: (line: string) => void;
  /** Timed repetitions of each single command, per side. @default 5 */
  repeat?: number;
  /** Leave the world, its registry and the worker running afterwards. @default false */
  keepUp?: boolean;
  /** The world folder. @default .state/bench-startup */
  dir?: string;
}

/** One timed process: wall seconds and the CPU seconds it (and its children) used. */
interface Timing {
  wall: number;
  cpu: number;
}

/** Which start a command takes: the compiled CLI in dist/, or the sources through tsx. */
type Side = 'dist' | 'tsx';

/** Dist/ changed under the benchmark (someone edited a source): the caller builds and measures again. */
class StaleDuringBench extends Error {}

/** CPU seconds of this process's waited-for children so far (cutime + cstime of /proc/self/stat). */
async function childrenCpu(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 16 and 17 of proc(5), counted from 1; fields[0] here is field 3. Clock ticks: 100 per second.
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (t: Timing) => `${t.wall.toFixed(2)} s (cpu ${t.cpu.toFixed(2)} s)`;
const ratio = (naive: Timing, ours: Timing) =>
  `${(naive.wall / ours.wall).toFixed(1)} (cpu ${(naive.cpu / ours.cpu).toFixed(1)})`;

/** The environment of one side: tsx runs exactly the previous start (register tsx, import client/cli.ts). */
function sideEnv(side: Side): NodeJS.ProcessEnv {
  return { ...process.env, KINOITE_ZFS_FROM_SOURCE: side === 'tsx' ? '1' : undefined };
}

/** Runs `kinoite-zfs ARGS` `count` times at once and times each; fails when one fails. */
async function timeCli(side: Side, args: string[], count = 1): Promise<Timing[]> {
  const cpu0 = await childrenCpu();
  const runs = await Promise.all(
    Array.from({ length: count }, async () => {
      const t0 = performance.now();
      const r = await execa(process.execPath, [bin, ...args], { env: sideEnv(side), reject: false, cwd: repo });
      return { wall: (performance.now() - t0) / 1000, r };
    }),
  );
  const cpu = ((await childrenCpu()) - cpu0) / count;
  for (const { r } of runs) {
    if (side === 'dist' && NOTICE.test(r.stderr)) throw new StaleDuringBench(r.stderr.split('\n')[0]);
    if (r.exitCode !== 0)
      throw new Error(`kinoite-zfs ${args.join(' ')} (${side}) exited ${r.exitCode}:\n${r.stderr}\n${r.stdout}`);
  }
  return runs.map(({ wall }) => ({ wall, cpu }));
}

/** Median wall and CPU time of `repeat` runs of bare Node (`node -e 0`): the floor under every command. */
async function bareNode(repeat: number): Promise<Timing> {
  const ts: Timing[] = [];
  for (let i = 0; i < repeat; i++) {
    const cpu0 = await childrenCpu();
    const t0 = performance.now();
    await execa(process.execPath, ['-e', '0']);
    ts.push({ wall: (performance.now() - t0) / 1000, cpu: (await childrenCpu()) - cpu0 });
  }
  return { wall: median(ts.map((t) => t.wall)), cpu: median(ts.map((t) => t.cpu)) };
}

/** Median of `repeat` timed runs of one command. */
async function medianOf(side: Side, args: string[], repeat: number): Promise<Timing> {
  const ts: Timing[] = [];
  for (let i = 0; i < repeat; i++) ts.push(...(await timeCli(side, args)));
  return { wall: median(ts.map((t) => t.wall)), cpu: median(ts.map((t) => t.cpu)) };
}

/** Starts `kinoite-zfs worker` in its own process group; resolves with it and its start time once it serves. */
async function startWorker(
  side: Side,
  configFile: string,
  logFile: string,
): Promise<{ child: ChildProcess; seconds: number; line: string }> {
  await writeFile(logFile, '');
  const t0 = performance.now();
  const child = spawn(process.execPath, [bin, 'worker', '--config', configFile], {
    detached: true,
    stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')],
    env: sideEnv(side),
  });
  for (;;) {
    const text = await readFile(logFile, 'utf8');
    const line = /^worker serving.*$/m.exec(text)?.[0];
    if (line) {
      if (side === 'dist' && NOTICE.test(text)) {
        stopWorker(child);
        throw new StaleDuringBench(text.split('\n')[0]);
      }
      return { child, seconds: (performance.now() - t0) / 1000, line };
    }
    if (child.exitCode !== null) throw new Error(`the worker exited at start; see ${logFile}:\n${text.slice(-2000)}`);
    if (performance.now() - t0 > 180_000) throw new Error(`the worker did not start within 180 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopWorker(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGTERM');
  } catch {
    // already gone
  }
}

/** Builds dist/ when a source is newer than it; returns the build's seconds, or undefined when it was current. */
async function ensureBuilt(log: (line: string) => void): Promise<number | undefined> {
  const state = compiledState(repo);
  if (state.state === 'current') return undefined;
  log(`building dist/ (${state.reason})…`);
  const t0 = performance.now();
  await build();
  return (performance.now() - t0) / 1000;
}

/** Runs `measure`; when a source changed under it, builds again and measures again (at most three times). */
async function measured<T>(log: (line: string) => void, measure: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    await ensureBuilt(log);
    try {
      return await measure();
    } catch (err) {
      if (!(err instanceof StaleDuringBench) || attempt === 3) throw err;
      log(`dist/ went stale during the measurement (${err.message}); building and measuring again`);
    }
  }
}

/** One phase of an unchanged `run --wait` from dist/, measured inside one process. */
interface Phase {
  phase: string;
  wallMs: number;
  /** CPU milliseconds of the CLI's process, or null for time spent elsewhere. */
  cpuMs: number | null;
}

/**
 * Where an unchanged `run --wait` from dist/ spends its time: the steps of `kinoite-zfs run --wait`
 * (client/commands/run.ts), one after the other in a plain Node process, each with its wall and
 * CPU milliseconds; then the run's own time on the worker, from its start to its close.
 */
async function unchangedRunPhases(configFile: string, stream: string): Promise<Phase[]> {
  const url = (rel: string) => pathToFileURL(join(repo, rel)).href;
  const script = `
    const phases = [];
    let w = performance.now(), c = process.cpuUsage();
    const lap = (phase) => {
      const now = performance.now(), cpu = process.cpuUsage();
      phases.push({ phase, wallMs: now - w, cpuMs: (cpu.user + cpu.system - c.user - c.system) / 1000 });
      w = now; c = cpu;
    };
    phases.push({ phase: 'node start, to the first line of the CLI', wallMs: performance.now(), cpuMs: (c.user + c.system) / 1000 });
    (await import('${url('bin/compiled-state.js')}')).compiledState(${JSON.stringify(repo)});
    lap('freshness check of dist/');
    await import('${url('dist/client/cli.js')}');
    lap('the CLI entry (dist/client/cli.js)');
    const { loadConfig } = await import('${url('dist/client/config-file.js')}');
    const config = await loadConfig(${JSON.stringify(configFile)});
    lap('config load: yaml, zod schema, validation');
    const { connectClient } = await import('${url('dist/client/temporal.js')}');
    const { triggerStream } = await import('${url('dist/client/stream-client.js')}');
    const { followRun } = await import('${url('dist/client/follow.js')}');
    await import('${url('dist/client/commands/run.js')}');
    lap('Temporal client modules (@temporalio/client, grpc-js, protobufjs) and the rest of run');
    const client = await connectClient(config);
    lap('connect to Temporal');
    const reply = await triggerStream(client, config, ${JSON.stringify(stream)}, {
      trigger: { source: 'cli', by: 'bench', requestId: crypto.randomUUID() },
      options: { promote: true, rebuildAkmods: false },
    });
    lap('trigger: visibility count + update-with-start, answered by the stream workflow');
    const handle = client.workflow.getHandle(reply.runWorkflowId);
    await handle.describe();
    lap('describe the run (its Web UI link)');
    const summary = await followRun(handle, { quiet: true, tty: false });
    lap('follow the run to its result (' + summary.outcome + '), progress queries, describe');
    const d = await handle.describe();
    phases.push({ phase: 'the run itself on the worker, start to close (during the three steps above)', wallMs: d.closeTime - d.startTime, cpuMs: null });
    await client.connection.close();
    console.log(JSON.stringify(phases));
  `;
  const r = await execa(process.execPath, ['--input-type=module', '-e', script], { cwd: repo });
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Phase[];
}

/** Brings the world up through the CLI, runs the pipeline once, then measures both starts; returns the section. */
export async function runStartupBench(opts: StartupBenchOptions = {}): Promise<BenchSection> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const repeat = opts.repeat ?? 5;
  const dir = opts.dir ?? join(repo, '.state', 'bench-startup');
  const load0 = loadavg()[0]!;
  const startedAt = new Date();

  const builtSeconds = await ensureBuilt(log);
  const check = compiledState(repo);
  const checkMs: number[] = [];
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now();
    compiledState(repo);
    checkMs.push(performance.now() - t0);
  }

  // The demo world, renamed: its own stream workflow and task queues on the shared dev server.
  await mkdir(dir, { recursive: true });
  const spec = parseYaml(await readFile(join(repo, 'world', 'specs', 'demo.yaml'), 'utf8')) as {
    name: string;
    stream: { name: string };
  };
  spec.name = 'bench-startup';
  spec.stream.name = 'bench-startup';
  const specFile = join(dir, 'spec.yaml');
  await writeFile(specFile, stringify(spec));
  log(`world up --spec ${specFile} --dir ${dir}…`);
  await execa(process.execPath, [bin, 'world', 'up', '--spec', specFile, '--dir', dir], { cwd: repo });
  const configFile = join(dir, 'config.yaml');
  const config = await loadConfig(configFile);
  const client = await connectClient(config);
  const stream = 'bench-startup';
  const idle = async () => {
    for (;;) {
      const s = await streamState(client, stream);
      if (!s?.current && !s?.next) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const rows: BenchRow[] = [];
  const row = (measurement: string, ours: Timing, naive: Timing) =>
    rows.push({ measurement, ours: fmt(ours), naive: fmt(naive), ratios: ratio(naive, ours) });
  let helpDist: Timing | undefined;
  let unchangedDist: Timing | undefined;
  let phases: Phase[] | undefined;
  let worker: ChildProcess | undefined;
  try {
    log(`--help and config check, ${repeat} times each side…`);
    const help = await measured(log, async () => [
      await medianOf('dist', ['--help'], repeat),
      await medianOf('tsx', ['--help'], repeat),
    ]);
    row('`--help`', help[0]!, help[1]!);
    helpDist = help[0]!;
    const floor = await bareNode(repeat);
    rows.push({
      measurement: 'bare Node start, `node -e 0` (the floor under both sides)',
      ours: fmt(floor),
      naive: fmt(floor),
      ratios: '',
    });
    const checkCmd = ['config', 'check', configFile];
    const configCheck = await measured(log, async () => [
      await medianOf('dist', checkCmd, repeat),
      await medianOf('tsx', checkCmd, repeat),
    ]);
    row('`config check`', configCheck[0]!, configCheck[1]!);

    log('worker start, each side (the tsx side bundles the workflow code at start)…');
    const tsxWorker = await startWorker('tsx', configFile, join(dir, 'bench-worker-tsx.log'));
    stopWorker(tsxWorker.child);
    const distWorker = await measured(log, () => startWorker('dist', configFile, join(dir, 'bench-worker-dist.log')));
    worker = distWorker.child;
    rows.push({
      measurement: 'worker start, to "worker serving" (one each)',
      ours: `${distWorker.seconds.toFixed(2)} s`,
      naive: `${tsxWorker.seconds.toFixed(2)} s`,
      ratios: (tsxWorker.seconds / distWorker.seconds).toFixed(1),
    });

    log('one full run (the stream promotes, or is already unchanged)…');
    await idle();
    await timeCli('dist', ['run', '--config', configFile, '--wait']).catch(async (err: unknown) => {
      if (!(err instanceof StaleDuringBench)) throw err;
      await timeCli('tsx', ['run', '--config', configFile, '--wait']);
    });

    log(`unchanged run --wait, ${Math.min(repeat, 3)} times each side…`);
    const runArgs = ['run', '--config', configFile, '--wait'];
    const unchanged = await measured(log, async () => [
      await medianOf('dist', runArgs, Math.min(repeat, 3)),
      await medianOf('tsx', runArgs, Math.min(repeat, 3)),
    ]);
    row('unchanged `run --wait`, end to end', unchanged[0]!, unchanged[1]!);
    unchangedDist = unchanged[0]!;
    await idle();
    phases = await unchangedRunPhases(configFile, stream);

    log('five run calls started together, each side…');
    const five = async (side: Side): Promise<Timing> => {
      await idle();
      const ts = await timeCli(side, ['run', '--config', configFile], 5);
      return { wall: Math.max(...ts.map((t) => t.wall)), cpu: ts[0]!.cpu };
    };
    const together = await measured(log, async () => [await five('dist'), await five('tsx')]);
    row('five `run` started together (the slowest of the five)', together[0]!, together[1]!);
    await idle();
  } finally {
    if (worker) stopWorker(worker);
    await client.connection.close();
    if (!opts.keepUp) await execa(process.execPath, [bin, 'world', 'down', '--dir', dir], { cwd: repo, reject: false });
  }

  const goal = (what: string, t: Timing | undefined, limit: number) =>
    `${what} ${t!.wall.toFixed(2)} s against a goal of ${limit} s: ${t!.wall < limit ? 'met' : 'not met'}`;
  return {
    title: 'CLI and worker start-up',
    intro: [
      'Every CLI command and the worker, started from the compiled JavaScript in `dist/` (`npm run build`; what',
      '`bin/kinoite-zfs.js` runs while `dist/` is current) against the same command compiled by tsx at start.',
      'The original side here is **this project before `dist/` existed**: `bin/kinoite-zfs.js` registered tsx and compiled',
      '`client/cli.ts` and every module it loads at every start (`KINOITE_ZFS_FROM_SOURCE=1` runs exactly that path);',
      'the Python original has no CLI to compare with. The world is `world/specs/demo.yaml` renamed `bench-startup`',
      '(its own stream and task queues); each cell is the median wall time of the runs, with the CPU seconds the',
      'process used in brackets, which a busy machine inflates less than wall time.',
    ].join('\n'),
    table: rowsTable(rows, ['measurement', 'compiled (dist/)', 'before: tsx at every start', 'ratio (tsx/compiled)']),
    notes: [
      `${cpus().length} cores, Node ${process.version}, ${startedAt.toISOString().slice(0, 10)}; load average ${load0.toFixed(1)} at the start and ${loadavg()[0]!.toFixed(1)} at the end`,
      `(other work on the machine makes every number larger: compare with the bare Node row). ${repeat} runs per cell (3 for \`run --wait\`).`,
      `Goals: ${goal('`--help`', helpDist, 0.3)}; ${goal('unchanged `run --wait`', unchangedDist, 1)}.`,
      `The freshness check \`bin/kinoite-zfs.js\` makes before it runs \`dist/\` stats ${check.checked} paths: ${median(checkMs).toFixed(1)} ms (median of 21).`,
      ...(builtSeconds !== undefined
        ? [`\`npm run build\` took ${builtSeconds.toFixed(1)} s before the measurements.`]
        : []),
      '',
      'Where an unchanged `run --wait` from `dist/` spends its time (its steps one after the other in one process):',
      '',
      '| step | wall | cpu |',
      '| --- | --- | --- |',
      ...(phases ?? []).map(
        (p) => `| ${p.phase} | ${p.wallMs.toFixed(0)} ms | ${p.cpuMs === null ? '' : `${p.cpuMs.toFixed(0)} ms`} |`,
      ),
    ].join('\n'),
  };
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--repeat');
  runStandalone('startup', 'bench-startup.md', () =>
    runStartupBench({ repeat: at >= 0 ? Number(args[at + 1]) : undefined, keepUp: args.includes('--keep-up') }),
  );
}
