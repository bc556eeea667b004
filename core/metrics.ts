/**
 * The pipeline's Prometheus metrics, rendered from the streams' own state (the stream workflow's
 * `state` query) at each scrape: what a dashboard or an alert needs to know about every stream
 * without reading a workflow. Pure: the worker's metrics endpoint (worker/metrics.ts) queries the
 * streams and serves this text beside the SDK's own metrics.
 */
import type { CompatHold, KernelLag } from './compat-hold.ts';

/** What the metrics read of a stream's state (workflows/stream-state.ts has the whole of it). */
export interface StreamFacts {
  counters: Record<string, number>;
  lastGood?: { at: string };
  kernelLag?: readonly KernelLag[];
  compatHold?: Pick<CompatHold, 'kernel' | 'zfsVersion' | 'since'>;
  parked?: unknown;
  failedInARow?: number;
  stageSeconds?: Partial<Record<string, number>>;
  notifications?: { sent: number; failed: number };
}

/** One stream as the scrape saw it: its state, or why there is none. */
export interface ScrapedStream {
  stream: string;
  state?: StreamFacts;
  /** The query failed (Temporal unreachable, the stream's workflow task failing). */
  error?: string;
}

interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  samples: { labels: Record<string, string>; value: number }[];
}

/** Every pipeline metric, with its help text (the dashboard and the alert rules name these). */
export const PIPELINE_METRICS = {
  up: 'kinoite_zfs_stream_up',
  runs: 'kinoite_zfs_runs_total',
  stableTimestamp: 'kinoite_zfs_stable_promoted_timestamp_seconds',
  stableAge: 'kinoite_zfs_stable_age_seconds',
  kernelLag: 'kinoite_zfs_kernel_stable_lag_seconds',
  kernelWaiting: 'kinoite_zfs_kernel_waiting_for_stable',
  blocked: 'kinoite_zfs_kernels_blocked',
  blockedSeconds: 'kinoite_zfs_blocked_seconds',
  approvals: 'kinoite_zfs_approvals_pending',
  failedInARow: 'kinoite_zfs_failed_runs_in_a_row',
  stageDuration: 'kinoite_zfs_stage_duration_seconds',
  notificationsSent: 'kinoite_zfs_notifications_sent_total',
  notificationsFailed: 'kinoite_zfs_notifications_failed_total',
} as const;

const seconds = (iso: string) => Date.parse(iso) / 1000;

/** The Prometheus text exposition (version 0.0.4) of the streams' metrics at `now`. */
export function renderPipelineMetrics(streams: readonly ScrapedStream[], now: Date): string {
  const t = now.getTime() / 1000;
  const M = PIPELINE_METRICS;
  const families: Family[] = [
    {
      name: M.up,
      type: 'gauge',
      help: "1 when the stream's state could be read at this scrape, 0 when not.",
      samples: [],
    },
    { name: M.runs, type: 'counter', help: 'Finished runs of the stream, by outcome.', samples: [] },
    {
      name: M.stableTimestamp,
      type: 'gauge',
      help: 'When the stable tags last moved (promotion or rollback), as a Unix time.',
      samples: [],
    },
    { name: M.stableAge, type: 'gauge', help: 'Seconds since the stable tags last moved.', samples: [] },
    {
      name: M.kernelLag,
      type: 'gauge',
      help: 'For the newest kernel the stream has seen: seconds from first seeing it to its first promotion, or until now while it is not stable yet.',
      samples: [],
    },
    {
      name: M.kernelWaiting,
      type: 'gauge',
      help: '1 while the newest kernel the stream has seen is not in a stable release yet.',
      samples: [],
    },
    {
      name: M.blocked,
      type: 'gauge',
      help: 'Kernels holding the stream back because no OpenZFS release of its line supports them yet (compatibility hold).',
      samples: [],
    },
    {
      name: M.blockedSeconds,
      type: 'gauge',
      help: 'Seconds the compatibility hold has lasted (0 when none).',
      samples: [],
    },
    { name: M.approvals, type: 'gauge', help: 'Candidates waiting for an approval.', samples: [] },
    { name: M.failedInARow, type: 'gauge', help: 'Runs that failed one after the other, up to now.', samples: [] },
    {
      name: M.stageDuration,
      type: 'gauge',
      help: 'How long each stage took the last run that completed it, in seconds.',
      samples: [],
    },
    { name: M.notificationsSent, type: 'counter', help: 'Webhook notifications delivered.', samples: [] },
    {
      name: M.notificationsFailed,
      type: 'counter',
      help: 'Webhook notifications that failed for good.',
      samples: [],
    },
  ];
  const family = (name: string) => families.find((f) => f.name === name)!;
  const add = (name: string, labels: Record<string, string>, value: number) =>
    family(name).samples.push({ labels, value });

  for (const { stream, state } of streams) {
    const s = { stream };
    add(M.up, s, state ? 1 : 0);
    if (!state) continue;
    for (const [outcome, n] of Object.entries(state.counters))
      if (outcome !== 'runs') add(M.runs, { ...s, outcome }, n);
    const moved = state.lastGood?.at;
    if (moved) {
      add(M.stableTimestamp, s, seconds(moved));
      add(M.stableAge, s, Math.max(0, t - seconds(moved)));
    }
    const newest = [...(state.kernelLag ?? [])].sort((a, b) => seconds(a.firstSeen) - seconds(b.firstSeen)).at(-1);
    if (newest) {
      const until = newest.firstPromoted ? seconds(newest.firstPromoted) : t;
      add(M.kernelLag, { ...s, kernel: newest.kernel }, Math.max(0, until - seconds(newest.firstSeen)));
      add(M.kernelWaiting, s, newest.firstPromoted ? 0 : 1);
    }
    const hold = state.compatHold;
    if (hold) add(M.blocked, { ...s, kernel: hold.kernel, zfs: hold.zfsVersion }, 1);
    else add(M.blocked, s, 0);
    add(M.blockedSeconds, s, hold ? Math.max(0, t - seconds(hold.since)) : 0);
    add(M.approvals, s, state.parked ? 1 : 0);
    add(M.failedInARow, s, state.failedInARow ?? 0);
    for (const [stage, secs] of Object.entries(state.stageSeconds ?? {}))
      if (secs !== undefined) add(M.stageDuration, { ...s, stage }, secs);
    add(M.notificationsSent, s, state.notifications?.sent ?? 0);
    add(M.notificationsFailed, s, state.notifications?.failed ?? 0);
  }
  return families
    .map((f) =>
      [
        `# HELP ${f.name} ${f.help}`,
        `# TYPE ${f.name} ${f.type}`,
        ...f.samples.map((x) => `${f.name}{${labelText(x.labels)}} ${formatValue(x.value)}`),
      ].join('\n'),
    )
    .join('\n')
    .concat('\n');
}

function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`)
    .join(',');
}

function formatValue(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}
