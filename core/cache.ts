/**
 * Akmods cache coverage (original §5.3): which required kernels an akmods cache image already
 * has kmod-zfs RPMs for, from its labels or from a scan of its files.
 */
import { FailureType, PermanentError } from './errors.ts';
import { naturalCompare, sortKernels } from './kernels.ts';

/** OCI label keys written on akmods cache images and read by the cache check. */
export const AKMODS_LABELS = {
  cacheFormat: 'io.github.danathar.kinoite-zfs.akmods.cache-format',
  kernelReleases: 'io.github.danathar.kinoite-zfs.akmods.kernel-releases',
  zfsVersion: 'io.github.danathar.kinoite-zfs.akmods.zfs-version',
} as const;

/** The only cache-format label value this code understands. */
export const CACHE_FORMAT = '1';

/** The labels for an akmods cache image covering `kernels` with ZFS `zfsVersion`. */
export function cacheLabels(input: { kernels: readonly string[]; zfsVersion: string }): Record<string, string> {
  return {
    [AKMODS_LABELS.cacheFormat]: CACHE_FORMAT,
    [AKMODS_LABELS.kernelReleases]: sortKernels(input.kernels).join(' '),
    [AKMODS_LABELS.zfsVersion]: input.zfsVersion,
  };
}

/**
 * The kernels (and ZFS version) an akmods cache image declares in its labels, or undefined
 * when the labels cannot be trusted: format is not `1` or the kernel list is empty. Undefined
 * means "fall back to a layer scan".
 */
export function kernelsFromCacheLabels(
  labels: Readonly<Record<string, string>> | null | undefined,
): { kernels: string[]; zfsVersion?: string } | undefined {
  if (!labels) return undefined;
  if ((labels[AKMODS_LABELS.cacheFormat] ?? '').trim() !== CACHE_FORMAT) return undefined;
  const kernels = sortKernels((labels[AKMODS_LABELS.kernelReleases] ?? '').split(/\s+/).filter((k) => k !== ''));
  if (kernels.length === 0) return undefined;
  const zfsVersion = (labels[AKMODS_LABELS.zfsVersion] ?? '').trim();
  return zfsVersion === '' ? { kernels } : { kernels, zfsVersion };
}

/** Normalise a path from an image file listing: drop leading `./` and `/`. */
function stripLeading(path: string): string {
  let p = path;
  for (;;) {
    if (p.startsWith('./')) p = p.slice(2);
    else if (p.startsWith('/')) p = p.slice(1);
    else return p;
  }
}

/** After `kmod-zfs-<K>-` comes `<zfsver>-<release>.<arch>.rpm`: exactly one `-` and no `/`. */
const RPM_TAIL = /^[0-9][^/-]*-[^/-]+\.rpm$/;

/**
 * The required kernels that have a kmod-zfs RPM among `paths`, natural-sorted.
 *
 * A kernel K is covered by `rpms/kmods/zfs/kmod-zfs-<K>-<zfsver>-<rel>.<arch>.rpm`. The tail is
 * checked more strictly than the original's glob (`kmod-zfs-<K>-*.rpm`), so that a short name
 * like `6.18.16` is not "covered" by the RPM of `6.18.16-200.fc43.x86_64`.
 */
export function kernelsCoveredByRpmFiles(required: readonly string[], paths: readonly string[]): string[] {
  const names = new Set<string>();
  for (const raw of paths) {
    const p = stripLeading(raw);
    const prefix = 'rpms/kmods/zfs/kmod-zfs-';
    if (p.startsWith(prefix) && !p.slice(prefix.length).includes('/')) names.add(p.slice(prefix.length));
  }
  const covered: string[] = [];
  for (const k of sortKernels(required)) {
    const head = `${k}-`;
    for (const n of names) {
      if (n.startsWith(head) && RPM_TAIL.test(n.slice(head.length))) {
        covered.push(k);
        break;
      }
    }
  }
  return covered;
}

/** Cache check verdict: `reusable` (covers everything), `stale` (exists, gaps), `missing_image`. */
export type CacheStatus = 'reusable' | 'stale' | 'missing_image';

/** The result of {@link cacheCoverage}. */
export interface CacheCoverage {
  status: CacheStatus;
  /** Required kernels the cache covers, natural-sorted. */
  covered: string[];
  /** Required kernels the cache lacks, natural-sorted. */
  missing: string[];
}

/**
 * The cache verdict for the required kernels.
 *
 * A missing image means every kernel is missing. When the cache's ZFS version is known and
 * differs from the one wanted, nothing in it is usable, so every kernel is missing (`stale`).
 *
 * @throws PermanentError InvalidInput when no kernel is required.
 */
export function cacheCoverage(input: {
  required: readonly string[];
  exists: boolean;
  covered: readonly string[];
  cachedZfsVersion?: string;
  zfsVersion?: string;
}): CacheCoverage {
  const required = sortKernels(input.required.filter((k) => k.trim() !== ''));
  if (required.length === 0) {
    throw new PermanentError(
      FailureType.InvalidInput,
      'Expected at least one kernel release for the akmods cache check; resolve the base image kernels first',
    );
  }
  if (!input.exists) return { status: 'missing_image', covered: [], missing: required };
  const cached = input.cachedZfsVersion?.trim();
  const wanted = input.zfsVersion?.trim();
  if (cached && wanted && cached !== wanted) return { status: 'stale', covered: [], missing: required };
  const have = new Set(input.covered);
  const covered = required.filter((k) => have.has(k));
  const missing = required.filter((k) => !have.has(k)).sort(naturalCompare);
  return { status: missing.length === 0 ? 'reusable' : 'stale', covered, missing };
}

/**
 * The cache check's log lines, worded as the original printed them: first how coverage was
 * read (labels or layer scan; omitted for a missing image), then the verdict.
 */
export function cacheCheckMessage(input: {
  /** Cache image reference, e.g. `ghcr.io/o/kinoite-zfs-bluebuild-akmods:main-43`. */
  image: string;
  fedora: string;
  coverage: CacheCoverage;
  /** How coverage was read; omitted when the image does not exist. */
  via?: 'labels' | 'layer-scan';
  /** Cached ZFS version, used to explain a version mismatch. */
  cachedZfsVersion?: string;
  /** Wanted ZFS version, used to explain a version mismatch. */
  zfsVersion?: string;
}): string[] {
  const { image, fedora, coverage, via } = input;
  const lines: string[] = [];
  if (via === 'labels') lines.push(`Using cache metadata labels from ${image} for kernel coverage check.`);
  else if (via === 'layer-scan') lines.push(`No cache metadata labels found on ${image}; falling back to layer scan.`);
  switch (coverage.status) {
    case 'missing_image':
      lines.push(`No existing source akmods cache image for Fedora ${fedora}; rebuild is required.`);
      break;
    case 'reusable':
      lines.push(
        `Found matching ${image} kmods for kernels ${coverage.covered.join(' ')}; akmods rebuild can be skipped.`,
      );
      break;
    case 'stale': {
      const cached = input.cachedZfsVersion?.trim();
      const wanted = input.zfsVersion?.trim();
      if (cached && wanted && cached !== wanted) {
        lines.push(`Cached ${image} was built for ZFS ${cached}, not ${wanted}; akmods rebuild is required.`);
      }
      lines.push(
        `Cached ${image} is present but missing kmods for kernels ${coverage.missing.join(' ')}; akmods rebuild is required.`,
      );
      break;
    }
  }
  return lines;
}
