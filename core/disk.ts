/**
 * The disk preflight's verdict: whether the volumes a build writes to have the free space the
 * host's config asks for. Measuring is the activity's job (activities/disk-preflight.ts).
 */
import { formatSize } from './size.ts';

/** One place a build writes to, as measured on the build host. */
export interface MeasuredVolume {
  /** What it is, e.g. `containers storage`. */
  what: string;
  /** The path measured. */
  path: string;
  /** Bytes available to the worker there. */
  free: number;
}

/**
 * Undefined when every volume has at least `minFree` bytes free; otherwise the message naming
 * each short volume, its path, its free space and the threshold, and what to do. `minFree` 0
 * passes everything.
 */
export function diskShortfall(input: {
  stage: string;
  volumes: readonly MeasuredVolume[];
  minFree: number;
}): string | undefined {
  const short = input.volumes.filter((v) => v.free < input.minFree);
  if (short.length === 0) return undefined;
  const what = short.map((v) => `${v.what} ${v.path} has ${formatSize(v.free)} free`).join('; ');
  return `Not enough free disk space for ${input.stage} on this build host: ${what}; worker.minFreeSpace is ${formatSize(input.minFree)}. Free space there (e.g. podman image prune, podman system prune) or lower worker.minFreeSpace in this host's config.`;
}
