/**
 * Benchmark: the booted check of a real candidate (two real Debian kernels, real zfs-2.2.7), one
 * kernel after the other (the simple way) against the stage's parallel boots, measured in the same
 * run; and each kernel's seconds against the target of 30 s without KVM.
 *
 *   node --import tsx scripts/bench-boot.ts
 *
 * Brings up world/specs/real-kernels.yaml in .state/bench-boot (the akmods come from the host build
 * cache when this machine built them before, else about 12 minutes), promotes once, then boots the
 * candidate's kernels with the real activity. Prints a Markdown table (also test/output/bench-boot.md).
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { MockActivityEnvironment } from '@temporalio/testing';
import { worldUp } from '../world/world.ts';
import { ensureTemporal } from '../world/services.ts';
import { loadConfig } from '../client/config-file.ts';
import { repoRoot, startWorker, client, startRun, type TestWorld } from '../test/support/harness.ts';
import { RegistryClient } from '../activities/registry-http.ts';
import { Host } from '../activities/host.ts';
import { bootTestActivities } from '../activities/boot-test.ts';
import type { PipelineResult } from '../core/pipeline.ts';
import type { KernelBoot } from '../core/boot.ts';

await ensureTemporal();
const dir = join(repoRoot, '.state', 'bench-boot');
const { info } = await worldUp({
  specFile: join(repoRoot, 'world', 'specs', 'real-kernels.yaml'),
  dir,
  log: () => undefined,
});
const config = await loadConfig(info.configFile);
const world: TestWorld = { dir, info, config, configFile: info.configFile, stream: Object.keys(config.streams)[0]! };
const worker = await startWorker(config);
const c = await client(world);
let candidate: string;
try {
  console.log('running the pipeline once for a candidate…');
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
  const { kernels: boots } = await new MockActivityEnvironment().run(acts.bootTestCandidate, {
    candidate,
    kernels,
    timeoutSeconds: 300,
    maxParallel,
  });
  for (const b of boots) if (b.error) throw new Error(`${b.kernel}: ${b.error}`);
  return { boots, wall: (Date.now() - t0) / 1000 };
};
console.log('booting one kernel after the other…');
const sequential = await boot(1);
console.log('booting in parallel (the stage default)…');
const parallel = await boot();
const per = (bs: KernelBoot[]) => bs.map((b) => `${b.kernel} ${b.seconds.toFixed(1)} s`).join(', ');
const table = [
  `${kernels.length} real kernels, \`${candidate.split('@')[1]!.slice(0, 19)}…\`, ${cpus().length} cores, accel ${parallel.boots[0]!.accel}, measured ${new Date().toISOString().slice(0, 10)}.`,
  '',
  '| measurement | one after the other | parallel (stage default) | ratio |',
  '| --- | --- | --- | --- |',
  `| booted check, wall (collect, initramfs, qemu, pool round-trip) | ${sequential.wall.toFixed(1)} s | ${parallel.wall.toFixed(1)} s | ${(sequential.wall / parallel.wall).toFixed(2)} |`,
  `| qemu run per kernel | ${per(sequential.boots)} | ${per(parallel.boots)} | |`,
  `| slowest kernel against the 30 s target | ${(Math.max(...sequential.boots.map((b) => b.seconds)) / 30).toFixed(2)} of target | ${(Math.max(...parallel.boots.map((b) => b.seconds)) / 30).toFixed(2)} of target | |`,
].join('\n');
console.log(`\n${table}\n`);
await mkdir(join(repoRoot, 'test', 'output'), { recursive: true });
await writeFile(join(repoRoot, 'test', 'output', 'bench-boot.md'), `${table}\n`);
process.exit(0);
