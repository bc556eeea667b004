/**
 * Test harness for integration tests: bring up a named world from an inline spec, run workers
 * (in-process or as a killable child process), start runs, and read the registry independently
 * of the project's code (skopeo, cosign, the registry's own log).
 */
import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
  opts: {
    fresh?: boolean;
    /** Another Temporal than the project's dev server (a new one: nothing of earlier runs is terminated there). */
    temporal?: { address: string; namespace: string; webUrl?: string };
    /** The state folder of a dev server of the test's own (the fault suite restarts it). */
    temporalState?: string;
  } = {},
): Promise<TestWorld> {
  const temporal = opts.temporal ? undefined : await ensureTemporal({ stateDir: opts.temporalState });
  const dir = join(repoRoot, '.state', 'test-worlds', name);
  if (opts.fresh) {
    await worldDown({ dir }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    // The stream workflow of an earlier run of this world lives in Temporal, not in the folder.
    if (temporal) await terminateStream(temporal.address, name);
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
    ...(opts.temporal
      ? {
          temporalAddress: opts.temporal.address,
          temporalNamespace: opts.temporal.namespace,
          temporalWebUrl: opts.temporal.webUrl,
        }
      : opts.temporalState
        ? { temporalAddress: temporal!.address }
        : {}),
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

/**
 * Ends what a test file started: its in-process worker, its Temporal client and its world; with
 * `endStream`, the world's stream workflow too (it would otherwise wait for triggers forever).
 */
export async function closeAll(parts: {
  worker?: { stop: () => Promise<void> };
  client?: Client;
  world?: TestWorld;
  endStream?: boolean;
}): Promise<void> {
  if (parts.endStream && parts.world)
    await parts.client?.workflow
      .getHandle(`stream/${parts.world.stream}`)
      .terminate('test file done')
      .catch(() => undefined);
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
  // A guard against a hang, not a speed check: on a loaded CI machine a run took over 3 minutes to reach approval.
  timeoutMs = 600_000,
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
 * Starts `kinoite-zfs worker` as a child process in its own process group (so a test can SIGKILL it),
 * serving `queues` (default both). `command` replaces the worker command (node arguments, e.g. a
 * test worker entry); `env` is added to this process's environment.
 */
export async function spawnWorker(
  configFile: string,
  logFile: string,
  opts: { queues?: ('control' | 'build')[]; command?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<ChildProcess> {
  await mkdir(join(logFile, '..'), { recursive: true });
  const { openSync } = await import('node:fs');
  const fd = openSync(logFile, 'a');
  const since = (await readFile(logFile, 'utf8').catch(() => '')).length;
  const command = opts.command ?? [
    join(repoRoot, 'bin', 'kinoite-zfs.js'),
    'worker',
    '--config',
    configFile,
    '--queues',
    (opts.queues ?? ['control', 'build']).join(','),
  ];
  const child = spawn(process.execPath, command, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...opts.env },
  });
  // A loaded machine took over a minute to bundle the workflow code of a worker run from the sources.
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (/worker serving/.test((await readFile(logFile, 'utf8').catch(() => '')).slice(since))) return child;
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`worker exited (${child.exitCode ?? child.signalCode}) before serving; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // Left running, it would serve the world's queues later with whatever config it started with.
  killWorker(child);
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

/** skopeo's credentials flag for a world whose registry needs them (world.info.registry.auth). */
const authArgs = (authFile?: string) => (authFile ? ['--authfile', authFile] : []);

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
  authFile?: string,
): Promise<{ Digest: string; Labels: Record<string, string>; Layers: string[] } | undefined> {
  const r = await execa('skopeo', ['inspect', '--tls-verify=false', ...authArgs(authFile), `docker://${ref}`], {
    reject: false,
  });
  return r.exitCode === 0 ? JSON.parse(r.stdout) : undefined;
}

/** Digest of a reference per skopeo, or undefined. */
export async function digestOf(ref: string, authFile?: string): Promise<string | undefined> {
  return (await inspect(ref, authFile))?.Digest;
}

/** All tags of a repository per skopeo. */
export async function tagsOf(repo: string, authFile?: string): Promise<string[]> {
  const r = await execa('skopeo', ['list-tags', '--tls-verify=false', ...authArgs(authFile), `docker://${repo}`], {
    reject: false,
  });
  return r.exitCode === 0 ? JSON.parse(r.stdout).Tags : [];
}

/** True when cosign verifies `ref` (name@digest) with the public key (with `authFile`'s credentials, when given). */
export async function cosignVerifies(
  ref: string,
  publicKey: string,
  attestation = false,
  authFile?: string,
): Promise<boolean> {
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
  // cosign reads credentials from $DOCKER_CONFIG/config.json, which has the auth file's format.
  const dockerConfig = authFile ? await mkdtemp(join(tmpdir(), 'kz-cosign-auth-')) : undefined;
  try {
    if (dockerConfig) await symlink(authFile!, join(dockerConfig, 'config.json'));
    const r = await execa(toolPath('cosign'), args, {
      reject: false,
      ...(dockerConfig ? { env: { DOCKER_CONFIG: dockerConfig } } : {}),
    });
    return r.exitCode === 0;
  } finally {
    if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
  }
}

/** Runs a command line as a user would paste it (`sh -c`), with the pinned cosign first on PATH. */
export function runAsPrinted(command: string) {
  return execa('sh', ['-c', command], {
    reject: false,
    all: true,
    env: { PATH: `${dirname(toolPath('cosign'))}:${process.env.PATH}` },
  });
}

/** One request from the registry's own log. */
export interface RegistryRequest {
  method: string;
  uri: string;
  /** HTTP status the registry answered. */
  status: number;
}

/** Reads the registry's log from byte `since`: every request with its method and URI. */
export async function registryRequests(world: TestWorld, since = 0): Promise<RegistryRequest[]> {
  const text = (await readFile(world.info.registry.logFile, 'utf8')).slice(since);
  const out: RegistryRequest[] = [];
  for (const line of text.split('\n')) {
    const method = /http\.request\.method=(\w+)/.exec(line)?.[1];
    const m = /http\.request\.uri=(?:"([^"]+)"|(\S+))/.exec(line);
    const uri = m?.[1] ?? m?.[2];
    const status = Number(/http\.response\.status=(\d+)/.exec(line)?.[1]);
    if (method && uri && /msg="response completed/.test(line)) out.push({ method, uri, status });
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

/** Every string in a JSON document, with base64 payload data decoded as well. */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') {
    out.push(value);
    if (/^[A-Za-z0-9+/]+={0,2}$/.test(value) && value.length >= 8) out.push(Buffer.from(value, 'base64').toString());
  } else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) strings(v, out);
  return out;
}

/**
 * The history of a workflow as `temporal workflow show --output json` prints it, as one text of
 * every string in it with payloads decoded: what a secret scan searches.
 */
export async function historyText(world: TestWorld, workflowId: string): Promise<string> {
  const show = await execa(toolPath('temporal'), [
    'workflow',
    'show',
    '--output',
    'json',
    '--address',
    world.config.temporal.address,
    '--namespace',
    world.config.temporal.namespace,
    '--workflow-id',
    workflowId,
  ]);
  return strings(JSON.parse(show.stdout)).join('\n');
}

/**
 * A new commit on a new branch of the world's recipe repository, made in a clone under `dir`: a
 * line appended to the OS Containerfile, or no change (a commit id unique to this test run: branch
 * and PR runs are identified by commit, and Temporal remembers closed runs). With `push: false` the
 * commit stays in the clone (`git -C clone push origin HEAD` publishes it later).
 */
export async function recipeSideCommit(
  world: TestWorld,
  dir: string,
  opts: { containerfile?: string; push?: boolean } = {},
): Promise<{ sha: string; clone: string }> {
  const clone = await mkdtemp(join(dir, 'recipe-clone-'));
  const git = async (args: string[]) =>
    (await execa('git', ['-C', clone, '-c', 'user.name=test', '-c', 'user.email=test@kinoite-zfs.invalid', ...args]))
      .stdout;
  await execa('git', ['clone', '--quiet', world.info.recipe.git, clone]);
  const branch = `side-${randomBytes(6).toString('hex')}`;
  await git(['checkout', '--quiet', '-b', branch]);
  if (opts.containerfile) await appendFile(join(clone, 'recipes', 'os', 'Containerfile'), `${opts.containerfile}\n`);
  await git(['commit', '--quiet', '--no-verify', '--allow-empty', '-am', `test change on ${branch}`]);
  if (opts.push !== false) await git(['push', '--quiet', 'origin', branch]);
  return { sha: (await git(['rev-parse', 'HEAD'])).trim(), clone };
}
