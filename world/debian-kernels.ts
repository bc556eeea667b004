/**
 * Real Debian kernels for the test world: `linux-image-<release>` (vmlinuz and the modules tree, for
 * base images) and `linux-headers-<release>` with the packages it needs to build modules (for the
 * builder), downloaded once per machine with apt into the per-user cache and unpacked there.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { naturalCompare } from '../core/kernels.ts';
import { cacheRoot } from './tools.ts';

/** A Debian kernel release split into its ABI (`6.1.0-47`, `6.12.117+deb12`) and flavour (`cloud-amd64`). */
export interface DebianRelease {
  release: string;
  abi: string;
  flavour: string;
  /** Major.minor, e.g. `6.12`. */
  series: string;
}

const RELEASE = /^((\d+)\.(\d+)\.\d+(?:-\d+|\+deb\d+))-([a-z0-9]+(?:-[a-z0-9]+)*)$/;

/** Parses a Debian kernel release name, or returns undefined for anything else (meta packages included). */
export function parseDebianRelease(release: string): DebianRelease | undefined {
  const m = RELEASE.exec(release);
  if (!m || /-(unsigned|dbg)$/.test(release)) return undefined;
  return { release, abi: m[1]!, flavour: m[4]!, series: `${m[2]}.${m[3]}` };
}

/** The unpacked packages of one kernel in the cache. */
export interface DebianKernelFiles {
  release: string;
  /** Root holding `boot/vmlinuz-<release>` and the modules tree, as the image package lays them. */
  imageRoot: string;
  /** Merged-/usr root holding `usr/src/linux-headers-*`, `usr/lib/linux-kbuild-*` and `usr/lib/modules/<release>/{build,source}`. */
  headersRoot: string;
}

async function apt(args: string[], cwd?: string) {
  return execa(args[0]!, args.slice(1), { cwd, reject: false, all: true, env: { DEBIAN_FRONTEND: 'noninteractive' } });
}

/** Every kernel release of `flavour` the archive holds (from `apt-cache pkgnames`), oldest first. */
export async function debianReleases(flavour: string): Promise<string[]> {
  const r = await apt(['apt-cache', 'pkgnames', 'linux-image-']);
  return String(r.stdout)
    .split('\n')
    .map((p) => parseDebianRelease(p.replace(/^linux-image-/, '')))
    .filter((d): d is DebianRelease => !!d && d.flavour === flavour)
    .map((d) => d.release)
    .sort(naturalCompare);
}

/** The newest release of a series (`6.12`) Debian's archive holds in `flavour`; throws naming what it holds. */
export async function newestDebianRelease(series: string, flavour = 'cloud-amd64'): Promise<string> {
  const all = await debianReleases(flavour);
  const found = all.filter((k) => parseDebianRelease(k)!.series === series).at(-1);
  if (!found)
    throw new Error(
      `Debian's archive holds no ${series} kernel in flavour ${flavour} (it holds ${all.join(', ') || 'none'}).`,
    );
  return found;
}

let updated = false;
/** Runs `apt-get update` once per process when the package lists may be stale or absent. */
async function refreshLists(): Promise<void> {
  if (updated) return;
  updated = true;
  const r = await apt(['apt-get', 'update', '-qq']);
  if (r.exitCode !== 0)
    throw new Error(
      `apt-get update failed (needed to find Debian kernel packages): ${String(r.all).trim().split('\n').slice(-5).join('\n')}`,
    );
}

/**
 * The release a kernel spec names: `release` exactly, or the newest release of `series` in
 * `flavour`. A release or series the archive does not hold is refused with the releases it does hold.
 */
export async function resolveDebianRelease(spec: {
  release?: string;
  series?: string;
  flavour: string;
}): Promise<string> {
  let held = await debianReleases(spec.flavour);
  const pick = () =>
    spec.release
      ? held.find((r) => r === spec.release)
      : held.filter((r) => parseDebianRelease(r)!.series === spec.series).at(-1);
  if (!pick()) {
    await refreshLists();
    held = await debianReleases(spec.flavour);
  }
  const found = pick();
  if (found) return found;
  const what = spec.release ? `kernel release ${spec.release}` : `a ${spec.series} kernel`;
  throw new Error(
    held.length
      ? `Debian's archive holds no ${what} in flavour ${spec.flavour}. It holds: ${held.join(', ')}.`
      : `Debian's archive holds no kernel in flavour ${spec.flavour} (apt-cache pkgnames linux-image- lists none): check the flavour (amd64, cloud-amd64, rt-amd64) and the apt sources.`,
  );
}

/** The packages `linux-headers-<release>` needs to build modules: itself, its -common and its kbuild. */
async function headerPackages(release: string): Promise<string[]> {
  const r = await apt(['apt-cache', 'depends', '--no-recommends', '--no-suggests', `linux-headers-${release}`]);
  if (r.exitCode !== 0) throw new Error(`apt-cache depends linux-headers-${release} failed: ${String(r.all).trim()}`);
  const deps = [...String(r.stdout).matchAll(/Depends: (linux-(?:headers|kbuild)-[^\s<>]+)/g)].map((m) => m[1]!);
  return [`linux-headers-${release}`, ...new Set(deps)];
}

/** Downloads (once) and unpacks the image and headers packages of `release` into the cache. */
export async function ensureDebianKernel(
  release: string,
  log: (line: string) => void = () => undefined,
): Promise<DebianKernelFiles> {
  const dir = join(cacheRoot(), 'debian-kernels', release);
  const files: DebianKernelFiles = { release, imageRoot: join(dir, 'image'), headersRoot: join(dir, 'headers') };
  if (existsSync(files.imageRoot) && existsSync(files.headersRoot)) return files;
  const tmp = `${dir}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'debs'), { recursive: true });
  try {
    const packages = [`linux-image-${release}`, ...(await headerPackages(release))];
    log(`downloading Debian kernel ${release}: ${packages.join(', ')}`);
    let r = await apt(['apt-get', 'download', ...packages], join(tmp, 'debs'));
    if (r.exitCode !== 0) {
      await refreshLists();
      r = await apt(['apt-get', 'download', ...packages], join(tmp, 'debs'));
    }
    if (r.exitCode !== 0)
      throw new Error(
        `apt-get download ${packages.join(' ')} failed: ${String(r.all).trim().split('\n').slice(-5).join('\n')}`,
      );
    const debs = (await readdir(join(tmp, 'debs'))).filter((f) => f.endsWith('.deb'));
    for (const deb of debs) {
      const into = join(tmp, deb.startsWith('linux-image-') ? 'image' : 'headers');
      await mkdir(into, { recursive: true });
      const x = await execa('dpkg-deb', ['-x', join(tmp, 'debs', deb), into], { reject: false, all: true });
      if (x.exitCode !== 0) throw new Error(`dpkg-deb -x ${deb} failed: ${String(x.all).trim()}`);
    }
    // Bookworm's packages still ship /lib/...; images are merged-/usr, where /lib is a symlink that a copy must not replace.
    const headers = join(tmp, 'headers');
    if (existsSync(join(headers, 'lib'))) {
      await cp(join(headers, 'lib'), join(headers, 'usr', 'lib'), { recursive: true, verbatimSymlinks: true });
      await rm(join(headers, 'lib'), { recursive: true, force: true });
    }
    await rm(join(tmp, 'debs'), { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return files;
}

/** Where the image package put the modules tree (`lib/modules/<release>` on bookworm, `usr/lib/…` later). */
export function modulesDirOf(files: DebianKernelFiles): string {
  const usr = join(files.imageRoot, 'usr', 'lib', 'modules', files.release);
  return existsSync(usr) ? usr : join(files.imageRoot, 'lib', 'modules', files.release);
}
