/**
 * `kinoite-zfs services up|down|status [--dir DIR]`: the project's local Temporal dev server, for
 * every user (services/temporal-dev-server.ts). With `--dir`, also the hermetic world in DIR (its
 * registry and release source): only then is the world's code loaded (./world.ts).
 */
import { parseArgs } from 'node:util';
import { ensureTemporal, stopTemporal, temporalStatus } from '../../services/temporal-dev-server.ts';
import { stateDir } from '../../services/tools.ts';

const USAGE = `Usage:
  kinoite-zfs services up|down|status [--dir DIR]
      The project's own Temporal dev server (state in $KINOITE_ZFS_STATE or <repo>/.state);
      with --dir, also that world's registry and release source (docs/world.md).`;

/** Runs `kinoite-zfs services <argv…>`; returns the exit code (0 ok, 1 failure or not running, 2 usage error). */
export async function servicesCommand(argv: string[]): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`${line}\n`);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { dir: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
    });
  } catch (e) {
    err(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [action] = positionals;
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const dir = values.dir;
  try {
    if (action === 'up') {
      const t = await ensureTemporal();
      out(
        `Temporal ${t.reused ? 'already running' : 'started'}: ${t.address} namespace ${t.namespace}, Web UI ${t.uiUrl} (log ${t.logFile})`,
      );
      if (dir) await (await import('./world.ts')).worldServicesUp(dir, out);
      return 0;
    }
    if (action === 'down') {
      const world = dir ? await (await import('./world.ts')).worldServicesDown(dir) : undefined;
      const temporal = await stopTemporal();
      out(`Temporal ${temporal ? 'stopped' : 'was not running'}${world ? `; ${world}` : ''}`);
      return 0;
    }
    if (action === 'status') {
      const t = await temporalStatus();
      out(
        t
          ? `Temporal: ${t.running ? 'running' : 'stopped'} ${t.address}, Web UI ${t.uiUrl} (state ${stateDir()}, log ${t.logFile})`
          : `Temporal: never started (state ${stateDir()})`,
      );
      if (dir) await (await import('./world.ts')).worldServicesStatus(dir, out);
      return t?.running ? 0 : 1;
    }
  } catch (e) {
    err(`services ${action}: ${(e as Error).message}`);
    return 1;
  }
  err(`services needs up, down or status\n${USAGE}`);
  return 2;
}
