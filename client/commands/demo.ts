/**
 * `kinoite-zfs demo [--dir DIR] [--spec FILE] [--story timing]`: the whole pipeline on the hermetic demo world,
 * or the kernel/OpenZFS timing story told step by step.
 * Brings up (or reuses) the world and the Temporal dev server, starts (or reuses) a worker in the
 * background, runs the pipeline once and follows it live, then says where to look and how to stop.
 */
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { rm } from 'node:fs/promises';
import { worldDown, worldUp } from '../../world/world.ts';
import { ensureWorldWorker } from '../../world/worker-process.ts';
import { loadConfig } from '../config-file.ts';
import { runCommand } from './run.ts';
import { statusCommand } from './status.ts';
import { UsageError } from '../cli.ts';
import { ExitCode } from '../exit-codes.ts';
import { connectClient, runUrl } from '../temporal.ts';
import { streamState } from '../stream-client.ts';
import { exitCodeFor, followRun, formatSummary, verifySettingsOf } from '../follow.ts';
import { PACKAGE_ROOT } from '../../activities/package-root.ts';

const repo = PACKAGE_ROOT;

/** Runs the demo; returns the run's exit code. */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dir: { type: 'string' },
      spec: { type: 'string', default: join(repo, 'world', 'specs', 'demo.yaml') },
      story: { type: 'string' },
    },
  });
  if (values.story !== undefined) {
    if (values.story !== 'timing')
      throw new UsageError(`unknown story "${values.story}": the demo tells --story timing`);
    return timingStory(resolve(values.dir ?? join(repo, '.state', 'timing-story')));
  }
  values.dir ??= join(repo, '.state', 'demo');
  const dir = resolve(values.dir!);
  const t0 = Date.now();
  console.log(`== 1/3 demo world (${values.spec})`);
  const { info } = await worldUp({ specFile: values.spec!, dir, log: (l) => console.log(`   ${l}`) });
  const configFile = info.configFile;
  const config = await loadConfig(configFile);
  console.log(`== 2/3 worker for ${configFile}`);
  const worker = await ensureWorldWorker({ dir, configFile });
  console.log(`   worker ${worker.reused ? 'already running' : 'started'} (pid ${worker.pid}, log ${worker.logFile})`);
  console.log(`== 3/3 pipeline run, followed live`);
  const code = await runCommand(['--config', configFile, '--stream', Object.keys(config.streams)[0]!, '--wait']);
  console.log('');
  console.log(
    `Demo finished in ${((Date.now() - t0) / 1000).toFixed(0)}s. Everything is still running for you to explore:`,
  );
  console.log(`  Temporal Web UI: ${info.temporal.uiUrl ?? config.temporal.webUrl}`);
  console.log(`  status:          node bin/kinoite-zfs.js status --config ${configFile}`);
  console.log(`  run again:       node bin/kinoite-zfs.js run --config ${configFile} --wait`);
  console.log(`  stop it all:     node bin/kinoite-zfs.js world down --dir ${dir} --all`);
  return code;
}

const say = (text: string) => console.log(`\n${text.replace(/^/gm, '   ').replace(/^ {3}/, '>> ')}`);

/**
 * `demo --story timing`: the kernel/OpenZFS timing story on real kernels and real releases, narrated.
 * A 6.1 base with zfs-2.2.6 is promoted; the base gains a 6.12 kernel and the stream holds; the
 * release source gains zfs-2.2.7 and the stream releases itself. About 15 minutes the first time
 * on 2 cores (real builds), a few minutes once this host has built them.
 */
async function timingStory(dir: string): Promise<number> {
  const spec = (n: number) => join(repo, 'world', 'specs', 'timing-story', `${n}.yaml`);
  const up = async (n: number) => (await worldUp({ specFile: spec(n), dir, log: () => undefined })).info;
  // The story starts from scratch: a fresh world folder and a fresh stream workflow.
  await worldDown({ dir }).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
  const first = await loadConfig((await up(1)).configFile);
  const c0 = await connectClient(first);
  await c0.workflow
    .getHandle(`stream/${Object.keys(first.streams)[0]!}`)
    .terminate('a new timing story')
    .catch(() => undefined);
  await c0.connection.close();
  say(
    'Step 1. A Kinoite-like base with one real Debian 6.1 kernel; the OpenZFS release source has zfs-2.2.6,\nwhich supports Linux up to 6.10. The stream builds, boots and promotes.',
  );
  let info = await up(1);
  const config = await loadConfig(info.configFile);
  const stream = Object.keys(config.streams)[0]!;
  const worker = await ensureWorldWorker({ dir, configFile: info.configFile });
  console.log(
    `   worker ${worker.reused ? 'already running' : 'started'} (log ${worker.logFile}); Web UI ${info.temporal.uiUrl ?? config.temporal.webUrl}`,
  );
  const promoted = await runCommand(['--config', info.configFile, '--stream', stream, '--wait']);
  if (promoted !== ExitCode.Ok) {
    console.error('   step 1 did not promote, so the story cannot go on; the run summary above says why');
    return promoted;
  }
  say(
    'Step 2. The base gains a 6.12 kernel. zfs-2.2.6 says Linux-Maximum: 6.10, so the run ends blocked before\nbuilding anything: stable keeps the 6.1-only image, and the stream is held by compatibility.',
  );
  info = await up(2);
  // Step 2 is expected to end blocked (a non-zero exit): the story goes on either way.
  await runCommand(['--config', info.configFile, '--stream', stream, '--wait']);
  await statusCommand(['--config', info.configFile, '--stream', stream, '--limit', '2']);
  say(
    `Step 3. The release source gains zfs-2.2.7 (Linux-Maximum 6.12). Nobody triggers anything: the held stream\nre-checks the release source every ${config.streams[stream]!.zfs.recheckEvery} and starts a run by itself.`,
  );
  info = await up(3);
  const client = await connectClient(config);
  let code: number;
  try {
    let runId: string | undefined;
    for (let i = 0; !runId; i++) {
      runId = (await streamState(client, stream))?.triggers.find(
        (t) => t.source === 'recheck' && t.runWorkflowId,
      )?.runWorkflowId;
      if (!runId) await new Promise((r) => setTimeout(r, 2000));
      if (i % 15 === 0 && !runId) console.log('   waiting for the re-check…');
    }
    console.log(`   the stream started ${runId} by itself`);
    const summary = await followRun(client.workflow.getHandle(runId), {
      quiet: false,
      tty: process.stdout.isTTY ?? false,
      url: runUrl(config, runId),
      verify: verifySettingsOf(config, stream),
    });
    console.log(formatSummary(summary));
    code = exitCodeFor(summary.outcome);
  } finally {
    await client.connection.close();
  }
  say(
    'The end: both kernels booted and imported a pool, stable moved, the hold ended. status shows when each\nkernel was first seen and when it reached stable:',
  );
  await statusCommand(['--config', info.configFile, '--stream', stream, '--limit', '3']);
  console.log(`\n   stop it all: node bin/kinoite-zfs.js world down --dir ${dir} --all`);
  return code;
}
