/**
 * git: resolve a recipe ref to an exact commit and check that commit out, read-only.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from './run-tool.ts';
import { PermanentError, FailureType } from '../core/errors.ts';
import { GIT_PROTOCOLS } from '../core/refs.ts';
import { checkValue } from '../core/validate.ts';

// GIT_ALLOW_PROTOCOL: git itself refuses every other transport (ext::, fd::, remote helpers), a second
// line behind gitLocationProblem.
const GIT_ENV = { GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_ALLOW_PROTOCOL: GIT_PROTOCOLS.join(':') };

/** Arguments of `git ls-remote` for one ref. */
export function lsRemoteArgs(url: string, ref: string): string[] {
  return ['ls-remote', '--', url, ref, `refs/heads/${ref}`, `refs/tags/${ref}`];
}

/** Resolves a branch, tag or full commit to a 40-character commit id. */
export async function resolveCommit(url: string, ref: string): Promise<string> {
  checkValue('recipeLocation', url, 'recipe.git');
  checkValue('gitRef', ref, 'recipe.ref');
  if (/^[0-9a-f]{40}$/.test(ref)) return ref;
  const { stdout } = await runTool({ tool: 'git', args: lsRemoteArgs(url, ref), env: GIT_ENV });
  const lines = stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'));
  const exact =
    lines.find(([, name]) => name === `refs/heads/${ref}`) ??
    lines.find(([, name]) => name === `refs/tags/${ref}^{}`) ??
    lines.find(([, name]) => name === `refs/tags/${ref}`) ??
    lines[0];
  if (!exact)
    throw new PermanentError(
      FailureType.InvalidInput,
      `Recipe ref "${ref}" does not exist in ${url}; check recipe.ref in the config.`,
    );
  return exact[0];
}

/** Checks out `commit` of `url` into `<cacheDir>/<commit>` once (later calls reuse it) and returns the folder. */
export async function checkoutCommit(input: { url: string; commit: string; cacheDir: string }): Promise<string> {
  checkValue('recipeLocation', input.url, 'recipe.git');
  if (!/^[0-9a-f]{40}$/.test(input.commit))
    throw new PermanentError(
      FailureType.InvalidInput,
      `Recipe commit ${JSON.stringify(input.commit)} is not a full commit id.`,
    );
  const dir = join(input.cacheDir, input.commit);
  if (existsSync(join(dir, '.kz-complete'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(input.cacheDir, { recursive: true });
  try {
    await runTool({ tool: 'git', args: ['clone', '--quiet', '--no-checkout', '--', input.url, tmp], env: GIT_ENV });
    // A commit no branch or tag holds (a pull request's refs/pull/N/merge) is not cloned: fetch it by id.
    const present = await runTool({
      tool: 'git',
      args: ['-C', tmp, 'cat-file', '-e', `${input.commit}^{commit}`],
      env: GIT_ENV,
    }).then(
      () => true,
      () => false,
    );
    if (!present)
      await runTool({ tool: 'git', args: ['-C', tmp, 'fetch', '--quiet', '--', 'origin', input.commit], env: GIT_ENV });
    await runTool({
      tool: 'git',
      args: ['-C', tmp, '-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', input.commit],
      env: GIT_ENV,
    });
    const { stdout } = await runTool({ tool: 'git', args: ['-C', tmp, 'rev-parse', 'HEAD'], env: GIT_ENV });
    if (stdout.trim() !== input.commit)
      throw new PermanentError(
        FailureType.InvalidInput,
        `Pinned ref mismatch: expected ${input.commit}, got ${stdout.trim()}`,
      );
    await runTool({ tool: 'git', args: ['-C', tmp, 'commit-graph', 'write', '--reachable'], env: GIT_ENV }).catch(
      () => undefined,
    );
    await (await import('node:fs/promises')).writeFile(join(tmp, '.kz-complete'), input.commit);
    // Two builds of one run check out the same commit at once: the first complete checkout wins and is never removed.
    if (!existsSync(join(dir, '.kz-complete'))) {
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir).catch((err: NodeJS.ErrnoException) => {
        if (!existsSync(join(dir, '.kz-complete'))) throw err;
      });
    }
    await rm(tmp, { recursive: true, force: true });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (
      err instanceof Error &&
      /did not match any|reference is not a tree|unknown revision|not our ref|couldn't find remote ref|no such remote ref/i.test(
        err.message,
      )
    ) {
      throw new PermanentError(
        FailureType.InvalidInput,
        `Recipe commit ${input.commit} does not exist in ${input.url}, the configured recipe repository (recipe.git): a run builds only commits of that repository. Push the commit there, or check the run's --commit (or the lock's recipe_commit).`,
      );
    }
    throw err;
  }
  return dir;
}
