/**
 * Fixture OpenZFS release source tarballs for the hermetic test world.
 *
 * The template in `world/fixtures/zfs-source/` mimics the parts of a real
 * `zfs-<version>.tar.gz` that the pipeline relies on (META, rpm specs, a
 * kernel module, the zfs/zpool commands). Rendering replaces the
 * placeholders `@ZFS_VERSION@`, `@LINUX_MIN@` and `@LINUX_MAX@` in every file.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { packagePath } from '../activities/package-root.ts';

/** Folder holding the fixture source tree template. */
export const ZFS_SOURCE_TEMPLATE_DIR = packagePath('world', 'fixtures', 'zfs-source');

/** Values substituted into the fixture source tree. */
export interface ZfsSourceValues {
  /** OpenZFS version without the `zfs-` prefix, e.g. `2.4.4`. */
  version: string;
  /** `Linux-Minimum` in META, e.g. `4.18`. */
  linuxMin: string;
  /** `Linux-Maximum` in META, e.g. `7.2`. */
  linuxMax: string;
}

/** Options for {@link makeZfsSourceTarball}. */
export interface MakeZfsSourceTarballOptions extends ZfsSourceValues {
  /** Where to write `zfs-<version>.tar.gz` (any name; the top folder inside is always `zfs-<version>/`). */
  outFile: string;
}

// Same charsets build-akmods.sh accepts, so a bad fixture fails here and not deep inside rpmbuild.
const VERSION_RE = /^[0-9]+(\.[0-9]+){1,3}$/;
const LINUX_RE = /^[0-9]+\.[0-9]+(\.[0-9]+)?$/;

function checkValues({ version, linuxMin, linuxMax }: ZfsSourceValues): void {
  if (!VERSION_RE.test(version)) {
    throw new Error(`Invalid ZFS fixture version ${JSON.stringify(version)}: use digits and dots like 2.4.4.`);
  }
  for (const [field, value] of [
    ['linuxMin', linuxMin],
    ['linuxMax', linuxMax],
  ] as const) {
    if (!LINUX_RE.test(value)) {
      throw new Error(`Invalid ZFS fixture ${field} ${JSON.stringify(value)}: use a kernel major.minor like 6.18.`);
    }
  }
}

function substitute(text: string, { version, linuxMin, linuxMax }: ZfsSourceValues): string {
  return text
    .replaceAll('@ZFS_VERSION@', version)
    .replaceAll('@LINUX_MIN@', linuxMin)
    .replaceAll('@LINUX_MAX@', linuxMax);
}

/**
 * Renders the fixture `META` file (same format as OpenZFS's) for one release.
 * Throws when a value is not a plain version number.
 */
export function renderMeta(values: ZfsSourceValues): string {
  checkValues(values);
  return substitute(readFileSync(join(ZFS_SOURCE_TEMPLATE_DIR, 'META'), 'utf8'), values);
}

async function renderTree(srcDir: string, destDir: string, values: ZfsSourceValues): Promise<void> {
  await mkdir(destDir, { recursive: true });
  for (const entry of await readdir(srcDir, { withFileTypes: true })) {
    const from = join(srcDir, entry.name);
    const to = join(destDir, entry.name);
    if (entry.isDirectory()) {
      await renderTree(from, to, values);
    } else if (entry.isFile()) {
      await writeFile(to, substitute(await readFile(from, 'utf8'), values));
      // Keep the exec bit of cmd/zfs and cmd/zpool; normalise the rest for determinism.
      await chmod(to, (await stat(from)).mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

/**
 * Writes a fixture OpenZFS source tarball `zfs-<version>/…` to `outFile`.
 * The output is byte-for-byte deterministic for the same inputs (sorted names,
 * zero mtimes and owners, gzip without name/time), so its digest can be pinned.
 */
export async function makeZfsSourceTarball(opts: MakeZfsSourceTarballOptions): Promise<void> {
  const { outFile, ...values } = opts;
  checkValues(values);
  const work = await mkdtemp(join(tmpdir(), 'kz-zfs-source-'));
  try {
    const top = `zfs-${values.version}`;
    await renderTree(ZFS_SOURCE_TEMPLATE_DIR, join(work, top), values);
    const tarFile = join(work, `${top}.tar`);
    await execa('tar', [
      '--create',
      '--file',
      tarFile,
      '--directory',
      work,
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      // Directory modes otherwise depend on the umask.
      '--mode=u+rwX,go=rX',
      '--format=gnu',
      top,
    ]);
    // gzip -n omits the original name and time, so equal inputs give equal bytes.
    const { stdout } = await execa('gzip', ['-n', '-9', '-c', tarFile], {
      encoding: 'buffer',
      stripFinalNewline: false,
    });
    await mkdir(dirname(resolve(outFile)), { recursive: true });
    await writeFile(outFile, stdout);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
