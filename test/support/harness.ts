/**
 * Test harness for integration tests: bring up a named world from an inline spec, run workers
 * (in-process or as a killable child process), start runs, and read the registry independently
 * of the project's code (skopeo, cosign, the registry's own log).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { worldUp, worldDown, type WorldInfo } from '../../world/world.ts';
import { ensureTemporal } from '../../world/services.ts';
import { loadConfig } from '../../client/config-file.ts';
import { connectClient, startPipelineRun } from '../../client/temporal.ts';
import { toolPath } from '../../activities/host.ts';
import type { Config } from '../../core/config.ts';
import type { PipelineInput } from '../../core/pipeline.ts';
import { streamState } from '../../client/stream-client.ts';
import type { StreamStateData } from '../../workflows/stream-state.ts';

/** The repository root. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** A world brought up for a test file. */
export interface TestWorld {
  dir: string;
  info: WorldInfo;
  config: Config;
  configFile: string;
  stream: string;
}

/**
 * Writes `spec` to .state/test-worlds/<name>/spec.yaml and brings the world up. With `fresh`, the
 * world's previous state (registry data, recipe repository, keys) is removed first, so a test file
 * never depends on an earlier run; later calls in the same file change the world incrementally.
 * With `temporalState`, the world uses the Temporal dev server of that state folder instead of the
 * project's (a test that restarts Temporal must not stop the one every other test file uses).
 */
export async function bringUpWorld(
  name: string,
  spec: object,
  opts: { fresh?: boolean; temporalState?: string } = {},
): Promise<TestWorld> {
  const temporal = await ensureTemporal({ stateDir: opts.temporalState });
  const dir = join(repoRoot, '.state', 'test-worlds', name);
  if (opts.fresh) {
    await worldDown({ dir }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    // The stream workflow of an earlier run of this world lives in Temporal, not in the folder.
    await terminateStream(temporal.address, name);
  }
  await mkdir(dir, { recursive: true });
  const specFile = join(dir, 'spec.yaml');
  // The stream is named after the world: stream workflows (stream/<name>) of different test worlds never meet.
  const s = spec as { stream?: Record<string, unknown> };
  await writeFile(specFile, stringify({ name, ...spec, stream: { ...s.stream, name } }));
  const { info } = await worldUp({
    specFile,
    dir,
    log: () => undefined,
    ...(opts.temporalState ? { temporalAddress: temporal.address } : {}),
  });
  const config = await loadConfig(info.configFile);
  return { dir, info, config, configFile: info.configFile, stream: Object.keys(config.streams)[0]! };
}

/** A one-kernel (or N-kernel) world spec with sensible defaults; `versions` lists each base version's kernels. */
export function worldSpec(opts: {
  versions: string[][];
  append?: Record<string, string>;
  zfs?: { version: string; linuxMax: string; prerelease?: boolean }[];
  promotion?: string;
  /** The stream's retry settings (seconds in tests). */
  retry?: Record<string, string>;
}) {
  return {
    base: {
      repository: 'ublue-os/kinoite-main',
      versions: opts.versions.map((kernels, i) => ({
        version: `43.202611${String(i + 1).padStart(2, '0')}.0`,
        kernels,
      })),
    },
    builder: { repository: 'ublue-os/devcontainer' },
    zfs: { releases: (opts.zfs ?? [{ version: '2.4.4', linuxMax: '7.2' }]).map((r) => ({ linuxMin: '4.18', ...r })) },
    ...(opts.append ? { recipe: { append: opts.append } } : {}),
    stream: {
      name: 'kinoite-zfs',
      zfsLine: '2.4',
      owner: 'kinoite',
      promotion: opts.promotion ?? 'auto',
      ...(opts.retry ? { retry: opts.retry } : {}),
    },
  };
}

/** Terminates `stream/<name>` (and its parked runs) left by an earlier run of a test world. */
async function terminateStream(address: string, name: string): Promise<void> {
  const { Connection } = await import('@temporalio/client');
  const connection = await Connection.connect({ address });
  try {
    const c = new Client({ connection });
    for await (const wf of c.workflow.list({
      query: `ExecutionStatus = 'Running' AND (WorkflowId = 'stream/${name}' OR WorkflowId STARTS_WITH 'stream/${name}/')`,
    })) {
      await c.workflow
        .getHandle(wf.workflowId)
        .terminate('fresh test world')
        .catch(() => undefined);
    }
  } finally {
    await connection.close();
  }
}

/** Stops a test world's processes (registry, release source, background worker). */
export async function tearDownWorld(world: TestWorld | undefined): Promise<void> {
  if (world) await worldDown({ dir: world.dir }).catch(() => undefined);
}

/** Ends what a test file started: its in-process worker, its Temporal client and its world. */
export async function closeAll(parts: {
  worker?: { stop: () => Promise<void> };
  client?: Client;
  world?: TestWorld;
}): Promise<void> {
  await parts.worker?.stop();
  await parts.client?.connection.close();
  await tearDownWorld(parts.world);
}

/** Polls the stream's state until `check` holds; fails naming `what` and the stream's last notes. */
export async function waitStreamState(
  c: Client,
  stream: string,
  what: string,
  check: (s: StreamStateData) => boolean,
  timeoutMs = 120_000,
): Promise<StreamStateData> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await streamState(c, stream);
    if (s && check(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s?.notes.slice(-3))}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs a worker in this process until the returned stop() is called. */
export async function startWorker(
  from: Config | Pick<TestWorld, 'config' | 'configFile'>,
  queues?: ('control' | 'build')[],
): Promise<{ stop: () => Promise<void> }> {
  const { runWorker } = await import('../../worker/main.ts');
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  // Given a world, the worker reads its stream settings from the world's config file, as a deployed
  // worker does: a world brought up again with other settings reaches the stream at its next trigger.
  const { config, configFile } = 'configFile' in from ? from : { config: from, configFile: undefined };
  const running = runWorker({ config, configFile, queues, stop: stopped, logLevel: 'WARN' });
  running.catch((err) => console.error('worker failed', err));
  await new Promise((r) => setTimeout(r, 1500));
  return {
    stop: async () => {
      stop();
      await running.catch(() => undefined);
    },
  };
}

/**
 * Starts `kinoite-zfs worker` as a child process in its own process group (so a test can SIGKILL it).
 * `command` replaces the worker command (node arguments, e.g. a test worker entry); `env` is added
 * to this process's environment.
 */
export async function spawnWorker(
  configFile: string,
  logFile: string,
  opts: { command?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<ChildProcess> {
  await mkdir(join(logFile, '..'), { recursive: true });
  const { openSync } = await import('node:fs');
  const fd = openSync(logFile, 'a');
  const since = (await readFile(logFile, 'utf8').catch(() => '')).length;
  const command = opts.command ?? [join(repoRoot, 'bin', 'kinoite-zfs.js'), 'worker', '--config', configFile];
  const child = spawn(process.execPath, command, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...opts.env },
  });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (/worker serving/.test((await readFile(logFile, 'utf8').catch(() => '')).slice(since))) return child;
    if (child.exitCode !== null || child.signalCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`worker did not start; see ${logFile}`);
}

/** SIGKILLs a spawned worker and its children. */
export function killWorker(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

/** A Temporal client for a world's config. */
export function client(world: TestWorld): Promise<Client> {
  return connectClient(world.config);
}

/** Starts a pipeline run for the world's stream. */
export async function startRun(world: TestWorld, c: Client, options?: PipelineInput['options']) {
  return startPipelineRun(c, world.config, { stream: world.stream, trigger: { source: 'test' }, options });
}

/** The highest attempt the run's history recorded for the activities `match` picks (by id and type). */
export async function maxAttempt(
  handle: WorkflowHandle,
  match: (a: { activityId: string; activityType: string }) => boolean,
): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  const picked = new Set<string>();
  let max = 0;
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s && match({ activityId: s.activityId ?? '', activityType: s.activityType?.name ?? '' }))
      picked.add(String(e.eventId));
    const st = e.activityTaskStartedEventAttributes;
    if (st && picked.has(String(st.scheduledEventId))) max = Math.max(max, st.attempt ?? 0);
  }
  return max;
}

/** `skopeo inspect` of a reference in the world registry, or undefined when it does not exist. */
export async function inspect(
  ref: string,
): Promise<{ Digest: string; Labels: Record<string, string>; Layers: string[] } | undefined> {
  const r = await execa('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`], { reject: false });
  return r.exitCode === 0 ? JSON.parse(r.stdout) : undefined;
}

/** Digest of a reference per skopeo, or undefined. */
export async function digestOf(ref: string): Promise<string | undefined> {
  return (await inspect(ref))?.Digest;
}

/** All tags of a repository per skopeo. */
export async function tagsOf(repo: string): Promise<string[]> {
  const r = await execa('skopeo', ['list-tags', '--tls-verify=false', `docker://${repo}`], { reject: false });
  return r.exitCode === 0 ? JSON.parse(r.stdout).Tags : [];
}

/** True when cosign verifies `ref` (name@digest) with the public key. */
export async function cosignVerifies(ref: string, publicKey: string, attestation = false): Promise<boolean> {
  const args = attestation
    ? [
        'verify-attestation',
        '--type',
        'slsaprovenance1',
        '--key',
        publicKey,
        '--insecure-ignore-tlog',
        '--allow-insecure-registry',
        ref,
      ]
    : ['verify', '--key', publicKey, '--insecure-ignore-tlog', '--allow-insecure-registry', ref];
  const r = await execa(toolPath('cosign'), args, { reject: false });
  return r.exitCode === 0;
}

/** One request from the registry's own log. */
export interface RegistryRequest {
  method: string;
  uri: string;
}

/** Reads the registry's log from byte `since`: every request with its method and URI. */
export async function registryRequests(world: TestWorld, since = 0): Promise<RegistryRequest[]> {
  const text = (await readFile(world.info.registry.logFile, 'utf8')).slice(since);
  const out: RegistryRequest[] = [];
  for (const line of text.split('\n')) {
    const method = /http\.request\.method=(\w+)/.exec(line)?.[1];
    const m = /http\.request\.uri=(?:"([^"]+)"|(\S+))/.exec(line);
    const uri = m?.[1] ?? m?.[2];
    if (method && uri && /msg="response completed/.test(line)) out.push({ method, uri });
  }
  return out;
}

/** Current size of the registry log (a mark for registryRequests). */
export async function registryLogMark(world: TestWorld): Promise<number> {
  return (await readFile(world.info.registry.logFile, 'utf8')).length;
}

/** Requests that change the registry (PUT, POST, PATCH, DELETE). */
export function writes(requests: RegistryRequest[]): RegistryRequest[] {
  return requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');
}
