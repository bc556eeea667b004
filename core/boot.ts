/**
 * The booted check's verdicts: what one kernel's console output says (booted, modules loaded, pool
 * round-trip, versions), the lines worth quoting when it failed, and the stage verdict under the
 * stream's boot policy. The activity boots; this reads.
 */

/** How a stream treats the booted check. */
export const BootPolicy = { Required: 'required', Optional: 'optional', Off: 'off' } as const;
/** One of the policy names in {@link BootPolicy}. */
export type BootPolicy = (typeof BootPolicy)[keyof typeof BootPolicy];

/** The booted check of one kernel. */
export interface KernelBoot {
  kernel: string;
  /** The kernel started and ran the check's init. */
  booted: boolean;
  /** spl.ko, zfs.ko and their dependencies loaded and /dev/zfs appeared. */
  moduleLoaded: boolean;
  /** A pool was created, written, exported, imported and read back. */
  poolRoundTrip: boolean;
  /** `/sys/module/zfs/version` in the booted kernel. */
  moduleVersion?: string;
  /** Wall seconds of the qemu run. */
  seconds: number;
  /** qemu acceleration used. */
  accel: 'kvm' | 'tcg';
  /** Why it failed (absent when it passed). */
  error?: string;
  /** Console lines that explain the failure (insmod errors, first BUG/Oops, dmesg about zfs/spl). */
  evidence?: string[];
  /** Where the console log of a failing kernel is kept on the build host. */
  consoleLog?: string;
}

/**
 * Reads one kernel's console output. `timedOut` means qemu was stopped after the stage's timeout;
 * `exitError` is how qemu itself failed, if it did.
 */
export function readBootConsole(input: {
  kernel: string;
  lines: readonly string[];
  seconds: number;
  accel: 'kvm' | 'tcg';
  timedOut: boolean;
  timeoutSeconds: number;
  exitError?: string;
}): KernelBoot {
  const { kernel, lines } = input;
  const kz = lines
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.includes('KZ: ') || l.includes('KZ-DMESG: ') || l.includes('KZ-VERSION: '));
  const marker = (prefix: string) => kz.find((l) => l.includes(`KZ: ${prefix}`));
  const booted = !!marker('booted ');
  const result = marker('RESULT ')?.replace(/^.*KZ: RESULT /, '');
  const moduleVersion =
    marker('module-version ')
      ?.replace(/^.*KZ: module-version /, '')
      .trim() || undefined;
  const moduleLoaded = booted && !!moduleVersion;
  const poolRoundTrip = !!marker('pool round-trip ok');
  const base = {
    kernel,
    booted,
    moduleLoaded,
    poolRoundTrip,
    moduleVersion,
    seconds: input.seconds,
    accel: input.accel,
  };
  if (result?.startsWith('PASS')) return base;
  const evidence = bootEvidence(lines);
  let error: string;
  if (result?.startsWith('FAIL ')) error = result.slice(5);
  else if (input.timedOut)
    error = booted
      ? `the check did not finish within ${input.timeoutSeconds}s (hung after boot)`
      : `the kernel did not boot within ${input.timeoutSeconds}s`;
  else if (!booted) error = `the kernel did not boot${input.exitError ? ` (${input.exitError})` : ''}`;
  else error = `the check ended without a result${input.exitError ? ` (${input.exitError})` : ''}`;
  return { ...base, error, evidence };
}

/** Lines worth quoting from a console: the check's own failure lines, dmesg about modules, the first BUG/Oops/panic. */
export function bootEvidence(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of lines) {
    const l = raw.replace(/\r$/, '').trim();
    if (/KZ: (insmod .* failed|.* failed:)/.test(l) || l.includes('KZ-DMESG: '))
      out.push(l.replace(/^.*?(KZ(-DMESG)?: )/, ''));
  }
  const oops = lines.find((l) => /\b(BUG:|Oops|Kernel panic)/.test(l));
  if (oops) out.push(oops.trim());
  return [...new Set(out)].slice(0, 12);
}

/** The boot stage's verdict over all kernels under the policy. */
export function bootVerdict(
  policy: BootPolicy,
  boots: readonly KernelBoot[],
): { ok: boolean; warnings: string[]; message: string } {
  const failed = boots.filter((b) => b.error);
  const summary = boots
    .map((b) => `${b.kernel} ${b.error ? 'FAILED' : 'ok'} (${b.seconds.toFixed(1)}s, ${b.accel})`)
    .join('; ');
  if (failed.length === 0)
    return {
      ok: true,
      warnings: [],
      message: `booted ${boots.length} kernel(s), loaded zfs and round-tripped a pool: ${summary}`,
    };
  const lines = failed.map(
    (b) =>
      `kernel ${b.kernel}: ${b.error}${b.evidence?.length ? ` [${b.evidence.join(' | ')}]` : ''}${b.consoleLog ? ` (console log: ${b.consoleLog})` : ''}`,
  );
  if (policy === BootPolicy.Optional)
    return {
      ok: true,
      warnings: lines,
      message: `boot check failed but is optional for this stream: ${lines.join('; ')}`,
    };
  return {
    ok: false,
    warnings: [],
    message: `Booted check failed for ${failed.length} of ${boots.length} kernel(s): ${lines.join('; ')}`,
  };
}

/** How many kernels to boot at once: one per core, each VM needing `vmMiB` plus headroom, at least one. */
export function bootParallelism(input: { cpus: number; freeMiB: number; vmMiB: number; kernels: number }): number {
  const byMemory = Math.floor(input.freeMiB / (input.vmMiB + 512));
  return Math.max(1, Math.min(input.kernels, input.cpus, byMemory));
}
