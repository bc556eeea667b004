/**
 * Operator commands on a stream: approve, reject, rollback, veto, unveto, hold, release. Each is a
 * Temporal Update whose validator refuses bad requests before they reach history; the refusal's
 * message is printed as is (exit code 2).
 */
import { parseArgs } from 'node:util';
import { WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { connectClient } from '../temporal.ts';
import { streamHandle } from '../stream-client.ts';
import {
  approveUpdate,
  holdUpdate,
  rejectUpdate,
  releaseUpdate,
  rollbackUpdate,
  unvetoUpdate,
  vetoUpdate,
} from '../../workflows/shared.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';
import { pickStream, whoami } from './run.ts';

const common = {
  config: { type: 'string' },
  stream: { type: 'string' },
  by: { type: 'string' },
  reason: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

function need(v: string | undefined, flag: string): string {
  if (!v) throw new UsageError(`--${flag} is required`);
  return v;
}

/** Runs one stream operation named by `op`. */
export async function streamOpCommand(op: string, argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...common,
      digest: { type: 'string' },
      'inputs-hash': { type: 'string' },
      to: { type: 'string' },
      kind: { type: 'string' },
      value: { type: 'string' },
    },
  });
  const config = await loadConfig(values.config ?? defaultConfigPath());
  const stream = pickStream(config, values.stream);
  const by = values.by ?? whoami();
  const client = await connectClient(config);
  const handle = streamHandle(client, stream);
  try {
    let result: unknown;
    switch (op) {
      case 'approve':
        result = await handle.executeUpdate(approveUpdate, {
          args: [{ by, digest: need(values.digest, 'digest'), inputsHash: need(values['inputs-hash'], 'inputs-hash') }],
        });
        break;
      case 'reject':
        result = await handle.executeUpdate(rejectUpdate, {
          args: [
            {
              by,
              digest: need(values.digest, 'digest'),
              inputsHash: need(values['inputs-hash'], 'inputs-hash'),
              reason: need(values.reason, 'reason'),
            },
          ],
        });
        break;
      case 'rollback':
        result = await handle.executeUpdate(rollbackUpdate, {
          args: [{ by, to: need(values.to, 'to'), reason: values.reason }],
        });
        break;
      case 'veto': {
        const kind = need(values.kind, 'kind');
        if (kind !== 'inputs' && kind !== 'kernel' && kind !== 'zfs')
          throw new UsageError('--kind must be inputs, kernel or zfs');
        result = await handle.executeUpdate(vetoUpdate, {
          args: [{ by, kind, value: need(values.value, 'value'), reason: need(values.reason, 'reason') }],
        });
        break;
      }
      case 'unveto': {
        const kind = need(values.kind, 'kind');
        if (kind !== 'inputs' && kind !== 'kernel' && kind !== 'zfs')
          throw new UsageError('--kind must be inputs, kernel or zfs');
        result = await handle.executeUpdate(unvetoUpdate, { args: [{ by, kind, value: need(values.value, 'value') }] });
        break;
      }
      case 'hold':
        result = await handle.executeUpdate(holdUpdate, { args: [{ by, reason: values.reason }] });
        break;
      case 'release':
        result = await handle.executeUpdate(releaseUpdate, { args: [{ by, reason: values.reason }] });
        break;
      default:
        throw new UsageError(`unknown stream operation ${op}`);
    }
    console.log(values.json ? JSON.stringify(result) : `${op} on stream/${stream}: ${JSON.stringify(result)}`);
    return ExitCode.Ok;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError || err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      console.error(`kinoite-zfs ${op}: refused: ${(err.cause as Error | undefined)?.message ?? err.message}`);
      return ExitCode.ConfigError;
    }
    if ((err as Error).name === 'WorkflowNotFoundError') {
      console.error(
        `kinoite-zfs ${op}: stream/${stream} has not run yet; start it with: kinoite-zfs run --stream ${stream}`,
      );
      return ExitCode.ConfigError;
    }
    throw err;
  }
}
