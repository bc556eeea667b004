/**
 * Benchmark: real OpenZFS akmods builds on this host, per step: the first build (empty compiler
 * cache: what the original pays on every build, since its builder containers run without ccache and
 * with layer caching off) against the project's second build of the same kernel with the host's
 * ccache warm, and against the host build cache (same inputs again: no builder runs). Both builds
 * are measured in this run, on the world's builder image with a real Debian kernel's headers and a
 * real OpenZFS release.
 *
 *   node --import tsx scripts/bench-akmods.ts [--kernel RELEASE] [--tag zfs-2.2.7]
 *
 * Takes about 12 minutes on 2 cores. Prints the section's Markdown (also test/output/bench-akmods.md)
 * and saves it for `scripts/bench-all.ts --reuse`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { worldUp } from '../world/world.ts';
import { newestDebianRelease } from '../world/debian-kernels.ts';
import { openzfsDir } from '../world/openzfs-releases.ts';
import { containerEnv } from '../world/tools.ts';
import { recipeTimings } from '../activities/akmods.ts';
import { builderRunArgs } from '../activities/podman.ts';
import type { BenchSection } from './bench-section.ts';
import { isMain, repoRoot, runStandalone } from './bench-results.ts';

/** Options of {@link runAkmodsBench}. */
export interface AkmodsBenchOptions {
  /** Kernel release to build for. @default the newest Debian 6.12 cloud kernel */
  kernel?: string;
  /** OpenZFS release tag. @default 'zfs-2.2.7' */
  tag?: string;
  /** Progress lines. @default console.error */
  log?: (line: string) => void;
}

/** Measures one kernel's recipe run cold (empty ccache) and warm, and returns the section. */
export async function runAkmodsBench(opts: AkmodsBenchOptions = {}): Promise<BenchSection> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const tag = opts.tag ?? 'zfs-2.2.7';
  const version = tag.replace(/^zfs-/, '');
  const kernel = opts.kernel ?? (await newestDebianRelease('6.12'));

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
      builderRunArgs({
        image: builder,
        recipeDir: join(repoRoot, 'recipes', 'akmods'),
        srcDir: src,
        outDir: out,
        kernel,
        zfsVersion: version,
        fedora: '43',
        name: `kz-bench-akmods-${process.pid}`,
        network: 'none',
        ccacheDir: ccache,
        userspace: true,
      }),
      { env, reject: false, all: true },
    );
    if (r.exitCode !== 0) throw new Error(`recipe failed:\n${String(r.all).split('\n').slice(-20).join('\n')}`);
    return { steps: recipeTimings(String(r.stdout)), wall: (Date.now() - t0) / 1000 };
  }

  try {
    const ccache = join(work, 'ccache');
    await mkdir(ccache);
    log(`akmods bench: kernel ${kernel}, ${tag}: first build with an empty ccache…`);
    const cold = await build(ccache);
    log('akmods bench: second build of the same kernel with the warm ccache…');
    const warm = await build(ccache);
    const steps = ['autogen', 'kmod-configure', 'kmod-build', 'user-configure', 'user-build', 'package'];
    const row = (name: string, a: number, b: number) =>
      `| ${name} | ${a.toFixed(0)} s | ${b.toFixed(0)} s | ${(a / Math.max(b, 1)).toFixed(1)} |`;
    const table = [
      '| step | the original: every build (empty compiler cache) | ours: same kernel again, warm ccache | ratio original/ours (time) |',
      '| --- | --- | --- | --- |',
      ...steps.map((s) => row(s, cold.steps[s] ?? 0, warm.steps[s] ?? 0)),
      row('whole recipe run (wall)', cold.wall, warm.wall),
      `| same inputs again | ${cold.wall.toFixed(0)} s: the nightly run rebuilds | 0 s: host build cache, no builder runs | ∞ |`,
    ].join('\n');
    return {
      title: 'Akmods builds',
      intro: `
Real OpenZFS builds dominate a run's cost. Ours are paid once per host: a build whose inputs
(tarball bytes, builder image, recipe folder, kernel, options) the host built before is taken from
\`worker.buildCacheDir\` without running a builder, and builders share a compiler cache
(\`worker.ccacheDir\`). This section runs the project's akmods recipe (\`recipes/akmods\`) twice for
one real kernel, in one invocation: first with an empty ccache, then again with the ccache warm.

- **The original's side is the cold build, on every run**: its akmods builds run in a fresh builder
  container through ublue-os/akmods' \`just build\` with \`BUILDAH_LAYERS=false\` (reference S5c, incident
  #9) and no compiler cache, so each build starts from nothing; and its scheduled run rebuilds
  akmods every night even when the cache covers every kernel (reference S4(a), §13.13), hence the
  last row.
- The same recipe and builder image run on both sides, so the ratio is the caches alone, not a
  different build.
`,
      table,
      notes: `Kernel \`${kernel}\`, \`${tag}\` (a \`git archive\` tarball without \`configure\`, so \`./autogen.sh\` runs), userspace built too, ${cpus().length} cores, measured ${new Date().toISOString().slice(0, 10)}. Seconds per step come from the recipe's \`build-akmods: time\` lines. In a pipeline run two kernels build at the same time on the 2 cores, so a whole akmods stage from nothing takes longer than one recipe run here (12.5 min for the two kernels of \`world/specs/real-kernels.yaml\`, measured 2026-12-01).`,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  runStandalone('akmods', 'bench-akmods.md', () => runAkmodsBench({ kernel: arg('--kernel'), tag: arg('--tag') }));
}
