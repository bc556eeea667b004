/**
 * Build hosts: the akmods stage of a run with several kernels, served by one build worker against
 * two (each its own process beside a control worker, as deploy/kinoite-zfs-worker@.service runs
 * them), alternated in the same invocation so the machine's noise hits both sides.
 *
 *   node --import tsx scripts/bench-build-hosts.ts [--kernels 4] [--rounds 2]
 *
 * The kernels are the world's synthetic ones (each build is a real builder container run, with a
 * stand-in module): real OpenZFS builds take about 8 minutes per kernel here, so this measures how
 * the builds spread over hosts, not a real build's length. On one machine the two "hosts" share its
 * cores, so the ratio is a lower bound of what two machines give.
 */
import { join } from 'node:path';
import { cpus } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import type { PipelineResult } from '../core/pipeline.ts';
import {
  bringUpWorld,
  client,
  killWorker,
  spawnWorker,
  startRun,
  tearDownWorld,
  worldSpec,
} from '../test/support/harness.ts';
import type { BenchSection } from './bench-section.ts';
import { isMain, runStandalone } from './bench-results.ts';

const seconds = (from: string, to?: string) => (Date.parse(to ?? from) - Date.parse(from)) / 1000;

export async function runBuildHostsBench(opts: { kernels?: number; rounds?: number } = {}): Promise<BenchSection> {
  const n = opts.kernels ?? 4;
  const rounds = opts.rounds ?? 2;
  const kernels = Array.from({ length: n }, (_, i) => `6.${17 + i}.${i + 1}-200.fc43.x86_64`);
  const world = await bringUpWorld('bench-build-hosts', worldSpec({ versions: [kernels] }), { fresh: true });
  const c = await client(world);
  const log = (name: string) => join(world.dir, 'worker', `${name}.log`);
  const control = await spawnWorker(world.configFile, log('control'), { queues: ['control'] });
  const results: Record<1 | 2, { akmods: number; run: number }[]> = { 1: [], 2: [] };
  try {
    // One warm-up run pulls the base and builder images, so neither side pays for them.
    const build0 = await spawnWorker(world.configFile, log('build-0'), { queues: ['build'] });
    try {
      await (await startRun(world, c)).result();
    } finally {
      killWorker(build0);
    }
    for (let r = 0; r < rounds; r++) {
      for (const hosts of (r % 2 === 0 ? [1, 2] : [2, 1]) as (1 | 2)[]) {
        const builders: ChildProcess[] = [];
        for (let h = 0; h < hosts; h++)
          builders.push(await spawnWorker(world.configFile, log(`build-${hosts}-${h}`), { queues: ['build'] }));
        try {
          const result = (await (await startRun(world, c, { rebuildAkmods: true })).result()) as PipelineResult;
          if (result.outcome !== 'promoted') throw new Error(`run ended ${result.outcome}: ${result.message}`);
          const akmods = result.stages.find((s) => s.stage === 'akmods')!;
          results[hosts].push({
            akmods: seconds(akmods.startedAt, akmods.endedAt),
            run: seconds(result.stages[0]!.startedAt, result.stages.at(-1)!.endedAt),
          });
          console.error(`${hosts} build host(s): akmods ${results[hosts].at(-1)!.akmods.toFixed(1)} s`);
        } finally {
          for (const b of builders) killWorker(b);
        }
      }
    }
  } finally {
    killWorker(control);
    await c.connection.close();
    await tearDownWorld(world);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const one = { akmods: median(results[1].map((x) => x.akmods)), run: median(results[1].map((x) => x.run)) };
  const two = { akmods: median(results[2].map((x) => x.akmods)), run: median(results[2].map((x) => x.run)) };
  const table = [
    '| measurement | one build worker | two build workers | ratio (one/two) |',
    '| --- | --- | --- | --- |',
    `| akmods stage, ${n} kernels rebuilt | ${one.akmods.toFixed(1)} s | ${two.akmods.toFixed(1)} s | ${(one.akmods / two.akmods).toFixed(2)} |`,
    `| whole run | ${one.run.toFixed(1)} s | ${two.run.toFixed(1)} s | ${(one.run / two.run).toFixed(2)} |`,
  ].join('\n');
  return {
    title: 'Build hosts',
    intro: `
A run's akmods builds (one per kernel) are activities on the build queue; each build worker runs
two at a time, so a second build host takes the other half of a ${n}-kernel rebuild. Both sides run
a control worker and the build worker(s) as separate processes (\`worker --queues control\`,
\`worker --queues build\`), alternated ${rounds} times; medians shown.
`,
    table,
    notes: `Synthetic kernels (a real builder container run per kernel, with a stand-in module), ${cpus().length} cores shared by both "hosts", measured ${new Date().toISOString().slice(0, 10)}. Two real machines split real OpenZFS builds (about 8 min per kernel here) in half: this table shows the spread over hosts, bounded by one machine's cores.`,
  };
}

if (isMain(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  runStandalone('build-hosts', 'bench-build-hosts.md', () =>
    runBuildHostsBench({ kernels: arg('--kernels'), rounds: arg('--rounds') }),
  );
}
