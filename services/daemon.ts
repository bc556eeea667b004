/**
 * Detached background processes for the project's own services: start in their own process group
 * (so they survive the parent and stop as a whole), remember pid and ports in a JSON record, find
 * them again, and stop them. Shared by the Temporal dev server, the registry and the HTTP server.
 */
import { openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';

/**
 * A free TCP port on 127.0.0.1: `preferred` when it can be bound within `waitMs` (so addresses
 * stay stable across restarts; a just-killed multi-threaded server holds its sockets a moment
 * after its pid looks dead), else one the kernel picks.
 */
export async function freePort(preferred?: number, waitMs = 5000): Promise<number> {
  if (preferred) {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const ok = await tryListen(preferred);
      if (ok !== undefined) return ok;
      if (Date.now() >= deadline) break;
      await sleep(200);
    }
  }
  const port = await tryListen(0);
  if (port === undefined)
    throw new Error('could not bind any port on 127.0.0.1: check that the loopback interface is up');
  return port;
}

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolveP) => {
    const server = createServer();
    server.once('error', () => resolveP(undefined));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      const address = server.address();
      const got = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => resolveP(got));
    });
  });
}

/**
 * Whether `pid` is a live (not zombie) process whose command line contains `command` (when given),
 * so a recycled pid of an unrelated process is never mistaken for our service.
 */
export function isAlive(pid: number | undefined, command?: string): boolean {
  if (!pid || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    // EPERM means it exists but belongs to someone else: never ours.
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    if (command) {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (!cmdline.includes(command)) return false;
    }
  } catch {
    return false;
  }
  return true;
}

/** What starting a detached process needs. */
export interface DetachedProcess {
  /** Executable path. */
  file: string;
  /** Arguments (an array; never a shell string). */
  args: string[];
  /** Log file that receives stdout and stderr (appended). */
  logFile: string;
  /**
   * The process's whole environment. Services pass {@link serviceEnv}: the caller's variables are
   * configuration to some of them. @default this process's environment (a worker acting for the user)
   */
  env?: NodeJS.ProcessEnv;
  /** Working directory. */
  cwd?: string;
}

/**
 * Starts a process in its own process group with output appended to its log, detached from this
 * process (it keeps running when the caller exits). Returns its pid.
 */
export async function startDetached(p: DetachedProcess): Promise<number> {
  await mkdir(dirname(p.logFile), { recursive: true });
  const fd = openSync(p.logFile, 'a');
  try {
    // node's spawn (argument array, no shell) rather than execa: the child must write straight to
    // the log file descriptor, with no pipe through this process, or it would die with us.
    const child = spawn(p.file, p.args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: p.env ?? process.env,
      ...(p.cwd ? { cwd: p.cwd } : {}),
    });
    child.on('error', () => undefined);
    child.unref();
    if (!child.pid) throw new Error(`could not start ${p.file}: see ${p.logFile}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Variables every program may need; nothing else of the caller's environment reaches a service. */
const BASE_ENV = ['PATH', 'HOME', 'USER', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

/**
 * The explicit environment of a service the project starts: the base variables of this process plus
 * `own`, and no others. docker-registry reads every `REGISTRY_*` variable as configuration (a podman
 * user's exported `REGISTRY_AUTH_FILE` would stop it at start) and the Temporal CLI reads
 * `TEMPORAL_*`: neither may see the caller's.
 */
export function serviceEnv(own: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of BASE_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...own };
}

/** How the start of a service ended. */
export type StartOutcome = 'ready' | 'exited' | 'timeout';

/**
 * Waits until `ready()` answers true, the process `pid` exits (at once, not at the timeout), or
 * `timeoutMs` passes.
 */
export async function waitForStart(
  pid: number,
  ready: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<StartOutcome> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready().catch(() => false)) return 'ready';
    if (!isAlive(pid)) return 'exited';
    if (Date.now() >= deadline) return 'timeout';
    await sleep(intervalMs);
  }
}

/**
 * The last `lines` lines a service wrote to its log since byte `since` (its start), indented under
 * a heading, for an error message; '' when it wrote nothing.
 */
export async function logTail(file: string, since = 0, lines = 15): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const { size } = await handle.stat();
    const from = Math.max(since, size - 16 * 1024);
    const buf = Buffer.alloc(Math.max(0, size - from));
    await handle.read(buf, 0, buf.length, from);
    const tail = buf.toString('utf8').trimEnd().split('\n').slice(-lines);
    return tail.join('') === '' ? '' : `\nIts log (${file}) ends with:\n${tail.map((l) => `  ${l}`).join('\n')}`;
  } finally {
    await handle.close();
  }
}

/** Size of a log file before a start, for {@link logTail}. */
export async function logSize(file: string): Promise<number> {
  return (await stat(file).catch(() => undefined))?.size ?? 0;
}

/** Sends SIGTERM to the process group of `pid`, waits up to `timeoutMs`, then SIGKILLs it. */
export async function stopProcessGroup(pid: number, timeoutMs = 15_000, command?: string): Promise<void> {
  if (!isAlive(pid, command)) return;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(100);
  }
  signalGroup(pid, 'SIGKILL');
  while (isAlive(pid) && Date.now() < deadline + 5000) await sleep(100);
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** Reads a JSON record, or undefined when it does not exist or cannot be parsed. */
export async function readRecord<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Writes a file atomically (temp file in the same folder, then rename). */
export async function writeAtomic(file: string, content: string, mode?: number): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, content, mode === undefined ? {} : { mode });
  await rename(tmp, file);
}

/** Writes a JSON record atomically. */
export async function writeRecord(file: string, value: unknown): Promise<void> {
  await writeAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Polls `check` every `intervalMs` until it returns a value other than undefined, or returns undefined after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await sleep(intervalMs);
  }
}

/**
 * Runs `fn` holding an exclusive lock file, so two processes (two test files, a test and the demo)
 * never start the same service twice. A lock older than `staleMs` is taken over (its holder died).
 */
export async function withLock<T>(lockFile: string, fn: () => Promise<T>, staleMs = 180_000): Promise<T> {
  await mkdir(dirname(lockFile), { recursive: true });
  const deadline = Date.now() + staleMs + 10_000;
  for (;;) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const info = await stat(lockFile).catch(() => undefined);
      const holder = Number(await readFile(lockFile, 'utf8').catch(() => ''));
      const stale = !info || Date.now() - info.mtimeMs > staleMs || (holder > 0 && !isAlive(holder));
      if (stale) {
        await rm(lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for lock ${lockFile}; remove it if no kinoite-zfs process is running`);
      await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockFile, { force: true });
  }
}
