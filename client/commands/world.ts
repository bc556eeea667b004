/**
 * The `kinoite-zfs world …` commands: `up`, `down` and `services up|down|status` (the same as
 * `kinoite-zfs services`, ./services.ts), and the world's part of `services … --dir DIR`. With the
 * demo command, the only client module that loads the hermetic world (world/).
 */
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { readRecord } from '../../services/daemon.ts';
import { registryHealthy } from '../../world/services.ts';
import { servicesDown, worldDown, worldUp } from '../../world/world.ts';
import type { WorldInfo } from '../../world/world.ts';
import { servicesCommand } from './services.ts';

const USAGE = `Usage:
  kinoite-zfs world up --spec FILE --dir DIR [--temporal ADDRESS]
      Bring a hermetic world up (or reuse it) and write DIR/config.yaml. Specs: world/specs/*.yaml, docs/world.md.
  kinoite-zfs world down --dir DIR [--all]
      Stop the world's registry and release source; --all stops the Temporal dev server too.
  kinoite-zfs world services up|down|status [--dir DIR]
      The project's own services: Temporal dev server (and, with --dir, that world's registry and release source).`;

/** Prints where everything of a world is. */
function printWorld(info: WorldInfo, out: (line: string) => void): void {
  out(`world ${info.name} in ${info.dir}`);
  out(`  config:          ${info.configFile}   (use: --config ${info.configFile})`);
  out(`  registry:        ${info.registry.host}   (log ${info.registry.logFile})`);
  out(
    `  base image:      ${info.base.reference} (${info.base.versions.map((v) => `${v.version}: ${v.kernels.join(' ')}`).join('; ')})`,
  );
  out(`  builder image:   ${info.builder.reference}@${info.builder.digest}`);
  out(
    `  release source:  ${info.releaseSource.releasesUrl} (${info.releaseSource.releases.map((r) => r.tag).join(', ')})`,
  );
  out(`  recipe:          ${info.recipe.git} ${info.recipe.ref} @ ${info.recipe.head.slice(0, 12)}`);
  out(`  cosign key:      ${info.signing.keyFile} (password in ${info.signing.passwordFile})`);
  out(
    `  Temporal:        ${info.temporal.address} namespace ${info.temporal.namespace}${info.temporal.uiUrl ? `, Web UI ${info.temporal.uiUrl}` : ''}`,
  );
}

/** Runs `kinoite-zfs world <argv…>`; returns the process exit code (0 ok, 1 failure, 2 usage error). */
export async function worldCommand(argv: string[]): Promise<number> {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`${line}\n`);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        spec: { type: 'string' },
        dir: { type: 'string' },
        temporal: { type: 'string' },
        all: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    err(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [sub] = positionals;
  if (values.help || !sub) {
    (values.help ? out : err)(USAGE);
    return values.help ? 0 : 2;
  }
  try {
    if (sub === 'up') {
      if (!values.spec || !values.dir) {
        err(`world up needs --spec FILE and --dir DIR\n${USAGE}`);
        return 2;
      }
      const r = await worldUp({
        specFile: values.spec,
        dir: values.dir,
        ...(values.temporal ? { temporalAddress: values.temporal } : {}),
        log: out,
      });
      out(`world up in ${r.seconds.toFixed(1)}s`);
      printWorld(r.info, out);
      return 0;
    }
    if (sub === 'down') {
      if (!values.dir) {
        err(`world down needs --dir DIR\n${USAGE}`);
        return 2;
      }
      const r = values.all ? await servicesDown({ dir: values.dir }) : await worldDown({ dir: values.dir });
      out(
        `worker ${r.worker ? 'stopped' : 'was not running'}; registry ${r.registry ? 'stopped' : 'was not running'}; release source ${r.releaseSource ? 'stopped' : 'was not running'}` +
          ('temporal' in r ? `; Temporal ${r.temporal ? 'stopped' : 'was not running'}` : ''),
      );
      return 0;
    }
    if (sub === 'services')
      return await servicesCommand(positionals.slice(1).concat(values.dir ? ['--dir', values.dir] : []));
    err(`unknown world command "${sub}"\n${USAGE}`);
    return 2;
  } catch (e) {
    err(`world ${sub}: ${(e as Error).message}`);
    return 1;
  }
}

/** `services up --dir DIR`: brings the world in DIR up again (when there is one) and prints it. */
export async function worldServicesUp(dir: string, out: (line: string) => void): Promise<void> {
  const info = await readRecord<WorldInfo>(join(resolve(dir), 'world.json'));
  if (!info) return;
  const r = await worldUp({ specFile: info.specFile, dir, log: () => undefined });
  printWorld(r.info, out);
}

/** `services down --dir DIR`: stops the world's worker, registry and release source; says which were running. */
export async function worldServicesDown(dir: string): Promise<string> {
  const r = await worldDown({ dir });
  return `registry ${r.registry ? 'stopped' : 'was not running'}; release source ${r.releaseSource ? 'stopped' : 'was not running'}`;
}

/** `services status --dir DIR`: whether the world's registry answers, and where everything of it is. */
export async function worldServicesStatus(dir: string, out: (line: string) => void): Promise<void> {
  const info = await readRecord<WorldInfo>(join(resolve(dir), 'world.json'));
  if (!info) {
    out(`no world in ${dir}`);
    return;
  }
  out(`registry: ${(await registryHealthy(info.registry.host)) ? 'running' : 'stopped'} ${info.registry.host}`);
  printWorld(info, out);
}
