/**
 * The real Debian root filesystem the world's base and builder images are made from, so `rpm`,
 * `rpmbuild` and `depmod` really run in them. Made once per machine with mmdebstrap (about two
 * minutes), cached by its package list, and imported once as a local podman image.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { cacheRoot } from './tools.ts';

/** What the root filesystem is made of; its hash names the cached tarball and the image tag. */
export const ROOTFS_RECIPE = {
  suite: 'bookworm',
  variant: 'apt',
  packages: ['rpm', 'kmod', 'cpio', 'jq', 'ca-certificates'],
} as const;

/** Short hash of ROOTFS_RECIPE. */
export function rootfsHash(): string {
  const key = `${ROOTFS_RECIPE.suite}|${ROOTFS_RECIPE.variant}|${[...ROOTFS_RECIPE.packages].sort().join(',')}`;
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

/** Local podman image name of the imported root filesystem. */
export function rootfsImage(): string {
  return `localhost/kinoite-zfs-world/rootfs:${rootfsHash()}`;
}

/**
 * Path of the cached root filesystem tarball, made with mmdebstrap on first use
 * (`<cache>/rootfs/bookworm-<hash>.tar`).
 */
export async function ensureRootfs(log: (line: string) => void = () => undefined): Promise<string> {
  const dir = join(cacheRoot(), 'rootfs');
  const file = join(dir, `${ROOTFS_RECIPE.suite}-${rootfsHash()}.tar`);
  if (existsSync(file)) return file;
  await mkdir(dir, { recursive: true });
  // NOTE: mmdebstrap picks its output format from the file name; keep .tar and say --format=tar too.
  const tmp = join(dir, `.partial-${process.pid}-${ROOTFS_RECIPE.suite}-${rootfsHash()}.tar`);
  try {
    {
      log(`making a ${ROOTFS_RECIPE.suite} root filesystem with mmdebstrap (${ROOTFS_RECIPE.packages.join(', ')}); takes about 2 minutes the first time`);
      const r = await execa(
        'mmdebstrap',
        ['--format=tar', `--variant=${ROOTFS_RECIPE.variant}`, `--include=${ROOTFS_RECIPE.packages.join(',')}`, ROOTFS_RECIPE.suite, tmp],
        { reject: false, all: true },
      );
      if (r.exitCode !== 0) {
        throw new Error(`mmdebstrap failed (exit ${r.exitCode}) making ${file}: ${String(r.all).split('\n').slice(-15).join('\n')}\nCheck network access to the Debian mirror and that mmdebstrap is installed (scripts/setup.sh).`);
      }
    }
    await rename(tmp, file);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return file;
}

/** Whether a local image exists in containers-storage. */
export async function localImageExists(image: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const r = await execa('podman', ['image', 'exists', image], { reject: false, env });
  return r.exitCode === 0;
}

/** Imports the root filesystem once per machine as `rootfsImage()` and returns that name. */
export async function ensureRootfsImage(input: { containersConf: string; log?: (line: string) => void }): Promise<string> {
  const env = { CONTAINERS_CONF: input.containersConf };
  const image = rootfsImage();
  if (await localImageExists(image, env)) return image;
  const tarball = await ensureRootfs(input.log);
  input.log?.(`importing ${tarball} as ${image}`);
  const r = await execa('podman', ['import', '--change', 'CMD ["/bin/bash"]', tarball, image], { reject: false, all: true, env });
  if (r.exitCode !== 0) throw new Error(`podman import of ${tarball} failed: ${String(r.all).trim()}`);
  return image;
}
