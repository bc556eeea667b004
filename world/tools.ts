/**
 * Where the world finds its tools (Temporal CLI, cosign) and the podman settings it needs on
 * machines like the test hosts. Tools live in a per-user cache outside the clone, so a fresh clone
 * on a machine that built them once skips the (slow) build; scripts/setup.sh builds them.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { toolPath, toolsDir } from '../activities/host.ts';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the folder holding world/, core/, recipes/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The per-user kinoite-zfs cache folder (parent of tools/ and rootfs/). */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return dirname(toolsDir(env));
}

/** The project's state folder: $KINOITE_ZFS_STATE, else `<repo>/.state` (git-ignored). */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KINOITE_ZFS_STATE ? resolve(env.KINOITE_ZFS_STATE) : join(REPO_ROOT, '.state');
}

/** Path of the Temporal CLI ($KINOITE_ZFS_TEMPORAL overrides); throws a clear error when it is missing. */
export function temporalBin(env: NodeJS.ProcessEnv = process.env): string {
  return locate(
    'Temporal CLI',
    env.KINOITE_ZFS_TEMPORAL,
    toolPath('temporal', { ...env, KINOITE_ZFS_TEMPORAL: undefined }),
    'KINOITE_ZFS_TEMPORAL',
  );
}

/** Path of cosign ($KINOITE_ZFS_COSIGN overrides); throws a clear error when it is missing. */
export function cosignBin(env: NodeJS.ProcessEnv = process.env): string {
  return locate(
    'cosign',
    env.KINOITE_ZFS_COSIGN,
    toolPath('cosign', { ...env, KINOITE_ZFS_COSIGN: undefined }),
    'KINOITE_ZFS_COSIGN',
  );
}

function locate(name: string, override: string | undefined, defaultPath: string, envName: string): string {
  const path = override ? resolve(override) : defaultPath;
  if (!existsSync(path)) {
    throw new Error(
      `${name} not found at ${path}${override ? ` (from ${envName})` : ''}: run scripts/setup.sh to build the pinned tools, ` +
        `or point ${envName} at an existing binary`,
    );
  }
  return path;
}

/**
 * The CONTAINERS_CONF settings podman/buildah need on hosts like the test machines (no rlimit
 * changes allowed, cgroups in hybrid mode): never written to /etc, only into the state folder and
 * passed through the CONTAINERS_CONF environment variable of the processes that need it.
 */
export const CONTAINERS_CONF_TEXT = `[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
`;

/** Writes (once) `<state>/containers.conf` with CONTAINERS_CONF_TEXT and returns its path. For tests and the demo only. */
export async function containersConfFile(dir: string = stateDir()): Promise<string> {
  const file = join(dir, 'containers.conf');
  const current = await readFile(file, 'utf8').catch(() => undefined);
  if (current !== CONTAINERS_CONF_TEXT) {
    await mkdir(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, CONTAINERS_CONF_TEXT);
    await rename(tmp, file);
  }
  return file;
}

/** The environment for podman/buildah/skopeo children: the current one plus CONTAINERS_CONF. */
export function containerEnv(containersConf: string): NodeJS.ProcessEnv {
  return { CONTAINERS_CONF: containersConf };
}
