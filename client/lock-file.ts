/**
 * Reading a replay lock on the client, before anything starts: strict parsing (an unknown field
 * is an error), the original's placeholder and mismatch messages, and a check that the registry
 * still holds every pinned digest.
 */
import { readFile } from 'node:fs/promises';
import { Lock, lockProblems } from '../core/lock.ts';
import { formatIssues, ConfigError } from '../core/config-parse.ts';
import { RegistryClient } from '../activities/registry-http.ts';
import { resolveAuthFile } from '../activities/registry-credentials.ts';
import type { Config } from '../core/config.ts';

/** Reads and checks a lock; throws ConfigError (exit code 2) listing every problem. */
export async function readLock(file: string, config: Config, opts: { builderOverride?: string } = {}): Promise<Lock> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new ConfigError(file, [`Replay lock file not found: ${file}`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [`Replay lock file is not valid JSON: ${(err as Error).message}`]);
  }
  const parsed = Lock.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(
      file,
      formatIssues(parsed.error).map((p) =>
        p.replace(/^base_image: required field is missing.*/, 'Lock file missing required field: base_image'),
      ),
    );
  const problems = lockProblems(parsed.data, opts.builderOverride);
  if (problems.length) throw new ConfigError(file, problems);
  const registry = new RegistryClient({
    insecureHosts: config.registries.insecure,
    authFile: resolveAuthFile(config.registries.authFile),
  });
  for (const [field, ref] of [
    ['base_image', parsed.data.base_image],
    ['build_container', parsed.data.build_container],
  ] as const) {
    if (!ref) continue;
    const digest = await registry.resolveDigest(ref).catch((err) => {
      throw new ConfigError(file, [`Cannot check ${field} ${ref} in the registry: ${(err as Error).message}`]);
    });
    if (!digest)
      throw new ConfigError(file, [
        `Lock file ${field} ${ref} is not in the registry (it may have been garbage-collected); export a lock from a newer run.`,
      ]);
  }
  return parsed.data;
}
