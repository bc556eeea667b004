/**
 * `kinoite-zfs schedule apply|pause|unpause|trigger|describe [--stream S]`: one Temporal Schedule
 * per stream, upserted from the config. Its action starts `scheduledTriggerWorkflow`, which
 * triggers the stream workflow like every other trigger.
 */
import { parseArgs } from 'node:util';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import { loadConfig, defaultConfigPath } from '../config-file.ts';
import { connectClient } from '../temporal.ts';
import { ExitCode } from '../exit-codes.ts';
import { UsageError } from '../cli.ts';
import type { Config } from '../../core/config.ts';
import type { scheduledTriggerWorkflow } from '../../workflows/scheduled-trigger.ts';

/** Schedule id of a stream. */
export function scheduleId(stream: string): string {
  return `kinoite-zfs/${stream}`;
}

/** The schedule a stream's config asks for. */
export function scheduleOptions(config: Config, stream: string): ScheduleOptions {
  const s = config.streams[stream]!;
  return {
    scheduleId: scheduleId(stream),
    spec: { cronExpressions: [s.schedule.cron], timezone: s.schedule.timezone },
    action: {
      type: 'startWorkflow',
      workflowType: 'scheduledTriggerWorkflow',
      workflowId: `schedule/${stream}`,
      taskQueue: config.temporal.taskQueues.control,
      // The stream only: the workers read its settings from their own config.
      args: [{ stream, taskQueues: config.temporal.taskQueues }] as Parameters<typeof scheduledTriggerWorkflow>,
    },
    // The stream coalesces triggers, so a missed or overlapping tick never needs a second run.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1h', pauseOnFailure: false },
    state: { paused: s.schedule.paused, note: `managed by kinoite-zfs schedule apply` },
  };
}

/** Creates or updates a stream's schedule; never makes a duplicate. */
export async function applySchedule(client: Client, config: Config, stream: string): Promise<'created' | 'updated'> {
  const opts = scheduleOptions(config, stream);
  const handle = client.schedule.getHandle(opts.scheduleId);
  try {
    // A schedule an operator paused by hand stays paused unless the config itself says paused.
    await handle.update((prev) => ({
      ...prev,
      spec: opts.spec,
      action: opts.action as never,
      policies: { ...prev.policies, ...opts.policies },
      state: { ...prev.state, paused: prev.state.paused || !!opts.state!.paused, note: opts.state!.note },
    }));
    return 'updated';
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
    await client.schedule.create(opts);
    return 'created';
  }
}

/** Runs a schedule subcommand. */
export async function scheduleCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: { config: { type: 'string' }, stream: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const config = await loadConfig(values.config ?? defaultConfigPath());
  const streams = values.stream ? [values.stream] : Object.keys(config.streams);
  for (const s of streams) if (!config.streams[s]) throw new UsageError(`unknown stream "${s}"`);
  const client = await connectClient(config);
  const out: Record<string, unknown> = {};
  for (const stream of streams) {
    const handle = client.schedule.getHandle(scheduleId(stream));
    try {
      switch (sub) {
        case 'apply':
          out[stream] = await applySchedule(client, config, stream);
          break;
        case 'pause':
          await handle.pause('paused with kinoite-zfs schedule pause');
          out[stream] = 'paused';
          break;
        case 'unpause':
          await handle.unpause('unpaused with kinoite-zfs schedule unpause');
          out[stream] = 'unpaused';
          break;
        case 'trigger':
          await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
          out[stream] = 'triggered';
          break;
        case 'describe': {
          const d = await handle.describe();
          out[stream] = {
            paused: d.state.paused,
            calendars: d.spec.calendars,
            timezone: d.spec.timezone,
            next: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
            recent: d.info.recentActions
              .slice(-3)
              .map((a) => ({ at: a.takenAt.toISOString(), workflowId: a.action.workflow.workflowId })),
          };
          break;
        }
        default:
          throw new UsageError(
            'usage: kinoite-zfs schedule apply|pause|unpause|trigger|describe [--stream S] [--config F]',
          );
      }
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) {
        console.error(`no schedule for stream ${stream}: run kinoite-zfs schedule apply first`);
        return ExitCode.ConfigError;
      }
      throw err;
    }
  }
  console.log(
    values.json
      ? JSON.stringify(out)
      : Object.entries(out)
          .map(([s, v]) => `${scheduleId(s)}: ${typeof v === 'string' ? v : JSON.stringify(v, null, 2)}`)
          .join('\n'),
  );
  return ExitCode.Ok;
}
