/**
 * Where the world finds its tools (cosign; the Temporal CLI: services/tools.ts) and the podman
 * settings it needs on machines like the test hosts. Tools live in a per-user cache outside the
 * clone, so a fresh clone on a machine that built them once skips the (slow) build;
 * scripts/setup.sh builds them.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { toolPath, toolsDir } from '../activities/host.ts';
import { dirname, join } from 'node:path';
import { locateTool, stateDir } from '../services/tools.ts';

// Shared with the project's own services (services/tools.ts); re-exported for the world's users.
export { REPO_ROOT, stateDir, temporalBin } from '../services/tools.ts';

/** The per-user kinoite-zfs cache folder (parent of tools/ and rootfs/). */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return dirname(toolsDir(env));
}

/** Path of cosign ($KINOITE_ZFS_COSIGN overrides); throws a clear error when it is missing. */
export function cosignBin(env: NodeJS.ProcessEnv = process.env): string {
  return locateTool(
    'cosign',
    env.KINOITE_ZFS_COSIGN,
    toolPath('cosign', { ...env, KINOITE_ZFS_COSIGN: undefined }),
    'KINOITE_ZFS_COSIGN',
  );
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
