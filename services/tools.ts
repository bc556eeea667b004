/**
 * Where the project's own services keep their state and find the Temporal CLI. Tools live in a
 * per-user cache outside the clone (scripts/setup.sh builds them); state lives in `<repo>/.state`.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { toolPath } from '../activities/host.ts';
import { PACKAGE_ROOT } from '../activities/package-root.ts';

/** The repository root (the folder holding services/, world/, core/, recipes/). */
// From dist/ (npm run build) as from the sources: .state/ and recipes/ stay in the checkout.
export const REPO_ROOT = PACKAGE_ROOT;

/** The project's state folder: $KINOITE_ZFS_STATE, else `<repo>/.state` (git-ignored). */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KINOITE_ZFS_STATE ? resolve(env.KINOITE_ZFS_STATE) : join(REPO_ROOT, '.state');
}

/** Path of the Temporal CLI ($KINOITE_ZFS_TEMPORAL overrides); throws a clear error when it is missing. */
export function temporalBin(env: NodeJS.ProcessEnv = process.env): string {
  return locateTool(
    'Temporal CLI',
    env.KINOITE_ZFS_TEMPORAL,
    toolPath('temporal', { ...env, KINOITE_ZFS_TEMPORAL: undefined }),
    'KINOITE_ZFS_TEMPORAL',
  );
}

/** The override path when given, else the default; throws naming setup.sh and the variable when it is missing. */
export function locateTool(name: string, override: string | undefined, defaultPath: string, envName: string): string {
  const path = override ? resolve(override) : defaultPath;
  if (!existsSync(path)) {
    throw new Error(
      `${name} not found at ${path}${override ? ` (from ${envName})` : ''}: run scripts/setup.sh to build the pinned tools, ` +
        `or point ${envName} at an existing binary`,
    );
  }
  return path;
}
