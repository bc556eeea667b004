/**
 * The project's Temporal dev server (Temporal CLI `server start-dev`, SQLite, Web UI) on loopback
 * and free ports, with its state in `<stateDir>/temporal/`: `kinoite-zfs services` for every user,
 * and the world, the tests and the benchmarks. `ensureTemporal` reuses a running server and
 * otherwise starts one detached, on the ports it had last time, so addresses stay stable and runs
 * survive restarts.
 */
import { appendFile, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { Connection } from '@temporalio/client';
import { DEFAULT_RETENTION, setupNamespace } from './namespace.ts';
import { durationMs } from '../core/validate.ts';
import {
  freePort,
  isAlive,
  readRecord,
  startDetached,
  stopProcessGroup,
  waitFor,
  withLock,
  writeRecord,
  logSize,
  logTail,
  serviceEnv,
  waitForStart,
} from './daemon.ts';
import { stateDir as defaultStateDir, temporalBin } from './tools.ts';

export { SEARCH_ATTRIBUTES } from './namespace.ts';

/** How long closed runs stay visible in the dev server's `default` namespace (30 days). */
export const NAMESPACE_RETENTION = DEFAULT_RETENTION;

/** A running Temporal dev server. */
export interface TemporalService {
  /** gRPC frontend, host:port. */
  address: string;
  /** Web UI base URL. */
  uiUrl: string;
  /** Namespace the project uses on the dev server. */
  namespace: 'default';
  /** Server process id (leader of its process group). */
  pid: number;
  /** True when an already running server was reused. */
  reused: boolean;
  /** Server log file. */
  logFile: string;
}

interface TemporalRecord {
  pid: number;
  port: number;
  uiPort: number;
  dbFile: string;
  logFile: string;
  startedAt: string;
}

const TEMPORAL_START_TIMEOUT_MS = 90_000;

/** Paths of the Temporal state folder. */
function temporalPaths(stateDir: string) {
  const dir = join(resolve(stateDir), 'temporal');
  return {
    dir,
    record: join(dir, 'temporal.json'),
    db: join(dir, 'temporal.db'),
    log: join(dir, 'temporal.log'),
    lock: join(dir, 'temporal.lock'),
  };
}

/** Whether the Temporal frontend at `address` reports SERVING. */
export async function temporalHealthy(address: string): Promise<boolean> {
  const r = await execa(
    temporalBin(),
    ['operator', 'cluster', 'health', '--address', address, '--command-timeout', '3s'],
    { reject: false, timeout: 10_000 },
  );
  return r.exitCode === 0 && /SERVING/.test(String(r.stdout)) && !/NOT_SERVING/.test(String(r.stdout));
}

/**
 * Starts or reuses the project's Temporal dev server (state in `<stateDir>/temporal/`), then makes
 * sure the search attributes exist and closed runs are kept for weeks. Safe to call concurrently.
 */
export async function ensureTemporal(input: { stateDir?: string } = {}): Promise<TemporalService> {
  const p = temporalPaths(input.stateDir ?? defaultStateDir());
  const bin = temporalBin();
  await mkdir(p.dir, { recursive: true });
  return withLock(p.lock, async () => {
    const rec = await readRecord<TemporalRecord>(p.record);
    if (rec && isAlive(rec.pid, 'start-dev')) {
      const address = `127.0.0.1:${rec.port}`;
      // A server that is alive may still be starting (another process just launched it).
      if (await waitFor(async () => ((await temporalHealthy(address)) ? true : undefined), 20_000, 500)) {
        await configureTemporal(address);
        return {
          address,
          uiUrl: `http://127.0.0.1:${rec.uiPort}`,
          namespace: 'default',
          pid: rec.pid,
          reused: true,
          logFile: p.log,
        };
      }
      await stopProcessGroup(rec.pid, 10_000, 'start-dev');
    }
    // A brand-new SQLite database that fails while the server creates its schema (seen once as
    // "disk I/O error") holds no data yet: start over once with a clean file.
    const freshDb = !existsSync(p.db);
    let started: { pid: number; address: string; uiPort: number } | undefined;
    for (let attempt = 1; !started; attempt++) {
      try {
        started = await startTemporal(p, bin, rec);
      } catch (err) {
        if (attempt > 1 || !freshDb) throw err;
        await appendFile(p.log, `--- retrying with a new database after: ${(err as Error).message.split(':')[0]}\n`);
        for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(`${p.db}${suffix}`, { force: true });
      }
    }
    const { pid, address, uiPort } = started;
    await configureTemporal(address);
    return { address, uiUrl: `http://127.0.0.1:${uiPort}`, namespace: 'default', pid, reused: false, logFile: p.log };
  });
}

/**
 * Sets the namespace up for the project as `kinoite-zfs temporal setup` does on any Temporal (search
 * attributes, NAMESPACE_RETENTION). `--search-attribute` at server start only applies to a new
 * database, so this goes through the operator service every time (idempotent).
 */
export async function configureTemporal(address: string, namespace = 'default'): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: '10s' });
  try {
    await setupNamespace(connection, { namespace, retentionSeconds: durationMs(NAMESPACE_RETENTION) / 1000 });
  } catch (err) {
    throw new Error(`could not set up namespace ${namespace} on ${address}: ${(err as Error).message}`);
  } finally {
    await connection.close();
  }
}

/** Stops the Temporal dev server of `stateDir` (its data stays in the SQLite file). */
export async function stopTemporal(input: { stateDir?: string } = {}): Promise<boolean> {
  const p = temporalPaths(input.stateDir ?? defaultStateDir());
  const rec = await readRecord<TemporalRecord>(p.record);
  if (!rec || !isAlive(rec.pid, 'start-dev')) return false;
  await stopProcessGroup(rec.pid, 15_000, 'start-dev');
  return true;
}

/** Where the Temporal dev server of `stateDir` runs, when it does. */
export async function temporalStatus(
  input: { stateDir?: string } = {},
): Promise<{ address: string; uiUrl: string; pid: number; running: boolean; logFile: string } | undefined> {
  const p = temporalPaths(input.stateDir ?? defaultStateDir());
  const rec = await readRecord<TemporalRecord>(p.record);
  if (!rec) return undefined;
  return {
    address: `127.0.0.1:${rec.port}`,
    uiUrl: `http://127.0.0.1:${rec.uiPort}`,
    pid: rec.pid,
    running: isAlive(rec.pid, 'start-dev'),
    logFile: p.log,
  };
}

/** Starts the dev server once; throws when it exits or does not serve in time. */
async function startTemporal(
  p: ReturnType<typeof temporalPaths>,
  bin: string,
  rec: TemporalRecord | undefined,
): Promise<{ pid: number; address: string; uiPort: number }> {
  const port = await freePort(rec?.port);
  let uiPort = await freePort(rec?.uiPort);
  if (uiPort === port) uiPort = await freePort(undefined);
  await appendFile(
    p.log,
    `--- ${new Date().toISOString()} starting temporal dev server on 127.0.0.1:${port} (UI ${uiPort})\n`,
  );
  const since = await logSize(p.log);
  const pid = await startDetached({
    file: bin,
    args: [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--ui-port',
      String(uiPort),
      '--db-filename',
      p.db,
      '--dynamic-config-value',
      'frontend.enableServerVersionCheck=false',
      '--log-level',
      'warn',
    ],
    logFile: p.log,
    cwd: p.dir,
    env: serviceEnv(),
  });
  await writeRecord(p.record, {
    pid,
    port,
    uiPort,
    dbFile: p.db,
    logFile: p.log,
    startedAt: new Date().toISOString(),
  } satisfies TemporalRecord);
  const address = `127.0.0.1:${port}`;
  const started = await waitForStart(pid, () => temporalHealthy(address), TEMPORAL_START_TIMEOUT_MS, 500);
  if (started !== 'ready') {
    if (started === 'timeout') await stopProcessGroup(pid, 5000);
    throw new Error(
      `Temporal dev server on ${address} ${started === 'timeout' ? `did not report SERVING within ${TEMPORAL_START_TIMEOUT_MS / 1000}s` : 'exited while starting'} ` +
        `(a port clash or a damaged ${p.db} are the usual causes; delete the database to start empty)${await logTail(p.log, since)}`,
    );
  }
  return { pid, address, uiPort };
}
