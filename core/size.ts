/**
 * Sizes as people write them in config and spec files (`250MB`, `1GB`, `2GiB`), and back.
 */

/** Units a size may use: decimal (`KB`, `MB`, `GB`) and binary (`KiB`, `MiB`, `GiB`). */
const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
};

/**
 * Parses `250MB`, `1GB`, `2GiB` or a number of bytes; undefined when it is neither. Zero is a
 * size only with `allowZero` (a threshold that turns a check off).
 */
export function parseSize(v: unknown, opts: { allowZero?: boolean } = {}): number | undefined {
  const min = opts.allowZero ? 0 : 1;
  if (typeof v === 'number') return Number.isInteger(v) && v >= min ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$/i.exec(v);
  if (!m) return undefined;
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[(m[2] ?? 'B').toUpperCase()]!);
  return bytes >= min ? bytes : undefined;
}

/** A byte count as people read it, in decimal units: `12.3 GB`, `512 MB`, `900 B`. */
export function formatSize(bytes: number): string {
  for (const [unit, n] of [
    ['GB', 1e9],
    ['MB', 1e6],
    ['KB', 1e3],
  ] as const) {
    if (bytes >= n) return `${(bytes / n).toFixed(1).replace(/\.0$/, '')} ${unit}`;
  }
  return `${bytes} B`;
}
