/**
 * Kernel release helpers: natural ordering, the primary kernel, Fedora version and series parsing.
 */
import { FailureType, PermanentError } from './errors.ts';

const CHUNK = /(\d+|\D+)/g;

/**
 * Natural comparison of two strings: digit runs compare as integers, other runs as text.
 *
 * So `6.18.9` sorts before `6.18.10` (original §5.1). Digit runs are compared by length after
 * stripping leading zeros, then lexically, so arbitrarily long numbers never lose precision.
 * Equal-valued runs with different leading zeros (`01` vs `1`) fall back to a plain comparison
 * so the order stays total and deterministic.
 */
export function naturalCompare(a: string, b: string): number {
  const ca = a.match(CHUNK) ?? [];
  const cb = b.match(CHUNK) ?? [];
  const n = Math.min(ca.length, cb.length);
  for (let i = 0; i < n; i++) {
    const x = ca[i]!;
    const y = cb[i]!;
    if (x === y) continue;
    const xd = isDigits(x);
    const yd = isDigits(y);
    if (xd && yd) {
      const xs = x.replace(/^0+(?=\d)/, '');
      const ys = y.replace(/^0+(?=\d)/, '');
      if (xs.length !== ys.length) return xs.length < ys.length ? -1 : 1;
      if (xs !== ys) return xs < ys ? -1 : 1;
      continue;
    }
    // Digits sort before text so `6.18` < `6.18a`-style oddities stay stable.
    if (xd !== yd) return xd ? -1 : 1;
    return x < y ? -1 : 1;
  }
  if (ca.length !== cb.length) return ca.length < cb.length ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

function isDigits(s: string): boolean {
  return s.length > 0 && s.charCodeAt(0) >= 48 && s.charCodeAt(0) <= 57;
}

/** The given kernel releases, de-duplicated and in natural ascending order (a new array). */
export function sortKernels(list: readonly string[]): string[] {
  return [...new Set(list)].sort(naturalCompare);
}

/**
 * The primary (newest) kernel of a list: the last one in natural order.
 *
 * @throws PermanentError InvalidInput when the list is empty.
 */
export function primaryKernel(list: readonly string[]): string {
  const sorted = sortKernels(list);
  const last = sorted[sorted.length - 1];
  if (last === undefined) {
    throw new PermanentError(
      FailureType.InvalidInput,
      'No installed kernel directories found under /usr/lib/modules in the base image; ' +
        'check that the base image reference points at a bootable Fedora Atomic image',
    );
  }
  return last;
}

/** The Fedora version of a kernel release: the digits after the last `fc`, or undefined. */
export function fedoraVersionFromKernel(kernel: string): string | undefined {
  const i = kernel.lastIndexOf('fc');
  if (i < 0) return undefined;
  const m = /^\d+/.exec(kernel.slice(i + 2));
  return m ? m[0] : undefined;
}

/** A kernel release without its trailing `.x86_64` or `.aarch64` architecture suffix. */
export function stripKernelArch(kernel: string): string {
  return kernel.replace(/\.(x86_64|aarch64)$/, '');
}

/**
 * The major.minor series of a kernel release, or undefined when it does not start with one.
 *
 * Accepts two-component versions (`7.1`), Fedora (`6.18.16-200.fc43.x86_64`) and Debian
 * (`6.1.0-47-amd64`) forms.
 */
export function kernelSeries(kernel: string): { major: number; minor: number } | undefined {
  const m = /^(\d{1,6})\.(\d{1,6})(?!\d)/.exec(kernel.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]) };
}

/** Longest kernel release accepted; real ones are well under 64 characters. */
export const MAX_KERNEL_RELEASE_LENGTH = 128;

const KERNEL_RELEASE = /^[0-9]+\.[0-9]+[A-Za-z0-9._+~-]*$/;

/**
 * True when `kernel` is a plausible kernel release string that is safe to use in paths and tags
 * (no `/`, no whitespace, at most 128 characters, starts with `<digits>.<digits>`).
 */
export function isValidKernelRelease(kernel: string): boolean {
  return (
    typeof kernel === 'string' &&
    kernel.length <= MAX_KERNEL_RELEASE_LENGTH &&
    KERNEL_RELEASE.test(kernel) &&
    !kernel.includes('..')
  );
}
