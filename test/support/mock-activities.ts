/**
 * Workflow tests with mocked activities: the real workflows on the project's own Temporal dev
 * server (`TestWorkflowEnvironment.createFromExistingServer`; the SDK's time-skipping server is a
 * download that cannot be made here), every activity a plain function over an in-memory world (a
 * registry that is a Map of tag → digest, the inputs a resolve would find). No registry, no podman.
 *
 * The world records every activity call (name, input, calling workflow) in order, can pause a call
 * until the test lets it go, and can fail a call before or after its effect.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import type { Activities } from '../../activities/index.ts';
import { parseConfig } from '../../client/config-file.ts';
import type { Config } from '../../core/config.ts';
import { streamPlanOf, type StreamPlan } from '../../core/pipeline.ts';
import { temporalHealthy, temporalStatus } from '../../services/temporal-dev-server.ts';

/** The registry host of the mock world (never contacted: only a name in references). */
export const REGISTRY = 'registry.invalid';
/** The mock world's repositories. */
export const REPOS = {
  base: `${REGISTRY}/o/kinoite-main`,
  builder: `${REGISTRY}/o/devcontainer`,
  candidate: `${REGISTRY}/o/kinoite-zfs-candidate`,
  stable: `${REGISTRY}/o/kinoite-zfs`,
  akmodsCandidate: `${REGISTRY}/o/akmods-candidate`,
  akmodsStable: `${REGISTRY}/o/akmods`,
} as const;
/** The kernel of the mock base (Fedora 43, so the stable tags are `latest` and `43`). */
export const KERNEL = '6.18.5-200.fc43.x86_64';
/** The stable tags a promotion moves, in the saga's order, and the stable akmods tag. */
export const PUBLIC_TAGS = [`${REPOS.stable}:latest`, `${REPOS.stable}:43`, `${REPOS.akmodsStable}:main-43`] as const;

/** A sha256 digest derived from a text (stable across runs). */
export function digestOf(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** One activity call as the mock saw it. */
export interface Call {
  name: keyof Activities;
  input: any;
  /** The workflow that scheduled it. */
  workflowId: string;
}

/**
 * Decides whether a call fails: `before` or `after` its effect (permanently, not retried), or
 * `transient` (before its effect, retried by the activity's retry policy like a registry outage).
 */
export type FaultRule = (call: Call) => 'before' | 'after' | 'transient' | undefined;

/** A paused call: `reached` resolves when a matching call arrives; `release()` lets it go on. */
export interface Pause {
  reached: Promise<Call>;
  release: () => void;
}

/** The in-memory world the mocked activities read and change. */
export class MockWorld {
  /** The registry: `repo:tag` → digest. */
  readonly tags = new Map<string, string>();
  /** Every activity call, in the order they arrived. */
  readonly calls: Call[] = [];
  /** What resolve finds; change them between runs to get new inputs (a new inputs hash). */
  zfsVersion = '2.4.4';
  recipeCommit = 'a'.repeat(40);
  kernels = [KERNEL];
  readonly akmodsDigest = digestOf('akmods-cache');
  fault?: FaultRule;
  /** The mock workers' config: the streams `loadStreamPlan` knows (see {@link configure}). */
  readonly plans = new Map<string, StreamPlan>();
  private pauses: { match: (c: Call) => boolean; hit: (c: Call) => void; gate: Promise<void>; release: () => void }[] =
    [];
  private waiting: (() => void)[] = [];

  /** Pauses the first call that matches until `release()` (a slow registry, a long promotion). */
  pause(match: (c: Call) => boolean): Pause {
    let hit!: (c: Call) => void;
    let release!: () => void;
    const reached = new Promise<Call>((r) => (hit = r));
    const gate = new Promise<void>((r) => (release = r));
    this.pauses.push({ match, hit, gate, release });
    return { reached, release };
  }

  /** Makes `config`'s streams part of the mock workers' config (triggers name a stream; the workers know its settings). */
  configure(config: Config): Config {
    for (const stream of Object.keys(config.streams)) this.plans.set(stream, streamPlanOf(config, stream)!);
    return config;
  }

  /** Lets every paused call go on (a test that failed half-way must not leave the worker waiting). */
  releaseAll(): void {
    this.pauses = [];
    for (const release of this.waiting.splice(0)) release();
  }

  /** The calls one workflow made, by name. */
  callsOf(workflowId: string): Call[] {
    return this.calls.filter((c) => c.workflowId === workflowId);
  }

  /** The registry's tags as a plain object, for deepEqual. */
  snapshot(refs?: readonly string[]): Record<string, string | undefined> {
    const keys = refs ?? [...this.tags.keys()].sort();
    return Object.fromEntries(keys.map((k) => [k, this.tags.get(k)]));
  }

  /** Runs one mocked activity: record, pause, inject faults, apply the effect. */
  async run<T>(name: keyof Activities, input: unknown, effect: () => T): Promise<T> {
    const call: Call = { name, input, workflowId: Context.current().info.workflowExecution?.workflowId ?? '' };
    this.calls.push(call);
    const i = this.pauses.findIndex((p) => p.match(call));
    if (i >= 0) {
      const [p] = this.pauses.splice(i, 1);
      this.waiting.push(p!.release);
      p!.hit(call);
      await p!.gate;
    }
    const fault = this.fault?.(call);
    const fail = () =>
      ApplicationFailure.create({
        type: 'MockFault',
        message: `mock ${name} failed (${fault} its effect)`,
        nonRetryable: fault !== 'transient',
      });
    if (fault === 'before' || fault === 'transient') throw fail();
    const result = effect();
    if (fault === 'after') throw fail();
    return result;
  }
}

/** Every activity of the real factory, mocked over `world`. */
export function mockActivities(world: MockWorld): Activities {
  const pinned = (repo: string, seed: string) => {
    const digest = digestOf(seed);
    return { name: repo, digest, pinned: `${repo}@${digest}` };
  };
  return {
    loadStreamPlan: (input) =>
      world.run('loadStreamPlan', input, () => {
        const plan = world.plans.get(input.stream);
        if (!plan)
          throw ApplicationFailure.create({
            type: 'InvalidInput',
            message: `Stream "${input.stream}" is not in this worker's config`,
            nonRetryable: true,
          });
        return plan;
      }),
    inspectBaseImage: (input) =>
      world.run('inspectBaseImage', input, () => ({
        ref: input.ref,
        ...pinned(REPOS.base, 'base'),
        tag: '43.20261101.0',
        ostreeLinux: world.kernels.at(-1)!,
        version: '43.20261101.0',
        layers: [],
      })),
    resolveImageDigest: (input) =>
      world.run('resolveImageDigest', input, () => ({ ref: input.ref, ...pinned(REPOS.builder, 'builder') })),
    resolveZfsRelease: (input) =>
      world.run('resolveZfsRelease', input, () => ({
        line: input.line,
        tag: `zfs-${world.zfsVersion}`,
        version: world.zfsVersion,
        linuxMin: '4.18',
        linuxMax: '7.2',
      })),
    resolveRecipeCommit: (input) => world.run('resolveRecipeCommit', input, () => ({ commit: world.recipeCommit })),
    listBaseKernels: (input) =>
      world.run('listBaseKernels', input, () => ({ kernels: [...world.kernels], layersRead: 0, memoised: true })),
    checkAkmodsCache: (input) =>
      world.run('checkAkmodsCache', input, () => ({
        status: 'reusable' as const,
        covered: input.kernels,
        missing: [],
        digest: world.akmodsDigest,
        holds: input.kernels,
        perKernel: {},
        message: [],
      })),
    buildKernelAkmods: (input) =>
      world.run('buildKernelAkmods', input, () => ({
        kernel: input.kernel,
        digest: digestOf(`akmods-${input.kernel}`),
        reusedBuild: false,
        timings: {},
      })),
    publishAkmodsCache: (input) => world.run('publishAkmodsCache', input, () => ({ digest: world.akmodsDigest })),
    // The candidate's digest follows from its labels, so new inputs give a new candidate.
    composeCandidate: (input) =>
      world.run('composeCandidate', input, () => {
        const digest = digestOf(JSON.stringify(input.labels));
        world.tags.set(`${input.candidateRepo}:${input.tag}`, digest);
        return { digest };
      }),
    smokeTestCandidate: (input) =>
      world.run('smokeTestCandidate', input, () => ({
        kernels: input.kernels,
        modules: {},
        layersRead: 1,
        layersSkipped: 1,
        bytesRead: 0,
      })),
    bootTestCandidate: (input) => world.run('bootTestCandidate', input, () => ({ kernels: [] })),
    deliverNotification: (input) => world.run('deliverNotification', input, () => ({ url: 'mock', status: 204 })),
    readTagDigests: (input) =>
      world.run('readTagDigests', input, () =>
        Object.fromEntries(input.refs.map((r) => [r, world.tags.get(r) ?? null])),
      ),
    copyImageByDigest: (input) =>
      world.run('copyImageByDigest', input, () => {
        const digest = input.from.split('@')[1]!;
        if (!input.to.includes('@')) world.tags.set(input.to, digest);
        return { digest };
      }),
    signImage: (input) =>
      world.run('signImage', input, () => ({ alreadySigned: false, verify: `cosign verify ${input.ref}` })),
    verifyImageSignature: (input) => world.run('verifyImageSignature', input, () => ({ verified: true as const })),
    attestProvenance: (input) => world.run('attestProvenance', input, () => ({ alreadyAttested: false })),
  };
}

/** A config with one stream over the mock world's repositories, on the given task queues. */
export function mockConfig(input: {
  stream: string;
  address: string;
  queue: string;
  policy?: 'auto' | 'approval' | 'never';
  /** Approval timeout. @default 1h */
  timeout?: string;
  /** The stream's retry budgets (seconds in tests). @default the schema's */
  retry?: Record<string, string>;
}): Config {
  return parseConfig(
    {
      temporal: { address: input.address, taskQueues: { control: input.queue, build: `${input.queue}-build` } },
      streams: { [input.stream]: mockStreamSettings(input) },
    },
    'mock-config.yaml',
  );
}

/** The raw settings (as in a config file) of a stream over the mock world's repositories. */
export function mockStreamSettings(input: { policy?: string; timeout?: string; retry?: Record<string, string> } = {}) {
  return {
    baseImage: `${REPOS.base}:latest`,
    builderImage: `${REPOS.builder}:latest`,
    zfs: { line: '2.4' },
    images: {
      candidate: REPOS.candidate,
      stable: REPOS.stable,
      akmodsCandidate: REPOS.akmodsCandidate,
      akmodsStable: REPOS.akmodsStable,
    },
    smoke: { boot: 'off' },
    recipe: { git: 'https://git.invalid/recipe.git' },
    promotion: {
      policy: input.policy ?? 'auto',
      approvers: ['alice'],
      timeout: input.timeout ?? '1h',
    },
    ...(input.retry ? { retry: input.retry } : {}),
    signing: { keyFile: '/nonexistent/cosign.key', publicKeyFile: '/nonexistent/cosign.pub' },
  };
}

/** A test file's environment: the dev server, a client, and workers serving its own task queues. */
export interface MockEnv {
  env: TestWorkflowEnvironment;
  client: Client;
  address: string;
  /** This file's control queue (the build queue is `<queue>-build`). */
  queue: string;
  world: MockWorld;
  /** Starts the build queue's worker, when the env was started without one (no build host yet). */
  startBuildWorker: () => Promise<void>;
  close: () => Promise<void>;
}

let runtimeInstalled = false;

/**
 * Connects to this checkout's dev server and starts workers for a fresh task queue named after
 * `file`, with every activity mocked over one MockWorld. Fails naming the command that starts
 * the server when it is not running.
 */
export async function startMockEnv(
  file: string,
  opts: {
    /** Start a worker on the build queue too. @default true */
    buildWorker?: boolean;
  } = {},
): Promise<MockEnv> {
  const status = await temporalStatus();
  if (!status?.running || !(await temporalHealthy(status.address)))
    throw new Error(
      `The Temporal dev server of this checkout is not running${status ? ` (last at ${status.address})` : ''}; workflow tests need it: node bin/kinoite-zfs.js services up`,
    );
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    runtimeInstalled = true;
  }
  const env = await TestWorkflowEnvironment.createFromExistingServer({ address: status.address });
  const queue = `wf-test-${file}-${randomBytes(4).toString('hex')}`;
  const world = new MockWorld();
  const activities = mockActivities(world);
  const workflowsPath = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));
  const workers = [
    await Worker.create({ connection: env.nativeConnection, taskQueue: queue, workflowsPath, activities }),
  ];
  const running = [workers[0]!.run()];
  const startBuildWorker = async () => {
    const w = await Worker.create({ connection: env.nativeConnection, taskQueue: `${queue}-build`, activities });
    workers.push(w);
    running.push(w.run());
  };
  if (opts.buildWorker !== false) await startBuildWorker();
  return {
    env,
    client: env.client,
    address: status.address,
    queue,
    world,
    startBuildWorker,
    close: async () => {
      // Streams and runs a test left waiting (parked runs, held streams) would wait for this queue forever.
      for await (const wf of env.client.workflow.list({
        query: `ExecutionStatus = 'Running' AND TaskQueue = '${queue}'`,
      }))
        await env.client.workflow
          .getHandle(wf.workflowId)
          .terminate('workflow test finished')
          .catch(() => undefined);
      world.releaseAll();
      for (const w of workers) w.shutdown();
      await Promise.all(running);
      await env.teardown();
    },
  };
}

/** Polls `check` until it returns a value other than undefined/false; fails naming `what`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A unique stream name for one test (streams live on in the dev server between test runs). */
export function streamName(what: string): string {
  return `wf-${what}-${randomBytes(3).toString('hex')}`;
}
