/**
 * Reading a replay lock on the client, before anything starts: either format (the original's
 * `ci/inputs.lock.json` or this project's export), strict parsing (an unknown field is named),
 * the original's placeholder and mismatch messages, the stream's scope (a lock pins digests of
 * the configured base and builder repositories only), a ZFS line or release the stream's release
 * source can satisfy, and a check that the registry still holds every pinned digest.
 */
import { readFile } from 'node:fs/promises';
import { lockFormat, lockProblems, lockZfsProblem, parseLock, type Lock } from '../core/lock.ts';
import { ConfigError } from '../core/config-parse.ts';
import { lockScopeProblem } from '../core/pipeline.ts';
import { RegistryClient } from '../activities/registry-http.ts';
import { fetchReleases } from '../activities/release-source.ts';
import { resolveAuthFile } from '../activities/registry-credentials.ts';
import type { Config } from '../core/config.ts';

/**
 * A refused lock (exit code 2, as a config error): one problem is one line, `FILE: field: "value" problem`.
 */
function lockError(file: string, problems: string[]): ConfigError {
  const err = new ConfigError(file, problems);
  err.message =
    problems.length === 1
      ? `${file}: ${problems[0]}`
      : `${file} cannot be replayed:\n${problems.map((p) => `  - ${p}`).join('\n')}`;
  return err;
}

/** A lock read and checked for `stream`, and the format it was written in. */
export interface ReadLock {
  lock: Lock;
  format: 'original' | 'kinoite-zfs';
}

/** Reads and checks a lock for `stream`; throws ConfigError (exit code 2) listing every problem. */
export async function readLock(
  file: string,
  config: Config,
  stream: string,
  opts: { builderOverride?: string } = {},
): Promise<ReadLock> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw lockError(file, [`Replay lock file not found: ${file}`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw lockError(file, [`Replay lock file is not valid JSON: ${(err as Error).message}`]);
  }
  const parsed = parseLock(raw);
  if (parsed.problems) throw lockError(file, parsed.problems);
  const lock = parsed.lock;
  const plan = config.streams[stream]!;
  const problems = lockProblems(lock, opts.builderOverride);
  if (problems.length) throw lockError(file, problems);
  const scope = lockScopeProblem(plan, lock);
  if (scope) throw lockError(file, [scope]);
  if (lock.zfs_minor_version || lock.zfs_release) {
    const source = plan.zfs.source.releasesUrl;
    const releases = await fetchReleases(source).catch((err) => {
      throw lockError(file, [`Cannot check the lock's ZFS release at ${source}: ${(err as Error).message}`]);
    });
    const zfs = lockZfsProblem(lock, releases, source);
    if (zfs) throw lockError(file, [zfs]);
  }
  const registry = new RegistryClient({
    insecureHosts: config.registries.insecure,
    authFile: resolveAuthFile(config.registries.authFile),
  });
  for (const [field, ref] of [
    ['base_image', lock.base_image],
    ['build_container', lock.build_container],
  ] as const) {
    if (!ref) continue;
    const digest = await registry.resolveDigest(ref).catch((err) => {
      throw lockError(file, [`Cannot check ${field} ${ref} in the registry: ${(err as Error).message}`]);
    });
    if (!digest)
      throw lockError(file, [
        `Lock file ${field} ${ref} is not in the registry (it may have been garbage-collected); export a lock from a newer run.`,
      ]);
  }
  return { lock, format: lockFormat(raw) };
}
