/**
 * podman and buildah: pure argument builders plus thin runners. Every image reference handed in
 * is validated by the caller (core/refs.ts) before it gets here.
 */
import { readFile } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { runTool, type ToolCall } from './run-tool.ts';

/** Arguments of `podman pull` for one digest-pinned image. */
export function pullArgs(ref: string, tls: string[]): string[] {
  return ['pull', '--quiet', ...tls, ref];
}

/** What one akmods builder container run needs (the contract of recipes/akmods/build-akmods.sh). */
export interface BuilderRun {
  image: string;
  recipeDir: string;
  srcDir: string;
  outDir: string;
  kernel: string;
  zfsVersion: string;
  fedora: string;
  name: string;
  /** Container network: `none` when the builder image carries every kernel's build tree. @default 'default' */
  network?: 'default' | 'none';
  /** Host compiler cache, mounted at /ccache. */
  ccacheDir?: string;
  /** Also build the userspace RPMs (once per release). */
  userspace?: boolean;
  /** configure --enable-linux-experimental. */
  experimental?: boolean;
}

/** Arguments of the akmods builder container run. */
export function builderRunArgs(input: BuilderRun): string[] {
  return [
    'run',
    '--rm',
    ...(input.network === 'none' ? ['--network=none'] : []),
    '--pull=never',
    '--name',
    input.name,
    '-v',
    `${input.recipeDir}:/recipe:ro`,
    '-v',
    `${input.srcDir}:/src:ro`,
    '-v',
    `${input.outDir}:/out`,
    ...(input.ccacheDir ? ['-v', `${input.ccacheDir}:/ccache`] : []),
    '-e',
    `KERNEL_RELEASE=${input.kernel}`,
    '-e',
    `ZFS_VERSION=${input.zfsVersion}`,
    '-e',
    `FEDORA_VERSION=${input.fedora}`,
    ...(input.userspace ? ['-e', 'ZFS_BUILD_USERSPACE=1'] : []),
    ...(input.experimental ? ['-e', 'ZFS_LINUX_EXPERIMENTAL=1'] : []),
    input.image,
    '/bin/sh',
    '/recipe/build-akmods.sh',
  ];
}

/**
 * Arguments of `podman build` for the OS image recipe. Without a layer cache (`--layers=false`):
 * compose runs only when its inputs changed (a new base or akmods digest), so a cached step would
 * almost never be reused, while every cached step stays on the build host as a dangling image once
 * the candidate is removed after its push; with the cache, each run that brought a new akmods image
 * left one behind (test/integration/build-host-disk.test.ts).
 */
export function composeBuildArgs(input: {
  contextDir: string;
  tag: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  tls: string[];
}): string[] {
  return [
    'build',
    '--pull=missing',
    ...input.tls,
    '--layers=false',
    '-f',
    'Containerfile',
    ...Object.entries(input.buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
    ...Object.entries(input.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    '-t',
    input.tag,
    input.contextDir,
  ];
}

/** Arguments of `podman push` that records the pushed digest in `digestFile`. */
export function pushArgs(input: { local: string; dest: string; digestFile: string; tls: string[] }): string[] {
  return ['push', '--quiet', ...input.tls, '--digestfile', input.digestFile, input.local, `docker://${input.dest}`];
}

/** Runs podman with the host's container environment. */
export function podman(args: string[], env: Record<string, string>, extra: Partial<ToolCall> = {}) {
  return runTool({ tool: 'podman', args, env, ...extra });
}

/** Runs buildah with the host's container environment. */
export function buildah(args: string[], env: Record<string, string>, extra: Partial<ToolCall> = {}) {
  return runTool({ tool: 'buildah', args, env, ...extra });
}

/** Pushes a local image and returns the digest the registry answered with. */
export async function pushImage(
  input: { local: string; dest: string; digestFile: string; tls: string[]; env: Record<string, string> },
  tool: 'podman' | 'buildah' = 'podman',
): Promise<string> {
  await runTool({ tool, args: pushArgs(input), env: input.env });
  return (await readFile(input.digestFile, 'utf8')).trim();
}

/**
 * `prefix` followed by an id of this activity attempt: a local image or container name unique on the
 * host. Two runs (two streams) build at once on one build host and each removes its own image when
 * done; with a shared name one run's removal pulled the image from under the other's push.
 */
export function attemptLocalName(prefix: string): string {
  let id: string;
  try {
    const { workflowExecution, activityId, attempt } = Context.current().info;
    id = `${workflowExecution?.runId ?? `standalone-${process.pid}`}-${activityId}-${attempt}`;
  } catch {
    id = `standalone-${process.pid}-${Date.now()}`;
  }
  return `${prefix}${id.replace(/[^a-zA-Z0-9_.-]/g, '-')}`;
}

/** Builds a FROM-scratch image holding the files of `dir` at `/`, with labels, tagged `tag` locally. */
export async function scratchImage(input: {
  dir: string;
  labels: Record<string, string>;
  tag: string;
  env: Record<string, string>;
}): Promise<void> {
  // Named after the (host-unique) tag: buildah's own working-container-N names race between builds.
  const name = `kz-scratch-${input.tag.replace(/[^a-zA-Z0-9_.-]/g, '-')}`;
  const { stdout: container } = await buildah(['from', '--quiet', '--name', name, 'scratch'], input.env);
  try {
    await buildah(['copy', '--quiet', container.trim(), `${input.dir}/.`, '/'], input.env);
    await buildah(
      ['config', ...Object.entries(input.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), container.trim()],
      input.env,
    );
    await buildah(['commit', '--quiet', '--rm', container.trim(), input.tag], input.env);
  } catch (err) {
    await buildah(['rm', container.trim()], input.env).catch(() => undefined);
    throw err;
  }
}
