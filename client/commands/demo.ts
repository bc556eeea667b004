/**
 * `kinoite-zfs demo [--dir DIR] [--spec FILE]`: the whole pipeline on the hermetic demo world.
 * Brings up (or reuses) the world and the Temporal dev server, starts (or reuses) a worker in the
 * background, runs the pipeline once and follows it live, then says where to look and how to stop.
 */
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { worldUp } from '../../world/world.ts';
import { ensureWorldWorker } from '../../world/worker-process.ts';
import { loadConfig } from '../config-file.ts';
import { runCommand } from './run.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));

/** Runs the demo; returns the run's exit code. */
export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { dir: { type: 'string', default: join(repo, '.state', 'demo') }, spec: { type: 'string', default: join(repo, 'world', 'specs', 'demo.yaml') } } });
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
  console.log(`Demo finished in ${((Date.now() - t0) / 1000).toFixed(0)}s. Everything is still running for you to explore:`);
  console.log(`  Temporal Web UI: ${info.temporal.uiUrl ?? config.temporal.webUrl}`);
  console.log(`  status:          node bin/kinoite-zfs.js status --config ${configFile}`);
  console.log(`  run again:       node bin/kinoite-zfs.js run --config ${configFile} --wait`);
  console.log(`  stop it all:     node bin/kinoite-zfs.js world down --dir ${dir} --all`);
  return code;
}
