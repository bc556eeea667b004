/**
 * OpenZFS kernel compatibility: read a release's META, pick the release the build will use,
 * and decide before building whether the base image's kernels are supported.
 */
import { FailureType, PermanentError } from './errors.ts';
import { kernelSeries, naturalCompare, sortKernels } from './kernels.ts';

/** The fields of an OpenZFS `META` file that the pipeline uses. */
export interface ZfsMeta {
  name?: string;
  version: string;
  release?: string;
  /** `Linux-Minimum`, e.g. `4.18`. */
  linuxMin?: string;
  /** `Linux-Maximum`, e.g. `7.2`. */
  linuxMax?: string;
}

/**
 * Parse an OpenZFS `META` file (`Key: value` lines, any spacing, CRLF tolerated, keys matched
 * case-insensitively).
 *
 * @throws PermanentError InvalidInput when there is no `Version` line.
 */
export function parseMeta(text: string): ZfsMeta {
  const fields = new Map<string, string>();
  for (const raw of String(text).split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z][A-Za-z0-9_-]*)\s*:\s*(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    // First occurrence wins, as configure's `grep | head -1` style readers do.
    if (!fields.has(key)) fields.set(key, m[2]!.trim());
  }
  const version = fields.get('version');
  if (!version) {
    throw new PermanentError(
      FailureType.InvalidInput,
      'OpenZFS META file has no Version line; check that the file came from the root of an OpenZFS release',
    );
  }
  const out: ZfsMeta = { version };
  const pairs: [keyof ZfsMeta, string][] = [
    ['name', 'name'],
    ['release', 'release'],
    ['linuxMin', 'linux-minimum'],
    ['linuxMax', 'linux-maximum'],
  ];
  for (const [prop, key] of pairs) {
    const v = fields.get(key);
    if (v) out[prop] = v;
  }
  return out;
}

/** One release as listed by the forge (GitHub releases API shape, reduced). */
export interface ReleaseInfo {
  tag: string;
  prerelease?: boolean;
  draft?: boolean;
}

const RELEASE_TAG = /^zfs-([0-9]+\.[0-9]+\.[0-9]+)$/;

/**
 * The release the build will use: the newest non-draft, non-prerelease `zfs-X.Y.Z` release whose
 * version is in `line` (e.g. line `2.4` → `zfs-2.4.4`). Tags such as `zfs-2.4.0-rc1` are ignored.
 *
 * @throws PermanentError InvalidInput when `line` is not like `2.4`.
 */
export function pickZfsRelease(input: {
  line: string;
  releases: readonly ReleaseInfo[];
}): { tag: string; version: string } | undefined {
  const line = String(input.line).trim();
  if (!/^[0-9]+(\.[0-9]+)?$/.test(line)) {
    throw new PermanentError(
      FailureType.InvalidInput,
      `ZFS release line ${JSON.stringify(input.line)} is not valid; use major.minor such as 2.4`,
    );
  }
  let best: { tag: string; version: string } | undefined;
  for (const r of input.releases) {
    if (r.prerelease || r.draft) continue;
    const m = RELEASE_TAG.exec(r.tag);
    if (!m) continue;
    const version = m[1]!;
    if (!version.startsWith(`${line}.`)) continue;
    if (!best || naturalCompare(version, best.version) > 0) best = { tag: r.tag, version };
  }
  return best;
}

/** The compatibility verdict for a set of kernels against one ZFS release. */
export type CompatVerdict =
  | { verdict: 'compatible' }
  | { verdict: 'blocked'; kernel: string; max?: string; min?: string; message: string }
  | { verdict: 'experimental'; kernel: string; max: string; message: string };

function series(value: string, what: string): { major: number; minor: number } {
  const s = kernelSeries(value);
  if (!s) {
    throw new PermanentError(
      FailureType.InvalidInput,
      `Cannot read a major.minor version from ${what} ${JSON.stringify(value)}; expected something like 6.18 or 6.18.16-200.fc43.x86_64`,
    );
  }
  return s;
}

function cmp(a: { major: number; minor: number }, b: { major: number; minor: number }): number {
  return a.major !== b.major ? a.major - b.major : a.minor - b.minor;
}

/**
 * Compare every kernel's major.minor with the release's `Linux-Minimum`/`Linux-Maximum`, as
 * OpenZFS configure does ("eq2": with max 7.1, 7.1.4 passes and 7.2.0 fails).
 *
 * A kernel newer than the maximum blocks the build unless `allowExperimental` is set (configure's
 * `--enable-linux-experimental`); a kernel older than the minimum always blocks (configure has no
 * override for that). The reported kernel is the newest one over the maximum, or the oldest one
 * under the minimum. Missing limits are not enforced.
 *
 * @throws PermanentError InvalidInput when a kernel or a limit has no readable major.minor.
 */
export function compatVerdict(input: {
  kernels: readonly string[];
  linuxMin?: string;
  linuxMax?: string;
  allowExperimental?: boolean;
  /** ZFS version for messages, e.g. `2.4.3`. */
  zfsVersion?: string;
}): CompatVerdict {
  const zfs = input.zfsVersion ? `ZFS ${input.zfsVersion}` : 'This ZFS release';
  const min = input.linuxMin?.trim() ? input.linuxMin.trim() : undefined;
  const max = input.linuxMax?.trim() ? input.linuxMax.trim() : undefined;
  const minS = min === undefined ? undefined : series(min, 'Linux-Minimum');
  const maxS = max === undefined ? undefined : series(max, 'Linux-Maximum');
  const kernels = sortKernels(input.kernels);
  const parsed = kernels.map((k) => ({ k, s: series(k, 'kernel release') }));

  if (minS) {
    const tooOld = parsed.filter((p) => cmp(p.s, minS) < 0);
    const oldest = tooOld[0];
    if (oldest) {
      return {
        verdict: 'blocked',
        kernel: oldest.k,
        min: min!,
        message:
          `${zfs} supports Linux from ${min} on; kernel ${oldest.k} is older. ` +
          'Use a base image with a newer kernel or an older OpenZFS release line.',
      };
    }
  }
  if (maxS) {
    const tooNew = parsed.filter((p) => cmp(p.s, maxS) > 0).sort((a, b) => cmp(a.s, b.s) || naturalCompare(a.k, b.k));
    const newest = tooNew[tooNew.length - 1];
    if (newest) {
      const head = `${zfs} supports Linux up to ${max}; kernel ${newest.k} is newer.`;
      if (input.allowExperimental) {
        return {
          verdict: 'experimental',
          kernel: newest.k,
          max: max!,
          message: `${head} Building anyway because zfs.allowExperimental is set (configure --enable-linux-experimental).`,
        };
      }
      return {
        verdict: 'blocked',
        kernel: newest.k,
        max: max!,
        message: `${head} Stable stays where it is until a compatible OpenZFS release appears (or set zfs.allowExperimental).`,
      };
    }
  }
  return { verdict: 'compatible' };
}
