/**
 * Heartbeats from real progress. Code deep inside an activity (the registry client counting blob
 * bytes, the tool runner counting output lines, a step starting) notes progress here; the activity
 * wrapper heartbeats every few seconds with what moved, but only while something moved recently.
 * A hung call (a request that never answers, a tool that prints nothing) therefore stops
 * heartbeating, and Temporal times the attempt out after the heartbeat timeout (30 s) instead of
 * letting it hang until its start-to-close timeout.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** What the running activity has done so far: the heartbeat's details. */
export interface Progress {
  /** Bytes read from or written to a registry or release source. */
  bytes: number;
  /** Output lines of the tools it ran (build logs). */
  lines: number;
  /** The step it is in, when it says. */
  step?: string;
  /** The last output line, when it was a tool's. */
  last?: string;
}

/** One activity's progress and when it last moved. */
export class ProgressTracker {
  readonly progress: Progress = { bytes: 0, lines: 0 };
  /** ms since epoch of the last progress (the start counts). */
  movedAt: number;

  constructor(now = Date.now()) {
    this.movedAt = now;
  }

  /** Records progress (`bytes` and `lines` add up; `step` replaces the step). */
  note(p: { bytes?: number; line?: string; step?: string }, now = Date.now()): void {
    if (p.bytes) this.progress.bytes += p.bytes;
    if (p.line !== undefined) {
      this.progress.lines += 1;
      this.progress.last = p.line.slice(0, 200);
    }
    if (p.step !== undefined) this.progress.step = p.step;
    this.movedAt = now;
  }

  /** Whether the activity moved within the last `stallMs` (then it heartbeats; else it is hung). */
  moving(stallMs: number, now = Date.now()): boolean {
    return now - this.movedAt < stallMs;
  }
}

/** How often an activity heartbeats while it moves. */
export const HEARTBEAT_EVERY_MS = 5_000;
/**
 * How long an activity may make no progress before it stops heartbeating. Longer than any silent
 * phase of a healthy build (a module link), much shorter than the 30 min / 3 h start-to-close timeouts.
 */
export const STALL_AFTER_MS = 5 * 60_000;

/** The details of the heartbeat due now, or undefined when the activity has not moved for `stallMs` (hung). */
export function heartbeatDue(tracker: ProgressTracker, stallMs: number, now = Date.now()): Progress | undefined {
  return tracker.moving(stallMs, now) ? { ...tracker.progress } : undefined;
}

const current = new AsyncLocalStorage<ProgressTracker>();

/** Runs `fn` with `tracker` receiving every {@link noteProgress} made inside it. */
export function withProgress<T>(tracker: ProgressTracker, fn: () => Promise<T>): Promise<T> {
  return current.run(tracker, fn);
}

/** Notes progress of the running activity; does nothing outside one (the CLI, the world). */
export function noteProgress(p: { bytes?: number; line?: string; step?: string }): void {
  current.getStore()?.note(p);
}

/**
 * {@link noteProgress} bound to the activity running now, for callbacks that may run outside its
 * async context (stream and child-process events).
 */
export function progressNoter(): (p: { bytes?: number; line?: string; step?: string }) => void {
  const tracker = current.getStore();
  return tracker ? (p) => tracker.note(p) : () => undefined;
}
