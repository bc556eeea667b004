/**
 * `kinoite-zfs ARGS` in a child Node process whose child_process module refuses to spawn (the
 * no-spawn.ts preload): for tests that prove a command decides without running any tool.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Runs the CLI from the repository root; `spawned` lists every spawn it attempted (refused). */
export async function cliWithoutSpawning(
  args: string[],
  opts: { env?: Record<string, string>; extendEnv?: boolean } = {},
): Promise<{ code: number | undefined; stdout: string; stderr: string; out: string; spawned: string }> {
  const spawnLog = join(await mkdtemp(join(tmpdir(), 'kz-no-spawn-')), 'spawn.log');
  await writeFile(spawnLog, '');
  const r = await execa(
    process.execPath,
    ['--import', 'tsx', '--import', join(repo, 'test/support/no-spawn.ts'), join(repo, 'bin/kinoite-zfs.js'), ...args],
    { reject: false, cwd: repo, extendEnv: opts.extendEnv ?? true, env: { ...opts.env, KZ_SPAWN_LOG: spawnLog } },
  );
  const [stdout, stderr] = [String(r.stdout), String(r.stderr)];
  return { code: r.exitCode, stdout, stderr, out: `${stdout}\n${stderr}`, spawned: await readFile(spawnLog, 'utf8') };
}
