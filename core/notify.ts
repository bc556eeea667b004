/**
 * Stream notifications: the events a stream announces to its webhooks, the payload they receive
 * (documented in docs/notifications.md), and which webhooks want which event.
 */

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
