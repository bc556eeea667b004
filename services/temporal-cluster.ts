/**
 * A self-hosted Temporal cluster on loopback, with every part in one folder: PostgreSQL (Debian's
 * package, a private cluster in `<dir>/pgdata`, never the system's), the schema made by Temporal's
 * own SQL tool, the Temporal server (go.temporal.io/server v1.29.1, the version the Temporal CLI
 * embeds) with deploy/temporal/config/postgres.yaml, and the Web UI server (ui-server v2.42.1, the
 * UI the CLI embeds) with deploy/temporal/ui/kinoite-zfs.yaml. `kinoite-zfs temporal cluster up`
 * and the cluster test use it; deploy/temporal/README.md says how the same parts run on real hosts.
 * The namespace is not made here: `kinoite-zfs temporal setup` does that, on this or any Temporal.
 */
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { Connection } from '@temporalio/client';
import { toolPath } from '../activities/host.ts';
import {
  freePort,
  isAlive,
  logSize,
  logTail,
  readRecord,
  serviceEnv,
  startDetached,
  stopProcessGroup,
  waitForStart,
  withLock,
  writeRecord,
} from './daemon.ts';
import { locateTool, REPO_ROOT } from './tools.ts';

/** The folder holding the server's and the UI's config templates. */
export const DEPLOY_DIR = join(REPO_ROOT, 'deploy', 'temporal');

/** A running loopback cluster. */
export interface ClusterInfo {
  dir: string;
  /** gRPC frontend, host:port. */
  address: string;
  /** Web UI base URL. */
  uiUrl: string;
  postgres: { port: number; pid: number; logFile: string };
  server: { pid: number; logFile: string };
  ui: { pid: number; logFile: string };
  /** True when a running cluster was reused. */
  reused?: boolean;
}

const PORT_NAMES = [
  'postgres',
  'frontendGrpc',
  'frontendHttp',
  'frontendMembership',
  'historyGrpc',
  'historyMembership',
  'matchingGrpc',
  'matchingMembership',
  'workerGrpc',
  'workerMembership',
  'ui',
] as const;
type Ports = Record<(typeof PORT_NAMES)[number], number>;

const START_TIMEOUT_MS = 120_000;

/** The binaries a cluster needs; throws naming scripts/setup.sh when one is missing. */
export function clusterTools(env: NodeJS.ProcessEnv = process.env) {
  const server = locateTool(
    'Temporal server',
    env.KINOITE_ZFS_TEMPORAL_SERVER,
    toolPath('temporal-server', { ...env, KINOITE_ZFS_TEMPORAL_SERVER: undefined }),
    'KINOITE_ZFS_TEMPORAL_SERVER',
  );
  const ui = locateTool(
    'Temporal UI server',
    env.KINOITE_ZFS_TEMPORAL_UI_SERVER,
    toolPath('temporal-ui-server', { ...env, KINOITE_ZFS_TEMPORAL_UI_SERVER: undefined }),
    'KINOITE_ZFS_TEMPORAL_UI_SERVER',
  );
  // setup.sh builds the schema tool beside the server (one `go install` of both).
  const sql = locateTool('Temporal SQL tool', undefined, join(dirname(server), 'temporal-sql-tool'), '');
  return { server, sql, ui, pgBin: postgresBinDir(env) };
}

/** PostgreSQL's server programs: $KINOITE_ZFS_PG_BINDIR, else the newest /usr/lib/postgresql/N/bin. */
export function postgresBinDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KINOITE_ZFS_PG_BINDIR) return resolve(env.KINOITE_ZFS_PG_BINDIR);
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions.length)
    throw new Error(
      'PostgreSQL not found in /usr/lib/postgresql/*/bin: install it (scripts/setup.sh does: apt-get install postgresql) or set KINOITE_ZFS_PG_BINDIR',
    );
  return join(root, versions[0]!, 'bin');
}

function paths(dir: string) {
  const d = resolve(dir);
  return {
    dir: d,
    pgdata: join(d, 'pgdata'),
    record: join(d, 'cluster.json'),
    lock: join(d, 'cluster.lock'),
    pgLog: join(d, 'postgres.log'),
    serverLog: join(d, 'temporal-server.log'),
    uiLog: join(d, 'temporal-ui.log'),
    setupLog: join(d, 'schema.log'),
  };
}

/**
 * PostgreSQL refuses to run as root: as root, its programs run as the `postgres` user (Debian's
 * package makes it) and the data folder is theirs.
 */
function asPostgres(file: string, args: string[]): { file: string; args: string[] } {
  if (process.getuid?.() !== 0) return { file, args };
  return { file: 'setpriv', args: ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', file, ...args] };
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const r = await execa('id', ['-u', 'postgres'], { reject: false });
  const g = await execa('id', ['-g', 'postgres'], { reject: false });
  if (r.exitCode !== 0 || g.exitCode !== 0)
    throw new Error(
      'running as root needs the postgres user to run PostgreSQL: install Debian\'s "postgresql" package',
    );
  return { uid: Number(r.stdout), gid: Number(g.stdout) };
}

/**
 * Distinct free loopback ports. The membership ports are stored in a PostgreSQL `smallint`
 * (cluster_membership.rpc_port), so they come from below 32768, not from the kernel's ephemeral
 * range (a server given one stops at start: "value … is out of range for type smallint").
 */
async function allocatePorts(): Promise<Ports> {
  const ports = {} as Ports;
  const used = new Set<number>();
  for (const name of PORT_NAMES) {
    let port: number | undefined;
    for (let attempt = 0; port === undefined; attempt++) {
      if (attempt > 200) throw new Error('could not find free loopback ports below 32768 for the Temporal membership');
      const wanted = name.endsWith('Membership') ? 20_000 + Math.floor(Math.random() * 12_000) : undefined;
      const got = await freePort(wanted, 0);
      if ((wanted === undefined || got === wanted) && !used.has(got)) port = got;
    }
    used.add(port);
    ports[name] = port;
  }
  return ports;
}

interface ClusterRecord {
  ports: Ports;
  pids: { postgres: number; server: number; ui: number };
  startedAt: string;
}

function info(p: ReturnType<typeof paths>, rec: ClusterRecord, reused: boolean): ClusterInfo {
  return {
    dir: p.dir,
    address: `127.0.0.1:${rec.ports.frontendGrpc}`,
    uiUrl: `http://127.0.0.1:${rec.ports.ui}`,
    postgres: { port: rec.ports.postgres, pid: rec.pids.postgres, logFile: p.pgLog },
    server: { pid: rec.pids.server, logFile: p.serverLog },
    ui: { pid: rec.pids.ui, logFile: p.uiLog },
    reused,
  };
}

/** Whether every process of the cluster's record is alive. */
function allAlive(rec: ClusterRecord | undefined): rec is ClusterRecord {
  return !!rec && isAlive(rec.pids.postgres) && isAlive(rec.pids.server) && isAlive(rec.pids.ui);
}

/** Whether the frontend at `address` answers its gRPC health check with SERVING. */
export async function frontendServing(address: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: '3s' }).catch(() => undefined);
  if (!connection) return false;
  try {
    const r = await connection.healthService.check({ service: 'temporal.api.workflowservice.v1.WorkflowService' });
    return r.status === 1; // SERVING
  } catch {
    return false;
  } finally {
    await connection.close();
  }
}

async function uiAnswers(url: string): Promise<boolean> {
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
  await r?.arrayBuffer().catch(() => undefined);
  return r?.status === 200;
}

/**
 * Brings the cluster of `dir` up (or reuses it when all of it runs): PostgreSQL, the schema (made
 * once, updated every time: both idempotent), the Temporal server and the Web UI, all on free
 * loopback ports. `log` hears each step and how long it took.
 */
export async function clusterUp(input: { dir: string; log?: (line: string) => void }): Promise<ClusterInfo> {
  const p = paths(input.dir);
  const log = input.log ?? (() => undefined);
  const tools = clusterTools();
  await mkdir(p.dir, { recursive: true });
  return withLock(p.lock, async () => {
    const prev = await readRecord<ClusterRecord>(p.record);
    if (allAlive(prev) && (await frontendServing(`127.0.0.1:${prev.ports.frontendGrpc}`))) return info(p, prev, true);
    await stopAll(p, prev);
    const ports = await allocatePorts();
    const pids = { postgres: 0, server: 0, ui: 0 };
    const step = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
      const t0 = Date.now();
      const value = await fn();
      log(`${label} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
      return value;
    };
    try {
      const fresh = !existsSync(join(p.pgdata, 'PG_VERSION'));
      if (fresh) await step('PostgreSQL initdb…', () => initdb(p, tools.pgBin));
      pids.postgres = await step(`PostgreSQL on 127.0.0.1:${ports.postgres}…`, () =>
        startPostgres(p, tools.pgBin, ports.postgres),
      );
      await step('Temporal schema (temporal-sql-tool)…', () => setupSchema(p, tools.sql, ports.postgres, fresh));
      pids.server = await step(`Temporal server on 127.0.0.1:${ports.frontendGrpc}…`, () =>
        startServer(p, tools.server, ports),
      );
      pids.ui = await step(`Temporal Web UI on http://127.0.0.1:${ports.ui}…`, () => startUi(p, tools.ui, ports));
    } catch (err) {
      await stopAll(p, { ports, pids, startedAt: '' });
      throw err;
    }
    const rec: ClusterRecord = { ports, pids, startedAt: new Date().toISOString() };
    await writeRecord(p.record, rec);
    return info(p, rec, false);
  });
}

/** Stops the cluster of `dir` (UI, server, then PostgreSQL); with `remove`, deletes the folder too. */
export async function clusterDown(input: { dir: string; remove?: boolean }): Promise<boolean> {
  const p = paths(input.dir);
  if (!existsSync(p.dir)) return false;
  const rec = await readRecord<ClusterRecord>(p.record);
  const wasRunning = !!rec && (isAlive(rec.pids.server) || isAlive(rec.pids.ui) || isAlive(rec.pids.postgres));
  await stopAll(p, rec);
  if (input.remove) await rm(p.dir, { recursive: true, force: true });
  return wasRunning;
}

/** The cluster of `dir` as recorded, with whether each part runs. */
export async function clusterStatus(input: {
  dir: string;
}): Promise<(ClusterInfo & { running: { postgres: boolean; server: boolean; ui: boolean } }) | undefined> {
  const p = paths(input.dir);
  const rec = await readRecord<ClusterRecord>(p.record);
  if (!rec) return undefined;
  return {
    ...info(p, rec, false),
    running: { postgres: isAlive(rec.pids.postgres), server: isAlive(rec.pids.server), ui: isAlive(rec.pids.ui) },
  };
}

async function stopAll(p: ReturnType<typeof paths>, rec: ClusterRecord | undefined): Promise<void> {
  if (!rec) return;
  if (rec.pids.ui) await stopProcessGroup(rec.pids.ui, 10_000, 'temporal-ui-server');
  if (rec.pids.server) await stopProcessGroup(rec.pids.server, 20_000, 'temporal-server');
  if (rec.pids.postgres) await stopProcessGroup(rec.pids.postgres, 20_000, 'postgres');
  // A postmaster started by an earlier process whose record was lost still holds pgdata.
  await stopStrayPostmaster(p);
}

async function stopStrayPostmaster(p: ReturnType<typeof paths>): Promise<void> {
  const pidFile = join(p.pgdata, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const { readFile } = await import('node:fs/promises');
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0]);
  if (pid && isAlive(pid, 'postgres')) await stopProcessGroup(pid, 20_000, 'postgres');
}

async function initdb(p: ReturnType<typeof paths>, pgBin: string): Promise<void> {
  await mkdir(p.pgdata, { recursive: true, mode: 0o700 });
  if (process.getuid?.() === 0) {
    const { uid, gid } = await postgresIds();
    await chown(p.pgdata, uid, gid);
    // The postgres user must reach pgdata through the cluster folder (made by root, often 0700).
    await chmod(p.dir, 0o711);
  }
  const cmd = asPostgres(join(pgBin, 'initdb'), [
    '-D',
    p.pgdata,
    '-A',
    'trust',
    '-U',
    'temporal',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  const r = await execa(cmd.file, cmd.args, { reject: false, all: true, env: serviceEnv() });
  if (r.exitCode !== 0)
    throw new Error(`initdb ${p.pgdata} failed: ${String(r.all).trim().split('\n').slice(-5).join(' | ')}`);
}

async function startPostgres(p: ReturnType<typeof paths>, pgBin: string, port: number): Promise<number> {
  const since = await logSize(p.pgLog);
  const cmd = asPostgres(join(pgBin, 'postgres'), [
    '-D',
    p.pgdata,
    '-p',
    String(port),
    '-k',
    p.pgdata,
    '-c',
    'listen_addresses=127.0.0.1',
  ]);
  const pid = await startDetached({ file: cmd.file, args: cmd.args, logFile: p.pgLog, env: serviceEnv() });
  const ready = () =>
    execa(join(pgBin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'temporal'], {
      reject: false,
    }).then((r) => r.exitCode === 0);
  const started = await waitForStart(pid, ready, START_TIMEOUT_MS, 300);
  if (started !== 'ready') {
    await stopProcessGroup(pid, 5000);
    throw new Error(
      `PostgreSQL on 127.0.0.1:${port} ${started === 'timeout' ? 'did not start in time' : 'exited'}${await logTail(p.pgLog, since)}`,
    );
  }
  return pid;
}

/** The SQL tool's arguments for one database (the `temporal` user, trusted on loopback). */
function sqlArgs(port: number, db: string): string[] {
  return [
    '--plugin',
    'postgres12',
    '--ep',
    '127.0.0.1',
    '-p',
    String(port),
    '-u',
    'temporal',
    '--pw',
    'temporal',
    '--db',
    db,
  ];
}

async function setupSchema(p: ReturnType<typeof paths>, sql: string, port: number, fresh: boolean): Promise<void> {
  const { appendFile } = await import('node:fs/promises');
  const run = async (args: string[]) => {
    const r = await execa(sql, args, { reject: false, all: true, env: serviceEnv() });
    await appendFile(p.setupLog, `$ temporal-sql-tool ${args.join(' ')}\n${r.all}\n`);
    if (r.exitCode !== 0)
      throw new Error(
        `temporal-sql-tool ${args.slice(-3).join(' ')} failed (log ${p.setupLog}): ${String(r.all).trim().split('\n').slice(-3).join(' | ')}`,
      );
  };
  for (const [db, schema] of [
    ['temporal', 'postgresql/v12/temporal'],
    ['temporal_visibility', 'postgresql/v12/visibility'],
  ] as const) {
    if (fresh) {
      await run([...sqlArgs(port, db), 'create-database']);
      await run([...sqlArgs(port, db), 'setup-schema', '-v', '0.0']);
    }
    // Idempotent: brings an existing database to the schema of this server version.
    await run([...sqlArgs(port, db), 'update-schema', '--schema-name', schema]);
  }
}

async function startServer(p: ReturnType<typeof paths>, server: string, ports: Ports): Promise<number> {
  const since = await logSize(p.serverLog);
  const pid = await startDetached({
    file: server,
    args: ['--root', DEPLOY_DIR, '--config', 'config', '--env', 'postgres', '--allow-no-auth', 'start'],
    logFile: p.serverLog,
    cwd: p.dir,
    env: serviceEnv({
      POSTGRES_SEEDS: '127.0.0.1',
      DB_PORT: String(ports.postgres),
      POSTGRES_USER: 'temporal',
      POSTGRES_PWD: 'temporal',
      BIND_ON_IP: '127.0.0.1',
      FRONTEND_GRPC_PORT: String(ports.frontendGrpc),
      FRONTEND_HTTP_PORT: String(ports.frontendHttp),
      FRONTEND_MEMBERSHIP_PORT: String(ports.frontendMembership),
      HISTORY_GRPC_PORT: String(ports.historyGrpc),
      HISTORY_MEMBERSHIP_PORT: String(ports.historyMembership),
      MATCHING_GRPC_PORT: String(ports.matchingGrpc),
      MATCHING_MEMBERSHIP_PORT: String(ports.matchingMembership),
      WORKER_GRPC_PORT: String(ports.workerGrpc),
      WORKER_MEMBERSHIP_PORT: String(ports.workerMembership),
      DYNAMIC_CONFIG_FILE_PATH: join(DEPLOY_DIR, 'config', 'dynamicconfig.yaml'),
    }),
  });
  const address = `127.0.0.1:${ports.frontendGrpc}`;
  const started = await waitForStart(pid, () => frontendServing(address), START_TIMEOUT_MS, 500);
  if (started !== 'ready') {
    await stopProcessGroup(pid, 5000);
    throw new Error(
      `Temporal server on ${address} ${started === 'timeout' ? `did not report SERVING within ${START_TIMEOUT_MS / 1000}s` : 'exited while starting'}${await logTail(p.serverLog, since)}`,
    );
  }
  return pid;
}

async function startUi(p: ReturnType<typeof paths>, ui: string, ports: Ports): Promise<number> {
  const since = await logSize(p.uiLog);
  const pid = await startDetached({
    file: ui,
    args: ['--root', DEPLOY_DIR, '--config', 'ui', '--env', 'kinoite-zfs', 'start'],
    logFile: p.uiLog,
    cwd: p.dir,
    env: serviceEnv({
      TEMPORAL_ADDRESS: `127.0.0.1:${ports.frontendGrpc}`,
      TEMPORAL_UI_HOST: '127.0.0.1',
      TEMPORAL_UI_PORT: String(ports.ui),
    }),
  });
  const url = `http://127.0.0.1:${ports.ui}/`;
  const started = await waitForStart(pid, () => uiAnswers(url), START_TIMEOUT_MS, 300);
  if (started !== 'ready') {
    await stopProcessGroup(pid, 5000);
    throw new Error(
      `Temporal Web UI on ${url} ${started === 'timeout' ? 'did not answer in time' : 'exited while starting'}${await logTail(p.uiLog, since)}`,
    );
  }
  return pid;
}
