/**
 * Benchmark: real OpenZFS akmods builds on this host, per step: the first build (empty compiler
 * cache: what a fresh builder container without ccache pays, as ublue-os/akmods builds run) against
 * the project's second build of the same kernel with the host's ccache warm. Both are measured in this run, on the world's builder
 * image with a real Debian kernel's headers and a real OpenZFS release.
 *
 *   node --import tsx scripts/bench-akmods.ts [--kernel RELEASE] [--tag zfs-2.2.7]
 *
 * Takes about 12 minutes on 2 cores. Prints a Markdown table (also test/output/bench-akmods.md);
 * docs/benchmarks.md ("Akmods builds") holds the latest numbers.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { worldUp } from '../world/world.ts';
import { newestDebianRelease } from '../world/debian-kernels.ts';
import { openzfsDir } from '../world/openzfs-releases.ts';
import { containerEnv } from '../world/tools.ts';
import { recipeTimings } from '../activities/akmods.ts';
import { repoRoot } from '../test/support/harness.ts';

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const tag = arg('--tag') ?? 'zfs-2.2.7';
const version = tag.replace(/^zfs-/, '');
const kernel = arg('--kernel') ?? (await newestDebianRelease('6.12'));

const dir = join(repoRoot, '.state', 'bench-akmods');
await mkdir(dir, { recursive: true });
const specFile = join(dir, 'spec.yaml');
await writeFile(
  specFile,
  stringify({
    name: 'bench-akmods',
    base: {
      repository: 'ublue-os/kinoite-main',
      versions: [{ version: '43.20261201.0', kernels: [{ kind: 'debian', release: kernel }] }],
    },
    builder: { repository: 'ublue-os/devcontainer' },
    zfs: { releases: [{ source: 'openzfs', tag }] },
    stream: { name: 'bench-akmods', zfsLine: version.split('.').slice(0, 2).join('.'), owner: 'kinoite' },
  }),
);
const { info } = await worldUp({ specFile, dir, log: () => undefined });
const env = containerEnv(info.containersConf);
const builder = `${info.builder.reference.replace(/:latest$/, '')}@${info.builder.digest}`;
await execa('podman', ['pull', '--quiet', '--tls-verify=false', builder], { env });
const src = join(openzfsDir(undefined, repoRoot));
const work = await mkdtemp(join(tmpdir(), 'kz-bench-akmods-'));

/** One recipe run exactly as the pipeline runs it; returns its step timings and wall seconds. */
async function build(ccache: string | undefined): Promise<{ steps: Record<string, number>; wall: number }> {
  const out = await mkdtemp(join(work, 'out-'));
  const t0 = Date.now();
  const r = await execa(
    'podman',
    [
      'run',
      '--rm',
      '--network=none',
      '-v',
      `${join(repoRoot, 'recipes', 'akmods')}:/recipe:ro`,
      '-v',
      `${src}:/src:ro`,
      '-v',
      `${out}:/out`,
      ...(ccache ? ['-v', `${ccache}:/ccache`] : []),
      '-e',
      `KERNEL_RELEASE=${kernel}`,
      '-e',
      `ZFS_VERSION=${version}`,
      '-e',
      'FEDORA_VERSION=43',
      '-e',
      'ZFS_BUILD_USERSPACE=1',
      builder,
      '/bin/sh',
      '/recipe/build-akmods.sh',
    ],
    { env, reject: false, all: true },
  );
  if (r.exitCode !== 0) throw new Error(`recipe failed:\n${String(r.all).split('\n').slice(-20).join('\n')}`);
  return { steps: recipeTimings(String(r.stdout)), wall: (Date.now() - t0) / 1000 };
}

try {
  const ccache = join(work, 'ccache');
  await mkdir(ccache);
  console.log(
    `kernel ${kernel}, ${tag}: first build with an empty ccache (what a fresh build host, or a builder without ccache, pays)…`,
  );
  const cold = await build(ccache);
  console.log('second build of the same kernel with the warm ccache…');
  const warm = await build(ccache);
  const steps = ['autogen', 'kmod-configure', 'kmod-build', 'user-configure', 'user-build', 'package'];
  const row = (name: string, a: number, b: number) =>
    `| ${name} | ${a.toFixed(0)} s | ${b.toFixed(0)} s | ${(a / Math.max(b, 1)).toFixed(1)} |`;
  const table = [
    `Kernel \`${kernel}\`, \`${tag}\` (tarball without configure), ${(await execa('nproc')).stdout} cores, measured ${new Date().toISOString().slice(0, 10)}.`,
    '',
    '| step | cold: empty ccache (first build) | warm: second build, same kernel | ratio cold/warm |',
    '| --- | --- | --- | --- |',
    ...steps.map((s) => row(s, cold.steps[s] ?? 0, warm.steps[s] ?? 0)),
    row('whole recipe run (wall)', cold.wall, warm.wall),
    '| same inputs again (host build cache) | | 0 s: no builder runs | ∞ |',
  ].join('\n');
  console.log(`\n${table}\n`);
  await mkdir(join(repoRoot, 'test', 'output'), { recursive: true });
  await writeFile(join(repoRoot, 'test', 'output', 'bench-akmods.md'), `${table}\n`);
} finally {
  await rm(work, { recursive: true, force: true });
}
