/**
 * The compatibility hold of a stream and the kernel-to-stable lag: pure rules the stream workflow
 * applies when runs end and when it re-checks the release source on its timer.
 *
 * A run that ends `blocked` (a base kernel newer than the OpenZFS release supports) puts the stream
 * in a compatibility hold: stable stays on its last good release, and the stream re-checks the
 * release source every `zfs.recheckEvery` until a release supports every kernel, then starts a run
 * by itself. A promotion ends the hold.
 */
import { compatVerdict, type CompatVerdict } from './compat.ts';
import { kernelSeries } from './kernels.ts';

/** A stream held by compatibility. */
export interface CompatHold {
  /** When the first blocked run ended (a hold keeps its start while it lasts). */
  since: string;
  /** The kernel that blocked and the release's maximum. */
  kernel: string;
  max?: string;
  /** The release that could not build it. */
  zfsVersion: string;
  /** Every kernel of the blocked run's base (a re-check must cover them all). */
  kernels: string[];
  /** The last re-check of the release source. */
  lastCheck?: { at: string; zfsVersion: string; verdict: CompatVerdict['verdict'] };
}

/** What a blocked run reports to its stream. */
export interface BlockedRun {
  kernel: string;
  max?: string;
  zfsVersion: string;
  kernels: string[];
}

/** The hold after a run ended: begun or kept by `blocked`, ended by a promotion, unchanged otherwise. */
export function holdAfterRun(
  hold: CompatHold | undefined,
  run: { outcome: string; blocked?: BlockedRun },
  now: string,
): { hold: CompatHold | undefined; transition?: 'blocked' | 'unblocked' } {
  if (run.outcome === 'blocked' && run.blocked) {
    const next: CompatHold = {
      since: hold?.since ?? now,
      ...run.blocked,
      ...(hold?.lastCheck ? { lastCheck: hold.lastCheck } : {}),
    };
    return { hold: next, transition: hold ? undefined : 'blocked' };
  }
  if (run.outcome === 'promoted' && hold) return { hold: undefined, transition: 'unblocked' };
  return { hold };
}

/** The re-check: would `release` build every held kernel? */
export function recheck(
  hold: CompatHold,
  release: { version: string; linuxMin?: string; linuxMax?: string },
  allowExperimental: boolean,
  now: string,
): { hold: CompatHold; start: boolean } {
  const v = compatVerdict({
    kernels: hold.kernels,
    linuxMin: release.linuxMin,
    linuxMax: release.linuxMax,
    allowExperimental,
    zfsVersion: release.version,
  });
  return {
    hold: { ...hold, lastCheck: { at: now, zfsVersion: release.version, verdict: v.verdict } },
    start: v.verdict !== 'blocked',
  };
}

/** One line for `status` and the UI: since when, and what the stream waits for. */
export function holdText(hold: CompatHold): string {
  const s = kernelSeries(hold.kernel);
  const series = s ? `${s.major}.${s.minor}` : hold.kernel;
  const checked = hold.lastCheck
    ? `; last re-check ${hold.lastCheck.at}: zfs-${hold.lastCheck.zfsVersion} ${hold.lastCheck.verdict}`
    : '';
  return `held by compatibility since ${hold.since}, waiting for an OpenZFS release supporting ${series} (kernel ${hold.kernel}; zfs-${hold.zfsVersion} supports up to ${hold.max ?? '?'})${checked}`;
}

/** When each kernel of the base was first seen and first promoted. */
export interface KernelLag {
  kernel: string;
  firstSeen: string;
  firstPromoted?: string;
}

/** Records the kernels a run saw, and, when it promoted, the kernels that reached stable. */
export function updateLag(
  lag: readonly KernelLag[],
  run: { kernels?: readonly string[]; promoted: boolean },
  now: string,
  max = 20,
): KernelLag[] {
  const out = lag.map((l) => ({ ...l }));
  for (const kernel of run.kernels ?? []) {
    let row = out.find((l) => l.kernel === kernel);
    if (!row) out.push((row = { kernel, firstSeen: now }));
    if (run.promoted && !row.firstPromoted) row.firstPromoted = now;
  }
  return out.slice(-max);
}

/** `6.12.117+deb12-cloud-amd64: seen …, stable …, lag 2d 3h` (or still waiting). */
export function lagText(l: KernelLag, now: string): string {
  const ms = Date.parse(l.firstPromoted ?? now) - Date.parse(l.firstSeen);
  const h = Math.floor(ms / 3_600_000);
  const span =
    h >= 24
      ? `${Math.floor(h / 24)}d ${h % 24}h`
      : h >= 1
        ? `${h}h ${Math.floor((ms % 3_600_000) / 60_000)}m`
        : `${Math.max(0, Math.round(ms / 60_000))}m`;
  return l.firstPromoted
    ? `${l.kernel}: first seen ${l.firstSeen}, stable ${l.firstPromoted} (lag ${span})`
    : `${l.kernel}: first seen ${l.firstSeen}, not stable yet (${span} so far)`;
}
