/**
 * A background worker for a world (the demo): started detached, recorded in DIR/worker/worker.json,
 * reused while alive, stopped by `world down`.
 */
import { join } from 'node:path';
import { isAlive, readRecord, startDetached, stopProcessGroup, writeRecord, waitFor } from '../services/daemon.ts';
import { readFile } from 'node:fs/promises';
import { packagePath } from '../activities/package-root.ts';

const bin = packagePath('bin', 'kinoite-zfs.js');

/** Where a background worker of a world dir is recorded. */
export function workerRecordFile(dir: string): string {
  return join(dir, 'worker', 'worker.json');
}

/** Starts `kinoite-zfs worker --config FILE` in the background unless one is alive for this dir. */
export async function ensureWorldWorker(input: {
  dir: string;
  configFile: string;
  queues?: string;
}): Promise<{ pid: number; reused: boolean; logFile: string }> {
  const record = workerRecordFile(input.dir);
  const logFile = join(input.dir, 'worker', 'worker.log');
  const prev = await readRecord<{ pid: number; configFile: string }>(record);
  if (prev && prev.configFile === input.configFile && isAlive(prev.pid))
    return { pid: prev.pid, reused: true, logFile };
  const before = await readFile(logFile, 'utf8').then(
    (t) => t.length,
    () => 0,
  );
  const pid = await startDetached({
    file: process.execPath,
    args: [bin, 'worker', '--config', input.configFile, ...(input.queues ? ['--queues', input.queues] : [])],
    logFile,
  });
  await writeRecord(record, { pid, configFile: input.configFile });
  const ready = await waitFor(
    async () => {
      const text = (await readFile(logFile, 'utf8').catch(() => '')).slice(before);
      if (/worker serving/.test(text)) return true;
      if (!isAlive(pid)) throw new Error(`the worker exited at start; see ${logFile}:\n${text.slice(-2000)}`);
      return undefined;
    },
    120_000,
    250,
  );
  if (!ready) throw new Error(`the worker did not start within 120 s; see ${logFile}`);
  return { pid, reused: false, logFile };
}

/** Stops the background worker of a world dir, if any. */
export async function stopWorldWorker(dir: string): Promise<boolean> {
  const prev = await readRecord<{ pid: number }>(workerRecordFile(dir));
  if (!prev || !isAlive(prev.pid)) return false;
  await stopProcessGroup(prev.pid, 20_000);
  return true;
}
