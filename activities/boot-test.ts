/**
 * The booted check: for every kernel of the candidate, take that kernel's vmlinuz, zfs.ko and its
 * dependencies, and the candidate's own zpool/zfs with their libraries, all from the candidate
 * image by digest (boot/collect.sh runs inside it); pack them with busybox into an initramfs; boot it
 * under qemu (KVM when it works here, TCG otherwise); inside, load the modules and round-trip a pool
 * (boot/init.sh). The verdict per kernel is read from the console by core/boot.ts.
 */
import { constants, existsSync } from 'node:fs';
import { access, chmod, copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { cpus, freemem } from 'node:os';
import { join, relative } from 'node:path';
import { Context } from '@temporalio/activity';
import { bootParallelism, readBootConsole, type KernelBoot } from '../core/boot.ts';
import { parseImageRef } from '../core/refs.ts';
import { isValidKernelRelease } from '../core/kernels.ts';
import { PermanentError, FailureType } from '../core/errors.ts';
import { podman, pullArgs } from './podman.ts';
import { runTool } from './run-tool.ts';
import type { ActivityDeps } from './deps.ts';
import { packagePath } from './package-root.ts';
import { noteProgress } from './progress.ts';

/** The scripts the booted check runs: read from the package root, so they resolve from dist/ too. */
export const BOOT_SCRIPTS = {
  /** Runs in the candidate image and copies its kernels, modules and userland out. */
  collect: packagePath('activities', 'boot', 'collect.sh'),
  /** The initramfs's /init: loads the modules and round-trips a pool. */
  init: packagePath('activities', 'boot', 'init.sh'),
};
/** Memory of each VM: ZFS wants room for its ARC next to a 128 MiB vdev in RAM. */
const VM_MIB = 1024;

/** Input of the booted check. */
export interface BootTestInput {
  /** Candidate image by digest. */
  candidate: string;
  kernels: string[];
  /** Seconds one kernel's qemu run may take before it counts as hung. */
  timeoutSeconds: number;
  /** At most this many VMs at once (benchmarks compare 1 with the default). @default one per core, as memory allows */
  maxParallel?: number;
}

/** Arguments of one qemu run of the check. */
export function qemuArgs(input: { kernel: string; initrd: string; accel: 'kvm' | 'tcg'; memoryMiB: number }): string[] {
  return [
    ...(input.accel === 'kvm' ? ['-enable-kvm', '-cpu', 'host'] : ['-accel', 'tcg']),
    '-m',
    String(input.memoryMiB),
    '-smp',
    '1',
    '-nographic',
    '-no-reboot',
    '-nodefaults',
    '-serial',
    'stdio',
    '-kernel',
    input.kernel,
    '-initrd',
    input.initrd,
    '-append',
    'console=ttyS0 panic=-1 quiet loglevel=4',
  ];
}

/** Set once a KVM run failed before its kernel booted: this host's KVM does not work for us (nested virtualisation). */
let kvmBroken = false;

async function kvmUsable(mode: 'auto' | 'kvm' | 'tcg'): Promise<boolean> {
  if (mode === 'tcg' || (mode === 'auto' && kvmBroken)) return false;
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Activities of the boot stage. */
export function bootTestActivities({ host }: ActivityDeps) {
  return {
    /** Boots every kernel of the candidate with its own modules and userland; returns the verdict per kernel (never throws for a failing kernel). */
    async bootTestCandidate(input: BootTestInput): Promise<{ kernels: KernelBoot[] }> {
      parseImageRef(input.candidate, 'candidate');
      for (const k of input.kernels)
        if (!isValidKernelRelease(k))
          throw new PermanentError(
            FailureType.InvalidInput,
            `Refusing to boot kernel release ${JSON.stringify(k)}: not a kernel release.`,
          );
      const ctx = Context.current();
      const env = host.containersEnv();
      await podman(pullArgs(input.candidate, host.tlsArgs(input.candidate)), env);
      const busybox = await findBusybox();
      const parallel = Math.min(
        input.maxParallel ?? Infinity,
        bootParallelism({
          cpus: cpus().length,
          freeMiB: Math.floor(freemem() / 2 ** 20),
          vmMiB: VM_MIB,
          kernels: input.kernels.length,
        }),
      );
      const logs = join(host.workDir, 'boot-logs');
      await mkdir(logs, { recursive: true });
      const results: KernelBoot[] = [];
      const logName = (kernel: string) =>
        join(logs, `${safe(ctx.info.workflowExecution?.workflowId ?? ctx.info.activityId)}-${kernel}.log`);
      const queue = [...input.kernels];
      const one = async (kernel: string): Promise<KernelBoot> => {
        const dir = await mkdtemp(join(host.workDir, 'boot-'));
        try {
          noteProgress({ step: `${kernel}: collect` });
          await mkdir(join(dir, 'root'));
          await podman(
            [
              'run',
              '--rm',
              '--network=none',
              '--pull=never',
              '-v',
              `${BOOT_SCRIPTS.collect}:/kz/collect.sh:ro`,
              '-v',
              `${dir}:/out`,
              input.candidate,
              '/bin/sh',
              '/kz/collect.sh',
              kernel,
            ],
            env,
          ).catch((err: Error) => {
            const line = err.message.split('\n').find((l) => l.startsWith('kz-collect: '));
            throw line
              ? new PermanentError(
                  FailureType.MissingModulePayload,
                  `Cannot boot kernel ${kernel} of ${input.candidate}: ${line.slice(12)}`,
                )
              : err;
          });
          const initrd = await initramfs(join(dir, 'root'), busybox, join(dir, 'initrd.cpio'));
          const vmlinuz = join(dir, 'vmlinuz');
          let run = await bootOnce({
            kernel,
            vmlinuz,
            initrd,
            timeoutSeconds: input.timeoutSeconds,
            accel: (await kvmUsable(host.config.worker.qemuAccel)) ? 'kvm' : 'tcg',
          });
          if (run.boot.accel === 'kvm' && !run.boot.booted && host.config.worker.qemuAccel === 'auto') {
            kvmBroken = true;
            run = await bootOnce({ kernel, vmlinuz, initrd, timeoutSeconds: input.timeoutSeconds, accel: 'tcg' });
          }
          const { boot } = run;
          // The console of a failing kernel is kept for the operator; passing ones leave nothing behind.
          if (boot.error) {
            boot.consoleLog = logName(kernel);
            await writeFile(boot.consoleLog, `${run.lines.join('\n')}\n`);
          }
          return boot;
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      };
      await Promise.all(
        Array.from({ length: parallel }, async () => {
          for (let k = queue.shift(); k !== undefined; k = queue.shift()) results.push(await one(k));
        }),
      );
      const order = new Map(input.kernels.map((k, i) => [k, i]));
      return { kernels: results.sort((a, b) => order.get(a.kernel)! - order.get(b.kernel)!) };
    },
  };
}

/** One qemu run: its verdict and its console lines. */
async function bootOnce(input: {
  kernel: string;
  vmlinuz: string;
  initrd: string;
  timeoutSeconds: number;
  accel: 'kvm' | 'tcg';
}): Promise<{ boot: KernelBoot; lines: string[] }> {
  const lines: string[] = [];
  const started = Date.now();
  let timedOut = false;
  let exitError: string | undefined;
  await runTool({
    tool: 'qemu-system-x86_64',
    args: qemuArgs({ kernel: input.vmlinuz, initrd: input.initrd, accel: input.accel, memoryMiB: VM_MIB }),
    env: {},
    timeoutMs: input.timeoutSeconds * 1000,
    onLine: (l) => {
      lines.push(l);
      if (l.includes('KZ: ')) noteProgress({ step: `${input.kernel}: ${l.slice(l.indexOf('KZ: '))}` });
    },
  }).catch((err: Error) => {
    if (err instanceof PermanentError && err.type === FailureType.ToolMissing) throw err;
    timedOut = /timed out/.test(err.message.split('\n')[0]!);
    exitError = timedOut ? undefined : err.message.split('\n').slice(-3).join(' ').slice(0, 300);
  });
  const boot = readBootConsole({
    kernel: input.kernel,
    lines,
    seconds: (Date.now() - started) / 1000,
    accel: input.accel,
    timedOut,
    timeoutSeconds: input.timeoutSeconds,
    exitError,
  });
  return { boot, lines };
}

/** Packs `root` with busybox and the check's /init into an uncompressed newc initramfs. */
async function initramfs(root: string, busybox: string, out: string): Promise<string> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile(busybox, join(root, 'bin', 'busybox'));
  await chmod(join(root, 'bin', 'busybox'), 0o755);
  await copyFile(BOOT_SCRIPTS.init, join(root, 'init'));
  await chmod(join(root, 'init'), 0o755);
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'run', 'etc']) await mkdir(join(root, d), { recursive: true });
  if (!existsSync(join(root, 'bin', 'sh'))) await symlink('busybox', join(root, 'bin', 'sh'));
  const names = ['.', ...(await walk(root)).map((p) => relative(root, p))];
  await runTool({
    tool: 'cpio',
    args: ['--quiet', '-o', '-H', 'newc', '-O', out],
    cwd: root,
    input: `${names.join('\n')}\n`,
    env: {},
  });
  return out;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await walk(p)));
  }
  return out;
}

/** A statically linked busybox on this host (Debian's busybox-static), the initramfs's shell and tools. */
async function findBusybox(): Promise<string> {
  for (const p of ['/bin/busybox', '/usr/bin/busybox', '/usr/sbin/busybox']) if (existsSync(p)) return p;
  throw new PermanentError(
    FailureType.ToolMissing,
    'busybox is not installed on this build host: the booted check packs it into the initramfs (apt-get install busybox-static; scripts/setup.sh does).',
  );
}

function safe(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_');
}
