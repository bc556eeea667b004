/**
 * The world's services, on loopback and free ports, with state under the world's folder: an OCI
 * registry (`docker-registry`) and a static HTTP server (`busybox httpd`, the release source).
 * Each `ensure*` reuses a running server and otherwise starts one detached, on the port it had last
 * time, so addresses stay stable and data survives restarts. The Temporal dev server is not the
 * world's: it is services/temporal-dev-server.ts, re-exported here for the world's users.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  freePort,
  isAlive,
  readRecord,
  startDetached,
  stopProcessGroup,
  waitFor,
  withLock,
  writeAtomic,
  writeRecord,
  logSize,
  logTail,
  serviceEnv,
  waitForStart,
} from '../services/daemon.ts';

export {
  NAMESPACE_RETENTION,
  SEARCH_ATTRIBUTES,
  configureTemporal,
  ensureTemporal,
  stopTemporal,
  temporalHealthy,
  temporalStatus,
  type TemporalService,
} from '../services/temporal-dev-server.ts';

/** A running local OCI registry. */
export interface RegistryService {
  /** `127.0.0.1:<port>`, the registry host in image references. */
  host: string;
  /** Registry process id. */
  pid: number;
  /** True when an already running registry was reused. */
  reused: boolean;
  /** Registry log (every request with method= and uri=). */
  logFile: string;
}

interface PortRecord {
  pid: number;
  port: number;
  logFile: string;
  startedAt: string;
}

function registryPaths(dir: string) {
  const base = join(resolve(dir), 'registry');
  return {
    base,
    config: join(base, 'config.yml'),
    data: join(base, 'data'),
    log: join(base, 'registry.log'),
    record: join(base, 'registry.json'),
    lock: join(base, 'registry.lock'),
  };
}

/** Whether a registry answers `GET /v2/` at host. */
export async function registryHealthy(host: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status === 200 || res.status === 401;
  } catch {
    return false;
  }
}

/**
 * Starts or reuses the OCI registry whose state lives in `<dir>/registry/` (data, config, log).
 * A registry that died is restarted on the same port, with its data.
 */
export async function ensureRegistry(input: { dir: string }): Promise<RegistryService> {
  const p = registryPaths(input.dir);
  await mkdir(p.data, { recursive: true });
  return withLock(p.lock, async () => {
    const rec = await readRecord<PortRecord>(p.record);
    if (rec && isAlive(rec.pid, 'docker-registry')) {
      const host = `127.0.0.1:${rec.port}`;
      if (await waitFor(async () => ((await registryHealthy(host)) ? true : undefined), 10_000))
        return { host, pid: rec.pid, reused: true, logFile: p.log };
      await stopProcessGroup(rec.pid, 5000, 'docker-registry');
    }
    const port = await freePort(rec?.port);
    const host = `127.0.0.1:${port}`;
    await writeAtomic(
      p.config,
      [
        'version: 0.1',
        'log:',
        '  level: info',
        '  formatter: text',
        '  accesslog:',
        '    disabled: false',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${JSON.stringify(p.data)}`,
        '  delete:',
        '    enabled: true',
        '  maintenance:',
        '    uploadpurging:',
        '      enabled: false',
        'http:',
        `  addr: ${host}`,
        '',
      ].join('\n'),
    );
    const since = await logSize(p.log);
    const pid = await startDetached({
      file: 'docker-registry',
      args: ['serve', p.config],
      logFile: p.log,
      cwd: p.base,
      env: serviceEnv(),
    });
    await writeRecord(p.record, {
      pid,
      port,
      logFile: p.log,
      startedAt: new Date().toISOString(),
    } satisfies PortRecord);
    const started = await waitForStart(pid, () => registryHealthy(host), 20_000);
    if (started !== 'ready') {
      if (started === 'timeout') await stopProcessGroup(pid, 5000, 'docker-registry');
      throw new Error(
        `registry on ${host} ${started === 'exited' ? 'exited while starting' : 'did not answer GET /v2/ within 20s'} (is port ${port} taken?)${await logTail(p.log, since)}`,
      );
    }
    return { host, pid, reused: false, logFile: p.log };
  });
}

/** Stops the registry of `<dir>/registry/` (its data stays). */
export async function stopRegistry(input: { dir: string }): Promise<boolean> {
  const p = registryPaths(input.dir);
  const rec = await readRecord<PortRecord>(p.record);
  if (!rec || !isAlive(rec.pid, 'docker-registry')) return false;
  await stopProcessGroup(rec.pid, 10_000, 'docker-registry');
  return true;
}

/** A running static HTTP server. */
export interface HttpService {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Server process id. */
  pid: number;
  /** True when an already running server was reused. */
  reused: boolean;
}

function httpPaths(dir: string) {
  const base = join(resolve(dir), 'http');
  return { base, record: join(base, 'http.json'), log: join(base, 'http.log'), lock: join(base, 'http.lock') };
}

/**
 * Starts or reuses a static HTTP server (`busybox httpd`) serving `root` on loopback; its record
 * lives in `<dir>/http/`. Used as the OpenZFS release source of a world.
 */
export async function ensureHttpServer(input: { dir: string; root: string }): Promise<HttpService> {
  const p = httpPaths(input.dir);
  const root = resolve(input.root);
  await mkdir(p.base, { recursive: true });
  await mkdir(root, { recursive: true });
  return withLock(p.lock, async () => {
    const rec = await readRecord<PortRecord & { root: string }>(p.record);
    if (rec && rec.root === root && isAlive(rec.pid, 'httpd')) {
      const host = `127.0.0.1:${rec.port}`;
      if (await waitFor(async () => ((await httpAnswers(host)) ? true : undefined), 5000))
        return { host, url: `http://${host}`, pid: rec.pid, reused: true };
    }
    if (rec && isAlive(rec.pid, 'httpd')) await stopProcessGroup(rec.pid, 5000, 'httpd');
    const port = await freePort(rec?.port);
    const host = `127.0.0.1:${port}`;
    // -f: stay in the foreground so the recorded pid is the server itself.
    const since = await logSize(p.log);
    const pid = await startDetached({
      file: 'busybox',
      args: ['httpd', '-f', '-v', '-p', host, '-h', root],
      logFile: p.log,
      cwd: root,
      env: serviceEnv(),
    });
    await writeRecord(p.record, { pid, port, root, logFile: p.log, startedAt: new Date().toISOString() });
    const started = await waitForStart(pid, () => httpAnswers(host), 10_000);
    if (started !== 'ready') {
      if (started === 'timeout') await stopProcessGroup(pid, 5000, 'httpd');
      throw new Error(
        `busybox httpd on ${host} ${started === 'exited' ? 'exited while starting' : 'did not answer within 10s'}${await logTail(p.log, since)}`,
      );
    }
    return { host, url: `http://${host}`, pid, reused: false };
  });
}

async function httpAnswers(host: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}/`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/** Stops the HTTP server recorded in `<dir>/http/`. */
export async function stopHttpServer(input: { dir: string }): Promise<boolean> {
  const p = httpPaths(input.dir);
  const rec = await readRecord<PortRecord>(p.record);
  if (!rec || !isAlive(rec.pid, 'httpd')) return false;
  await stopProcessGroup(rec.pid, 5000, 'httpd');
  return true;
}
