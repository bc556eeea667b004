/**
 * Stream notifications: the events a stream announces to its webhooks, the payload they receive
 * (documented in docs/notifications.md), which webhooks want which event, and what a run's end
 * announces.
 */
import { holdText, type CompatHold } from './compat-hold.ts';

/** The transitions a stream announces. */
export const NOTIFY_EVENTS = [
  'promoted',
  'failed',
  'blocked',
  'unblocked',
  'approval-pending',
  'approval-expired',
  'rolled-back',
] as const;
/** One of {@link NOTIFY_EVENTS}. */
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** What a webhook receives, as JSON. */
export interface NotifyPayload {
  /** Always `kinoite-zfs/v1`: the payload's shape. */
  schema: 'kinoite-zfs/v1';
  event: NotifyEvent;
  stream: string;
  /** When the stream saw the transition (ISO 8601). */
  at: string;
  /** One line for people. */
  message: string;
  /** The run the event is about, if any. */
  run?: string;
  digest?: string;
  kernels?: string[];
  zfsVersion?: string;
}

/** One configured webhook (the secret only by the name of a worker environment variable). */
export interface Webhook {
  url: string;
  events: readonly NotifyEvent[];
  secretEnv?: string;
}

/** The webhooks that want `event`. */
export function webhooksFor(hooks: readonly Webhook[] | undefined, event: NotifyEvent): Webhook[] {
  return (hooks ?? []).filter((h) => h.events.includes(event));
}

/** The stream event a finished run announces, if any. */
export function runEvent(outcome: string): NotifyEvent | undefined {
  return outcome === 'promoted'
    ? 'promoted'
    : outcome === 'failed'
      ? 'failed'
      : outcome === 'expired'
        ? 'approval-expired'
        : undefined;
}

/** What a stream announces about one event (the payload without its envelope). */
export type Announcement = { event: NotifyEvent; facts: Omit<NotifyPayload, 'schema' | 'event' | 'stream' | 'at'> };

/**
 * What a run's end announces, in order: its own event (promoted, failed, approval-expired), then
 * the compatibility hold's transition (blocked, with the hold's text; unblocked).
 */
export function runEndAnnouncements(
  run: {
    runWorkflowId: string;
    outcome: string;
    message: string;
    kernels?: string[];
    release?: { digest: string; zfsVersion: string };
    blocked?: { zfsVersion: string };
  },
  transition: 'blocked' | 'unblocked' | undefined,
  hold: CompatHold | undefined,
): Announcement[] {
  const facts = {
    run: run.runWorkflowId,
    digest: run.release?.digest,
    kernels: run.kernels,
    zfsVersion: run.release?.zfsVersion ?? run.blocked?.zfsVersion,
  };
  const out: Announcement[] = [];
  const event = runEvent(run.outcome);
  if (event) out.push({ event, facts: { message: run.message, ...facts } });
  if (transition === 'blocked') out.push({ event: 'blocked', facts: { message: holdText(hold!), ...facts } });
  if (transition === 'unblocked')
    out.push({ event: 'unblocked', facts: { message: `The compatibility hold ended: ${run.message}`, ...facts } });
  return out;
}

/** A webhook URL for messages: scheme, host and port only (paths of chat webhooks hold tokens). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/…`;
  } catch {
    return '(webhook)';
  }
}
