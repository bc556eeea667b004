/**
 * `kinoite-zfs temporal setup`: sets a namespace up for the project on any Temporal (the `Kz*`
 * search attributes, the retention of closed runs; creates the namespace when the service allows
 * it). Idempotent: run it once per namespace, again after an upgrade adds an attribute.
 * `kinoite-zfs temporal cluster up|down|status --dir DIR`: the self-hosted loopback cluster of
 * deploy/temporal/ (PostgreSQL, Temporal server, Web UI) with its state in DIR.
 */
import { parseArgs } from 'node:util';
import { Connection } from '@temporalio/client';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { connectionOptions } from '../connection.ts';
import { DEFAULT_RETENTION, SEARCH_ATTRIBUTES, setupNamespace } from '../../services/namespace.ts';
import { durationMs } from '../../core/validate.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';

const USAGE = `Usage:
  kinoite-zfs temporal setup [--config FILE] [--namespace NAME] [--retention ${DEFAULT_RETENTION}]
      Creates the namespace (config temporal.namespace, or NAME) when missing, sets how long closed
      runs stay visible, and adds the search attributes kinoite-zfs needs. Safe to run again.
  kinoite-zfs temporal cluster up|down|status --dir DIR [--delete]
      A self-hosted Temporal on loopback with its state in DIR: PostgreSQL, the Temporal server
      and its Web UI (deploy/temporal/README.md). down --delete also removes DIR.`;

/** Runs `kinoite-zfs temporal <argv…>`; returns the exit code. */
export async function temporalCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      namespace: { type: 'string' },
      retention: { type: 'string', default: DEFAULT_RETENTION },
      dir: { type: 'string' },
      delete: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return ExitCode.Ok;
  }
  const [sub, action] = positionals;
  if (sub === 'setup') return setup(values);
  if (sub === 'cluster') {
    try {
      return await cluster(action, values.dir, values.delete);
    } catch (err) {
      if (err instanceof UsageError) throw err;
      // A missing binary, a port clash, a server that would not start: its message says which (and its log).
      console.error(`kinoite-zfs temporal cluster ${action}: ${(err as Error).message}`);
      return 1;
    }
  }
  throw new UsageError(`temporal needs setup or cluster\n${USAGE}`);
}

async function setup(values: { config?: string; namespace?: string; retention?: string }): Promise<number> {
  const retentionSeconds = durationMs(values.retention!, '--retention') / 1000;
  if (retentionSeconds < 86_400)
    throw new UsageError(`--retention ${values.retention} is shorter than Temporal's minimum of 1d`);
  const config = await loadConfig(values.config ?? defaultConfigPath());
  const namespace = values.namespace ?? config.temporal.namespace;
  const { address } = config.temporal;
  const connection = await Connection.connect({ ...connectionOptions(config.temporal), connectTimeout: '10s' });
  try {
    const r = await setupNamespace(connection, { namespace, retentionSeconds });
    const changes = [
      r.createdNamespace ? 'created the namespace' : undefined,
      !r.createdNamespace && r.previousRetentionSeconds !== r.retentionSeconds
        ? `set its retention to ${values.retention}`
        : undefined,
      r.addedAttributes.length ? `added the search attributes ${r.addedAttributes.join(', ')}` : undefined,
    ].filter(Boolean);
    console.log(
      `namespace ${namespace} on ${address}: ${changes.length ? changes.join('; ') : 'already set up, nothing changed'} ` +
        `(retention ${values.retention}; ${SEARCH_ATTRIBUTES.length} search attributes)`,
    );
    return ExitCode.Ok;
  } catch (err) {
    const code = (err as { code?: number }).code;
    // Temporal Cloud manages namespaces and search attributes in its own control plane.
    if (code === 7 || code === 12)
      throw new UsageError(
        `Temporal at ${address} does not let this identity manage namespace ${namespace} (${(err as Error).message.split('\n')[0]}); ` +
          `on Temporal Cloud create the namespace and add the search attributes there: tcld namespace search-attributes add -n ${namespace} ` +
          SEARCH_ATTRIBUTES.map((a) => `--sa ${a.name}=${a.cliType}`).join(' ') +
          ' (deploy/temporal/README.md)',
      );
    throw err;
  } finally {
    await connection.close();
  }
}

async function cluster(action: string | undefined, dir: string | undefined, remove: boolean): Promise<number> {
  if (!dir) throw new UsageError(`temporal cluster needs --dir DIR\n${USAGE}`);
  const { clusterUp, clusterDown, clusterStatus } = await import('../../services/temporal-cluster.ts');
  if (action === 'up') {
    const t0 = Date.now();
    const c = await clusterUp({ dir, log: (line) => console.log(line) });
    console.log(
      `Temporal cluster ${c.reused ? 'already running' : `up in ${((Date.now() - t0) / 1000).toFixed(1)}s`}: ${c.address} (PostgreSQL 127.0.0.1:${c.postgres.port}), Web UI ${c.uiUrl}, state ${c.dir}\n` +
        `Next: TEMPORAL_ADDRESS=${c.address} kinoite-zfs temporal setup --config FILE [--namespace NAME]`,
    );
    return ExitCode.Ok;
  }
  if (action === 'down') {
    const was = await clusterDown({ dir, remove });
    console.log(`Temporal cluster in ${dir} ${was ? 'stopped' : 'was not running'}${remove ? '; folder removed' : ''}`);
    return ExitCode.Ok;
  }
  if (action === 'status') {
    const s = await clusterStatus({ dir });
    if (!s) {
      console.log(`Temporal cluster in ${dir}: never started`);
      return 1;
    }
    const parts = Object.entries(s.running).map(([k, v]) => `${k} ${v ? 'running' : 'stopped'}`);
    console.log(`Temporal cluster in ${s.dir}: ${s.address}, Web UI ${s.uiUrl}; ${parts.join(', ')}`);
    return Object.values(s.running).every(Boolean) ? ExitCode.Ok : 1;
  }
  throw new UsageError(`temporal cluster needs up, down or status\n${USAGE}`);
}
