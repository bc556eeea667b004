/**
 * The `kinoite-zfs` command line: parse the subcommand, hand over to its module, map errors to
 * exit codes. Subcommand modules stay thin: parse, validate, call the client or the world.
 */
import { ExitCode } from './exit-codes.ts';
import { isPermanentError } from '../core/errors.ts';

type Command = (argv: string[]) => Promise<number>;

const op = (name: string) => async (): Promise<Command> => {
  const { streamOpCommand } = await import('./commands/stream-ops.ts');
  return (argv) => streamOpCommand(name, argv);
};

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  config: {
    summary: 'config check [--config FILE | FILE] | config schema   validate a config file; print the JSON Schema',
    load: async () => (await import('./commands/config.ts')).configCommand,
  },
  world: {
    summary: 'world up --spec FILE --dir DIR | world down --dir DIR [--all]   the hermetic test world',
    load: async () => (await import('./commands/world.ts')).worldCommand,
  },
  services: {
    summary: "services up|down|status [--dir DIR]   the local Temporal dev server (and a world's registry)",
    load: async () => (await import('./commands/services.ts')).servicesCommand,
  },
  temporal: {
    summary:
      'temporal setup [--config F] [--namespace N] [--retention 30d] | temporal cluster up|down|status --dir DIR   the namespace on any Temporal; a self-hosted loopback cluster',
    load: async () => (await import('./commands/temporal.ts')).temporalCommand,
  },
  worker: {
    summary: 'worker [--config FILE] [--queues control,build] [--build-queue NAME]   run a worker',
    load: async () => (await import('./commands/worker.ts')).workerCommand,
  },
  run: {
    summary:
      'run [--config F] [--stream S] [--wait] [--json] [--no-promote] [--rebuild-akmods] [--commit SHA] [--mode main|branch|pr --branch B --pr N] [--lock FILE [--promote]] [--artifacts DIR]   trigger a run and follow it',
    load: async () => (await import('./commands/run.ts')).runCommand,
  },
  status: {
    summary:
      'status [--config F] [--stream S] [--json] [--limit N]   stream state, pending approval, last runs, stable digests',
    load: async () => (await import('./commands/status.ts')).statusCommand,
  },
  approve: {
    summary: 'approve --stream S --digest D --inputs-hash H [--by NAME]   approve the pending candidate',
    load: op('approve'),
  },
  reject: { summary: 'reject --stream S --digest D --inputs-hash H --reason TEXT [--by NAME]', load: op('reject') },
  rollback: {
    summary: 'rollback --stream S --to AUDIT_TAG|DIGEST [--reason TEXT]   move stable back; the stream then holds',
    load: op('rollback'),
  },
  veto: {
    summary: 'veto --stream S --kind inputs|kernel|zfs --value V --reason TEXT   never promote it',
    load: op('veto'),
  },
  unveto: { summary: 'unveto --stream S --kind inputs|kernel|zfs --value V   lift a veto', load: op('unveto') },
  hold: { summary: 'hold --stream S [--reason TEXT]   build and test, but do not promote', load: op('hold') },
  release: { summary: 'release --stream S   end a hold', load: op('release') },
  schedule: {
    summary: 'schedule apply|pause|unpause|trigger|describe [--stream S]   the nightly Temporal Schedule',
    load: async () => (await import('./commands/schedule.ts')).scheduleCommand,
  },
  lock: {
    summary:
      'lock export --run WORKFLOW_ID [--out FILE] [--format kinoite-zfs|original]   the pinned inputs of a finished run, for run --lock',
    load: async () => (await import('./commands/lock.ts')).lockCommand,
  },
  demo: {
    summary: 'demo   the whole pipeline on the hermetic demo world',
    load: async () => (await import('./commands/demo.ts')).demoCommand,
  },
};

/** Prints usage for every subcommand. */
export function usage(): string {
  return [
    'usage: kinoite-zfs <command> [options]',
    '',
    ...Object.values(commands).map((c) => `  ${c.summary}`),
    '',
    'Exit codes: 0 ok, 1 run did not succeed, 2 usage/config error, 3 connection error, 4 internal error.',
  ].join('\n');
}

/** Runs the CLI with the given arguments and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? ExitCode.Ok : ExitCode.ConfigError;
  }
  const command = commands[name];
  if (!command) {
    console.error(`kinoite-zfs: unknown command "${name}".\n\n${usage()}`);
    return ExitCode.ConfigError;
  }
  try {
    return await (
      await command.load()
    )(rest);
  } catch (err) {
    return reportError(err);
  }
}

/** Maps an error that escaped a command to a message and an exit code. */
export function reportError(err: unknown): number {
  // By name, not instanceof: importing ConfigError would load the config schema (zod) into every
  // start of the CLI, --help included, for about a third of its start-up time.
  if ((err as Error)?.name === 'ConfigError') {
    console.error((err as Error).message);
    return ExitCode.ConfigError;
  }
  if (err instanceof UsageError) {
    console.error(`kinoite-zfs: ${err.message}`);
    return ExitCode.ConfigError;
  }
  if (isPermanentError(err)) {
    // A value refused by the rules of core/validate.ts (an option, a lock): nothing was started.
    console.error(`kinoite-zfs: ${err.message}`);
    return ExitCode.ConfigError;
  }
  if ((err as Error)?.name === 'WorkflowUpdateFailedError') {
    // A stream's validator refused the request before it reached history.
    console.error(
      `kinoite-zfs: refused: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`,
    );
    return ExitCode.ConfigError;
  }
  if ((err as Error)?.name === 'NamespaceNotReadyError') {
    console.error(`kinoite-zfs: ${(err as Error).message}`);
    return ExitCode.ConfigError;
  }
  if (isConnectionError(err)) {
    console.error(
      `kinoite-zfs: cannot reach Temporal: ${(err as Error).message}\nStart it with "kinoite-zfs services up" or check temporal.address / TEMPORAL_ADDRESS.`,
    );
    return ExitCode.ConnectionError;
  }
  const grpc = temporalError(err);
  if (grpc) {
    console.error(`kinoite-zfs: ${grpc.line}`);
    return grpc.exitCode;
  }
  console.error(`kinoite-zfs: ${(err as Error)?.stack ?? err}`);
  return ExitCode.InternalError;
}

/** Wrong or missing command-line options. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** gRPC status names by code (https://grpc.io/docs/guides/status-codes/). */
const GRPC_STATUS = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/**
 * An error Temporal answered with (a gRPC status, bare or as the cause of the SDK's ServiceError,
 * or the SDK's NamespaceNotFoundError) as one line and an exit code; undefined for other errors.
 */
export function temporalError(err: unknown): { line: string; exitCode: number } | undefined {
  const e = err as { name?: string; message?: string; code?: unknown; details?: unknown; cause?: unknown };
  if (e?.name === 'NamespaceNotFoundError')
    return {
      line: `${e.message}: run "kinoite-zfs temporal setup" (with --namespace when it is not "default") or check temporal.namespace / TEMPORAL_NAMESPACE`,
      exitCode: ExitCode.ConfigError,
    };
  const status = [e, e?.cause as typeof e | undefined].find((x) => typeof x?.code === 'number' && x.code > 0);
  if (!status && e?.name !== 'ServiceError') return undefined;
  const code = status ? (GRPC_STATUS[status.code as number] ?? `status ${String(status.code)}`) : 'an error';
  // grpc-js messages repeat the status: "3 INVALID_ARGUMENT: <details>".
  const detail = firstLine(
    String((status?.details as string | undefined) || status?.message || e.message || '').replace(/^\d+ [A-Z_]+: /, ''),
  );
  const what = e.message && e.message !== status?.message ? `${firstLine(e.message)}: ` : '';
  const line = `Temporal answered ${code}: ${what}${detail}`;
  if (/search attribute/i.test(detail))
    return { line: `${line} (run "kinoite-zfs temporal setup" for this namespace)`, exitCode: ExitCode.ConfigError };
  if (code === 'UNAUTHENTICATED' || code === 'PERMISSION_DENIED')
    return {
      line: `${line} (check the API key variable temporal.apiKeyEnv / TEMPORAL_API_KEY, or the mTLS files temporal.tls)`,
      exitCode: ExitCode.ConnectionError,
    };
  if (code === 'UNAVAILABLE' || code === 'DEADLINE_EXCEEDED') return { line, exitCode: ExitCode.ConnectionError };
  return { line, exitCode: ExitCode.InternalError };
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]!.trim();
}

function isConnectionError(err: unknown): boolean {
  const e = err as { name?: string; message?: string; code?: string };
  return (
    e?.name === 'TransportError' ||
    (e?.name === 'ServiceError' && /UNAVAILABLE|connect|ECONNREFUSED/i.test(e.message ?? '')) ||
    /ECONNREFUSED|Failed to connect|connection refused|DEADLINE_EXCEEDED.*connect/i.test(e?.message ?? '')
  );
}
