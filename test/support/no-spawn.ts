// Preload for tests that must prove a command spawns no process: every child_process entry point
// records the attempt in $KZ_SPAWN_LOG and throws.
import childProcess from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const) {
  (childProcess as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
    appendFileSync(process.env.KZ_SPAWN_LOG ?? '/dev/stderr', `${name} ${JSON.stringify(args[0])}\n`);
    throw new Error(`spawning is forbidden in this test (${name} ${String(args[0])})`);
  };
}
syncBuiltinESMExports();
