/**
 * `npm run build`: compiles the runtime folders to `dist/` with tsc (tsconfig.build.json) and writes
 * the workflow bundle the compiled worker loads (dist/workflow-bundle.js), so neither the CLI nor the
 * worker compiles anything at start. Compiles into a fresh folder and swaps it in, so a process
 * running from dist/ never sees half-written modules, and outputs of deleted sources do not linger.
 *
 *   node --import tsx scripts/build.ts [--warn-only]
 *
 * `--warn-only` (what `npm ci` runs, as the `prepare` script): a failed build is a warning, not an
 * error, so installing dependencies never fails on a source that does not compile; the executable
 * then runs the TypeScript sources until a build succeeds.
 *
 * The stamp (dist/.build-stamp) is written last and dated when the build *started*: bin/kinoite-zfs.js
 * runs dist/ only when no source file is newer than it (a file saved during the build counts as newer).
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { bundleWorkflowCode } from '@temporalio/worker';

const root = fileURLToPath(new URL('..', import.meta.url));

/** What one build did, for the caller's log line. */
export interface BuildResult {
  /** Seconds tsc took. */
  compileSeconds: number;
  /** Seconds the workflow bundle took. */
  bundleSeconds: number;
  /** Size of dist/workflow-bundle.js in bytes. */
  bundleBytes: number;
}

/** Builds dist/ from the sources under `repo` (default: this checkout). */
export async function build(repo = root): Promise<BuildResult> {
  const startedAt = new Date();
  const dist = join(repo, 'dist');
  const next = join(repo, 'dist.next');
  const old = join(repo, 'dist.old');
  await rm(next, { recursive: true, force: true });
  await mkdir(next, { recursive: true });

  // NOTE: --noCheck emits without type-checking (type errors are `npm run typecheck`'s job, and one
  // in a file being edited must not stop the build); with verbatimModuleSyntax every file's output
  // depends on that file alone. TypeScript 5.6+: https://www.typescriptlang.org/tsconfig/#noCheck
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  let t0 = performance.now();
  const compiled = await execa(
    process.execPath,
    [tsc, '-p', join(repo, 'tsconfig.build.json'), '--noCheck', '--outDir', next],
    {
      reject: false,
      all: true,
    },
  );
  if (compiled.exitCode !== 0) throw new Error(`tsc failed (exit ${compiled.exitCode}):\n${compiled.all}`);
  const compileSeconds = (performance.now() - t0) / 1000;

  await rm(old, { recursive: true, force: true });
  if (existsSync(dist)) await rename(dist, old);
  await rename(next, dist);
  await rm(old, { recursive: true, force: true });

  // The worker's workflow code, bundled once here from the compiled output instead of at every start
  // (bundled in place, so the module names in its stack traces read dist/workflows/…).
  t0 = performance.now();
  const { code } = await bundleWorkflowCode({
    workflowsPath: join(dist, 'workflows', 'index.js'),
    // Webpack's own errors (an unresolved import, a Node module in workflow code) are the message to show.
    logger: {
      log() {},
      trace() {},
      debug() {},
      info() {},
      warn: (message: string) => console.error(message),
      error: (message: string) => console.error(message),
    } as never,
  });
  await writeFile(join(dist, 'workflow-bundle.js'), code);
  const bundleSeconds = (performance.now() - t0) / 1000;

  // Last: without the stamp, bin/kinoite-zfs.js treats dist/ as missing.
  const stamp = join(dist, '.build-stamp');
  await writeFile(stamp, `${JSON.stringify({ startedAt: startedAt.toISOString(), node: process.version })}\n`);
  // A second early: file times come from the kernel's coarse clock, which can lag a few ms behind.
  const dated = new Date(startedAt.getTime() - 1000);
  await utimes(stamp, dated, dated);
  return { compileSeconds, bundleSeconds, bundleBytes: Buffer.byteLength(code) };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const r = await build();
    console.log(
      `built dist/: tsc ${r.compileSeconds.toFixed(1)} s, workflow bundle ${r.bundleSeconds.toFixed(1)} s (${Math.round(r.bundleBytes / 1024)} KiB)`,
    );
  } catch (err) {
    console.error(`build: ${(err as Error).message}`);
    if (process.argv.includes('--warn-only'))
      console.error(
        'build: dist/ was not built; bin/kinoite-zfs.js runs the TypeScript sources until `npm run build` succeeds',
      );
    else process.exitCode = 1;
  }
}
