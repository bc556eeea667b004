/**
 * A background worker for a world (the demo): started detached, recorded in DIR/worker/worker.json,
 * reused while alive, stopped by `world down`.
 */
import { join } from 'node:path';
import {
  isAlive,
  logSize,
  logTail,
  readRecord,
  startDetached,
  stopProcessGroup,
  waitForStart,
  writeRecord,
} from '../services/daemon.ts';
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
  const since = await logSize(logFile);
  const pid = await startDetached({
    file: process.execPath,
    args: [bin, 'worker', '--config', input.configFile, ...(input.queues ? ['--queues', input.queues] : [])],
    logFile,
  });
  await writeRecord(record, { pid, configFile: input.configFile });
  // The worker acts for the user: it inherits this environment (credentials, REGISTRY_AUTH_FILE).
  const started = await waitForStart(
    pid,
    async () => /worker serving/.test((await readFile(logFile, 'utf8').catch(() => '')).slice(before)),
    120_000,
    250,
  );
  if (started !== 'ready') {
    if (started === 'timeout') await stopProcessGroup(pid, 20_000);
    throw new Error(
      `the worker ${started === 'exited' ? 'exited at start' : 'did not start within 120 s'}${await logTail(logFile, since)}`,
    );
  }
  return { pid, reused: false, logFile };
}

/** Stops the background worker of a world dir, if any. */
export async function stopWorldWorker(dir: string): Promise<boolean> {
  const prev = await readRecord<{ pid: number }>(workerRecordFile(dir));
  if (!prev || !isAlive(prev.pid)) return false;
  await stopProcessGroup(prev.pid, 20_000);
  return true;
}
