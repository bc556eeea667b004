/**
 * The worker's composition root: one process serving the control queue (workflows and light
 * activities), the build queue (podman work), or both. Checks its tools first, shuts down
 * gracefully on SIGINT/SIGTERM.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  NativeConnection,
  Worker,
  Runtime,
  DefaultLogger,
  type LogLevel,
  type WorkerOptions,
} from '@temporalio/worker';
import { execa } from 'execa';
import type { Config } from '../core/config.ts';
import { createActivities, BUILD_QUEUE_ACTIVITIES } from '../activities/index.ts';
import { RegistryClient } from '../activities/registry-http.ts';
import { durationMs } from '../core/stream-rules.ts';
import { Host, toolPath } from '../activities/host.ts';
import { RUNS_COMPILED } from '../activities/package-root.ts';
import { connectionOptions } from '../client/connection.ts';
import { checkNamespace } from '../services/namespace.ts';
import { loadConfig } from '../client/config-file.ts';
import { connectClient } from '../client/temporal.ts';
import { freePort } from '../services/daemon.ts';
import { serveMetrics } from './metrics.ts';
export { MetricsListenError } from './metrics.ts';
import type { Client } from '@temporalio/client';
import type { Server } from 'node:http';

/** Task queues a worker can serve. */
export type QueueKind = 'control' | 'build';

/** Tools each queue needs on this host. */
export const QUEUE_TOOLS: Record<QueueKind, string[]> = {
  control: ['cosign', 'git'],
  build: ['podman', 'buildah', 'git', 'qemu-system-x86_64', 'busybox', 'cpio'],
};

/** A tool a queue needs is missing on this host. */
export class MissingToolError extends Error {
  override name = 'MissingToolError';
}

/** Fails with one message naming every missing tool and the queue that needs it. */
export async function checkTools(queues: QueueKind[]): Promise<void> {
  // Every tool once, all at once: one after the other they took about a second of every start.
  const tools = [...new Set(queues.flatMap((q) => QUEUE_TOOLS[q]))];
  const present = new Map(
    await Promise.all(
      tools.map(async (tool) => {
        const bin = tool === 'cosign' ? toolPath('cosign') : tool;
        // busybox has no --version; `busybox true` proves it runs.
        const ok = await execa(bin, tool === 'busybox' ? ['true'] : ['--version'], {
          reject: false,
          timeout: 20_000,
        }).then(
          (r) => r.exitCode === 0 || /version/i.test(`${r.stdout}${r.stderr}`),
          () => false,
        );
        return [tool, ok] as const;
      }),
    ),
  );
  const missing = queues.flatMap((q) =>
    QUEUE_TOOLS[q].filter((tool) => !present.get(tool)).map((tool) => `${tool} (needed by the ${q} queue)`),
  );
  if (missing.length) {
    throw new MissingToolError(
      `This host lacks ${missing.join(', ')}. Install them (scripts/setup.sh does, or apt-get install podman buildah qemu-system-x86 busybox-static cpio; cosign from the Go module proxy) or start the worker with --queues for what this host can serve.`,
    );
  }
}

/** Builds the activities for this host (the only place their dependencies are made), and the host. */
export function hostActivities(config: Config, configFile?: string) {
  const host = new Host(config, configFile ? { file: configFile, load: (f) => loadConfig(f) } : undefined);
  const timeoutMs = durationMs(config.registries.timeout);
  const registry = new RegistryClient({
    insecureHosts: config.registries.insecure,
    authFile: host.authFile(),
    timeouts: { answerMs: timeoutMs, idleMs: timeoutMs },
  });
  return { host, activities: createActivities({ host, registry }) };
}

/** Options of {@link runWorker}. */
export interface RunWorkerOptions {
  config: Config;
  /** The file `config` was read from: stream settings are read from it again when it changes. */
  configFile?: string;
  /** Queues to serve. @default both */
  queues?: QueueKind[];
  /** The build queue to serve instead of the config's temporal.taskQueues.build (a pinned build host). */
  buildQueue?: string;
  /** Resolves when the worker should stop. @default SIGINT or SIGTERM */
  stop?: Promise<void>;
  /** Log level. @default INFO */
  logLevel?: LogLevel;
  /**
   * Worker options beyond the config's: interceptors (activity ones apply to both queues), sinks and a
   * prebuilt workflow bundle for the control queue. The fault suite's worker (test/support/fault-worker.ts) uses them.
   */
  workerOptions?: Pick<WorkerOptions, 'interceptors' | 'sinks' | 'workflowBundle'>;
}

/** The workflow bundle `npm run build` writes next to the compiled code (dist/workflow-bundle.js). */
export const PREBUILT_WORKFLOW_BUNDLE = fileURLToPath(new URL('../workflow-bundle.js', import.meta.url));

/**
 * Where the control worker gets its workflow code. Compiled (from dist/): the bundle made at build
 * time, so a start skips webpack (several seconds on 2 cores). From the TypeScript sources (tsx,
 * tests): the SDK bundles workflows/index.ts at start, so an edit takes effect at once.
 */
export function workflowCodeSource():
  { workflowBundle: { codePath: string }; describe: string } | { workflowsPath: string; describe: string } {
  if (RUNS_COMPILED && existsSync(PREBUILT_WORKFLOW_BUNDLE))
    return { workflowBundle: { codePath: PREBUILT_WORKFLOW_BUNDLE }, describe: 'prebuilt workflow bundle' };
  const workflowsPath = fileURLToPath(new URL(`../workflows/index.${RUNS_COMPILED ? 'js' : 'ts'}`, import.meta.url));
  return { workflowsPath, describe: 'workflow code bundled at start' };
}

/** How this process's Temporal runtime was installed (once per process); the SDK metrics' address if any. */
let runtimeInstalled: { sdkMetrics?: string } | undefined;

async function installRuntime(logLevel: LogLevel | undefined, metrics: boolean): Promise<string | undefined> {
  if (runtimeInstalled) {
    if (metrics && !runtimeInstalled.sdkMetrics)
      throw new Error(
        'worker.metrics is set, but this process already runs a worker without metrics: start a new process',
      );
    return runtimeInstalled.sdkMetrics;
  }
  // The SDK's exporter listens on a private loopback port; worker.metrics serves it with the pipeline's.
  const sdkMetrics = metrics ? `127.0.0.1:${await freePort()}` : undefined;
  Runtime.install({
    logger: new DefaultLogger(logLevel ?? 'INFO', (entry) =>
      console.log(
        `${new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString()} ${entry.level} ${entry.message}${entry.meta?.workflowId ? ` [${entry.meta.workflowId}]` : ''}`,
      ),
    ),
    ...(sdkMetrics ? { telemetryOptions: { metrics: { prometheus: { bindAddress: sdkMetrics } } } } : {}),
  });
  runtimeInstalled = { sdkMetrics };
  return sdkMetrics;
}

/** Runs the worker(s) until `stop` resolves; in-flight activities are cancelled cleanly. */
export async function runWorker(opts: RunWorkerOptions): Promise<void> {
  const queues = opts.queues ?? ['control', 'build'];
  await checkTools(queues);
  const { config } = opts;
  const queueName = { ...config.temporal.taskQueues, ...(opts.buildQueue ? { build: opts.buildQueue } : {}) };
  const sdkMetrics = await installRuntime(opts.logLevel, !!config.worker.metrics);
  const connection = await NativeConnection.connect(connectionOptions(config.temporal));
  try {
    await checkNamespace(connection, config.temporal.namespace, config.temporal.address);
  } catch (err) {
    await connection.close();
    throw err;
  }
  const { host, activities: all } = hostActivities(config, opts.configFile);
  const buildNames = new Set<string>(BUILD_QUEUE_ACTIVITIES);
  const pick = (build: boolean) =>
    Object.fromEntries(Object.entries(all).filter(([name]) => buildNames.has(name) === build));
  const workers: Worker[] = [];
  const { workflowBundle, sinks, interceptors } = opts.workerOptions ?? {};
  const { describe: workflowCode, ...workflowOptions } = workflowBundle
    ? { describe: 'given workflow bundle', workflowBundle }
    : workflowCodeSource();
  let metricsClient: Promise<Client> | undefined;
  let metricsServer: Server | undefined;
  try {
    metricsServer =
      config.worker.metrics && sdkMetrics
        ? await serveMetrics(config.worker.metrics, {
            sdkAddress: sdkMetrics,
            pipeline: queues.includes('control')
              ? {
                  streams: async () => Object.keys((await host.currentConfig()).streams),
                  // A failed connection is tried again at the next scrape, not remembered.
                  client: () =>
                    (metricsClient ??= connectClient(config).catch((err: unknown) => {
                      metricsClient = undefined;
                      throw err;
                    })),
                }
              : undefined,
          })
        : undefined;
    if (queues.includes('control')) {
      workers.push(
        await Worker.create({
          connection,
          namespace: config.temporal.namespace,
          taskQueue: queueName.control,
          ...workflowOptions,
          sinks,
          interceptors,
          activities: pick(false),
          shutdownGraceTime: '10s',
        }),
      );
    }
    if (queues.includes('build')) {
      workers.push(
        await Worker.create({
          connection,
          namespace: config.temporal.namespace,
          taskQueue: queueName.build,
          activities: pick(true),
          interceptors: interceptors?.activity && { activity: interceptors.activity },
          maxConcurrentActivityTaskExecutions: 2,
          shutdownGraceTime: '10s',
        }),
      );
    }
    const stop =
      opts.stop ??
      new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
    if (config.worker.metrics) console.log(`metrics at http://${config.worker.metrics}/metrics`);
    console.log(
      `worker serving ${queues.map((q) => `${q} (${queueName[q]})`).join(' and ')} on ${config.temporal.address}, namespace ${config.temporal.namespace}${queues.includes('control') ? ` (${workflowCode})` : ''}`,
    );
    void stop.then(() => {
      console.log('worker shutting down: finishing or cancelling in-flight activities');
      // NOTE: the SDK also reacts to SIGINT/SIGTERM; shutting down a draining worker again throws.
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    });
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    metricsServer?.close();
    await (await metricsClient?.catch(() => undefined))?.connection.close();
    await connection.close();
  }
}
