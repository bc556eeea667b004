/**
 * The world's services, on loopback and free ports, with state under the world's folder: an OCI
 * registry (`docker-registry`) and a static HTTP server (`busybox httpd`, the release source).
 * Each `ensure*` reuses a running server and otherwise starts one detached, on the port it had last
 * time, so addresses stay stable and data survives restarts. The Temporal dev server is not the
 * world's: it is services/temporal-dev-server.ts, re-exported here for the world's users.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { registryTokenAuth, type TokenIssuerConfig } from './token-issuer.ts';
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

/**
 * Starts a world service detached with the explicit service environment, records its pid and port
 * (with `record`'s other fields), and waits until `ready`; a service that exits or never answers is
 * reported with the last lines its log got from this start (and stopped, when it still runs).
 */
async function startService(input: {
  file: string;
  args: string[];
  logFile: string;
  cwd: string;
  record: { file: string; port: number; [field: string]: unknown };
  command: string;
  ready: () => Promise<boolean>;
  timeoutMs: number;
  what: string;
  notReady: string;
}): Promise<number> {
  const since = await logSize(input.logFile);
  const pid = await startDetached({
    file: input.file,
    args: input.args,
    logFile: input.logFile,
    cwd: input.cwd,
    env: serviceEnv(),
  });
  const { file, ...fields } = input.record;
  await writeRecord(file, { pid, ...fields, logFile: input.logFile, startedAt: new Date().toISOString() });
  const started = await waitForStart(pid, input.ready, input.timeoutMs);
  if (started !== 'ready') {
    if (started === 'timeout') await stopProcessGroup(pid, 5000, input.command);
    throw new Error(
      `${input.what} ${started === 'exited' ? 'exited while starting' : input.notReady}${await logTail(input.logFile, since)}`,
    );
  }
  return pid;
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

/** The registry's `auth: token` settings (world/token-issuer.ts registryTokenAuth). */
export interface RegistryTokenAuth {
  realm: string;
  service: string;
  issuer: string;
  rootcertbundle: string;
}

function registryConfig(p: ReturnType<typeof registryPaths>, host: string, token?: RegistryTokenAuth): string {
  return [
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
    ...(token ? ['auth:', '  token:', ...Object.entries(token).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`)] : []),
    '',
  ].join('\n');
}

/**
 * Starts or reuses the OCI registry whose state lives in `<dir>/registry/` (data, config, log).
 * A registry that died is restarted on the same port, with its data; one running with other auth
 * settings is restarted with these. With `token`, every request needs a Bearer token from that issuer.
 */
export async function ensureRegistry(input: { dir: string; token?: RegistryTokenAuth }): Promise<RegistryService> {
  const p = registryPaths(input.dir);
  await mkdir(p.data, { recursive: true });
  return withLock(p.lock, async () => {
    const rec = await readRecord<PortRecord>(p.record);
    if (rec && isAlive(rec.pid, 'docker-registry')) {
      const host = `127.0.0.1:${rec.port}`;
      const same = (await readFile(p.config, 'utf8').catch(() => '')) === registryConfig(p, host, input.token);
      if (same && (await waitFor(async () => ((await registryHealthy(host)) ? true : undefined), 10_000)))
        return { host, pid: rec.pid, reused: true, logFile: p.log };
      await stopProcessGroup(rec.pid, 5000, 'docker-registry');
    }
    const port = await freePort(rec?.port);
    const host = `127.0.0.1:${port}`;
    await writeAtomic(p.config, registryConfig(p, host, input.token));
    const pid = await startService({
      file: 'docker-registry',
      args: ['serve', p.config],
      logFile: p.log,
      cwd: p.base,
      record: { file: p.record, port },
      command: 'docker-registry',
      ready: () => registryHealthy(host),
      timeoutMs: 20_000,
      what: `registry on ${host}`,
      notReady: `did not answer GET /v2/ within 20s (is port ${port} taken?)`,
    });
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

/** A running token issuer (world/token-issuer.ts) for a registry with token auth. */
export interface TokenIssuerService {
  /** The registry's `auth: token` settings pointing at this issuer. */
  auth: RegistryTokenAuth;
  /** Issuer process id. */
  pid: number;
  /** True when an already running issuer was reused. */
  reused: boolean;
  /** One line per token request: user (or anonymous), scopes asked, access granted, status. */
  logFile: string;
}

function tokenPaths(dir: string) {
  const base = join(resolve(dir), 'registry', 'token');
  return {
    base,
    key: join(base, 'key.pem'),
    cert: join(base, 'cert.pem'),
    config: join(base, 'issuer.json'),
    log: join(base, 'issuer.log'),
    record: join(base, 'issuer-process.json'),
    lock: join(base, 'issuer.lock'),
  };
}

/** The issuer's module and how node runs it (through tsx when this code runs from its sources). */
function issuerCommand(configFile: string): string[] {
  const ts = import.meta.url.endsWith('.ts');
  const script = fileURLToPath(new URL(`./token-issuer.${ts ? 'ts' : 'js'}`, import.meta.url));
  return [...(ts ? ['--import', import.meta.resolve('tsx')] : []), script, configFile];
}

/**
 * Starts or reuses the token issuer of `<dir>/registry/token/`: an RSA key and self-signed
 * certificate made once with the openssl CLI (test world only), users by password hash, and the
 * repositories anyone may pull. Restarted when those settings change.
 */
export async function ensureTokenIssuer(input: {
  dir: string;
  users: Record<string, string>;
  publicRepositories: string[];
}): Promise<TokenIssuerService> {
  const p = tokenPaths(input.dir);
  await mkdir(p.base, { recursive: true, mode: 0o700 });
  return withLock(p.lock, async () => {
    if (!existsSync(p.key) || !existsSync(p.cert)) {
      const r = await execa(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          p.key,
          '-out',
          p.cert,
          '-days',
          '3650',
          '-subj',
          '/CN=kinoite-zfs world token issuer',
        ],
        { reject: false, all: true, stdin: 'ignore' },
      );
      if (r.exitCode !== 0) throw new Error(`openssl could not make the token issuer's key: ${String(r.all).trim()}`);
    }
    const rec = await readRecord<PortRecord>(p.record);
    const settings = (port: number): TokenIssuerConfig => ({
      host: `127.0.0.1:${port}`,
      service: 'kinoite-zfs-world-registry',
      issuer: 'kinoite-zfs-world-token-issuer',
      keyFile: p.key,
      certFile: p.cert,
      users: input.users,
      publicRepositories: [...input.publicRepositories].sort(),
    });
    if (rec && isAlive(rec.pid, 'token-issuer')) {
      const config = settings(rec.port);
      if ((await readFile(p.config, 'utf8').catch(() => '')) === JSON.stringify(config))
        return { auth: registryTokenAuth(config), pid: rec.pid, reused: true, logFile: p.log };
      await stopProcessGroup(rec.pid, 5000, 'token-issuer');
    }
    const port = await freePort(rec?.port);
    const config = settings(port);
    await writeAtomic(p.config, JSON.stringify(config), 0o600);
    const pid = await startService({
      file: process.execPath,
      args: issuerCommand(p.config),
      logFile: p.log,
      cwd: p.base,
      record: { file: p.record, port },
      command: 'token-issuer',
      ready: () => httpAnswers(config.host, '/token'),
      timeoutMs: 20_000,
      what: `token issuer on ${config.host}`,
      notReady: 'did not answer within 20s',
    });
    return { auth: registryTokenAuth(config), pid, reused: false, logFile: p.log };
  });
}

/** Stops the token issuer of `<dir>/registry/token/`, if one runs. */
export async function stopTokenIssuer(input: { dir: string }): Promise<boolean> {
  const rec = await readRecord<PortRecord>(tokenPaths(input.dir).record);
  if (!rec || !isAlive(rec.pid, 'token-issuer')) return false;
  await stopProcessGroup(rec.pid, 5000, 'token-issuer');
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
    const pid = await startService({
      file: 'busybox',
      args: ['httpd', '-f', '-v', '-p', host, '-h', root],
      logFile: p.log,
      cwd: root,
      record: { file: p.record, port, root },
      command: 'httpd',
      ready: () => httpAnswers(host),
      timeoutMs: 10_000,
      what: `busybox httpd on ${host}`,
      notReady: 'did not answer within 10s',
    });
    return { host, url: `http://${host}`, pid, reused: false };
  });
}

async function httpAnswers(host: string, path = '/'): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}${path}`, { signal: AbortSignal.timeout(2000) });
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
