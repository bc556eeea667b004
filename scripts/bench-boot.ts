/**
 * Benchmark: the booted check of a real candidate (two real Debian kernels, real zfs-2.2.7), one
 * kernel after the other (the simple way) against the stage's parallel boots, measured in the same
 * run; and each kernel's seconds against the target of 30 s without KVM.
 *
 *   node --import tsx scripts/bench-boot.ts
 *
 * Brings up world/specs/real-kernels.yaml in .state/bench-boot (the akmods come from the host build
 * cache when this machine built them before, else about 12 minutes), runs the pipeline once for a
 * candidate, then boots the candidate's kernels with the real activity. Prints the section's Markdown
 * (also test/output/bench-boot.md) and saves it for `scripts/bench-all.ts --reuse`.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { worldUp, worldDown } from '../world/world.ts';
import { ensureTemporal } from '../world/services.ts';
import { loadConfig } from '../client/config-file.ts';
import { startWorker, client, startRun, type TestWorld } from '../test/support/harness.ts';
import { RegistryClient } from '../activities/registry-http.ts';
import { Host } from '../activities/host.ts';
import { bootTestActivities } from '../activities/boot-test.ts';
import type { PipelineResult } from '../core/pipeline.ts';
import type { KernelBoot } from '../core/boot.ts';
import type { BenchSection } from './bench-section.ts';
import { isMain, repoRoot, runStandalone } from './bench-results.ts';

/** Options of {@link runBootBench}. */
export interface BootBenchOptions {
  /** Progress lines. @default console.error */
  log?: (line: string) => void;
  /** Leave the world's registry running afterwards. @default false */
  keepUp?: boolean;
}

/** Boots a real candidate's kernels one after the other, then in parallel; returns the section. */
export async function runBootBench(opts: BootBenchOptions = {}): Promise<BenchSection> {
  const log = opts.log ?? ((l: string) => console.error(l));
  await ensureTemporal();
  const dir = join(repoRoot, '.state', 'bench-boot');
  const { info } = await worldUp({
    specFile: join(repoRoot, 'world', 'specs', 'real-kernels.yaml'),
    dir,
    log: () => undefined,
  });
  try {
    const config = await loadConfig(info.configFile);
    const world: TestWorld = {
      dir,
      info,
      config,
      configFile: info.configFile,
      stream: Object.keys(config.streams)[0]!,
    };
    const worker = await startWorker(config);
    const c = await client(world);
    let candidate: string;
    try {
      log('boot bench: running the pipeline once for a candidate (real akmods builds unless the host built them)…');
      const r = (await (await startRun(world, c, { promote: false })).result()) as PipelineResult;
      if (!r.candidate) throw new Error(`no candidate: ${r.outcome} ${r.message}`);
      candidate = `${r.candidate.repo}@${r.candidate.digest}`;
    } finally {
      await worker.stop();
      await c.connection.close();
    }
    const kernels = info.base.versions.at(-1)!.kernels;
    const acts = bootTestActivities({
      registry: new RegistryClient({ insecureHosts: config.registries.insecure }),
      host: new Host(config),
    });
    const boot = async (maxParallel?: number) => {
      const t0 = Date.now();
      const { kernels: boots }: { kernels: KernelBoot[] } = await new MockActivityEnvironment().run(
        acts.bootTestCandidate,
        { candidate, kernels, timeoutSeconds: 300, maxParallel },
      );
      for (const b of boots) if (b.error) throw new Error(`${b.kernel}: ${b.error}`);
      return { boots, wall: (Date.now() - t0) / 1000 };
    };
    log('boot bench: booting one kernel after the other…');
    const sequential = await boot(1);
    log('boot bench: booting in parallel (the stage default)…');
    const parallel = await boot();
    const per = (bs: KernelBoot[]) => bs.map((b) => `${b.kernel} ${b.seconds.toFixed(1)} s`).join(', ');
    const slowest = (bs: KernelBoot[]) => (Math.max(...bs.map((b) => b.seconds)) / 30).toFixed(2);
    const table = [
      '| measurement | one after the other | parallel (stage default) | ratio |',
      '| --- | --- | --- | --- |',
      `| booted check, wall (collect, initramfs, qemu, pool round-trip) | ${sequential.wall.toFixed(1)} s | ${parallel.wall.toFixed(1)} s | ${(sequential.wall / parallel.wall).toFixed(2)} |`,
      `| qemu run per kernel | ${per(sequential.boots)} | ${per(parallel.boots)} | |`,
      `| slowest kernel against the 30 s target | ${slowest(sequential.boots)} of target | ${slowest(parallel.boots)} of target | |`,
    ].join('\n');
    return {
      title: 'Boot check',
      intro: `
Each kernel of a candidate boots under qemu with its own modules and userland and round-trips a
pool (see [architecture.md](architecture.md#the-boot-check)). This section boots a real candidate's
kernels with the real activity, one after the other and then in parallel (the stage's default), in
one invocation, and sets the slowest kernel against the 30 s target without KVM.

- **No side here is the original**: the original has no booted check at all (reference §13.11,
  incident #5 "pending"; it stops at the layer scan). The comparison is the stage's default against
  the simple way of running it, and against the target.
`,
      table,
      notes: `${kernels.length} real kernels, \`${candidate.split('@')[1]!.slice(0, 19)}…\`, ${cpus().length} cores, accel ${parallel.boots[0]!.accel}, measured ${new Date().toISOString().slice(0, 10)}. Two TCG guests on two cores each run slower than alone, but the stage finishes sooner. Turn the check off for a stream whose build hosts cannot afford it with \`smoke.boot: off\` (or make a failure a warning with \`optional\`).`,
    };
  } finally {
    if (!opts.keepUp) await worldDown({ dir }).catch(() => undefined);
  }
}

if (isMain(import.meta.url)) runStandalone('boot', 'bench-boot.md', () => runBootBench());
