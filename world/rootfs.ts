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

/** One root filesystem recipe: a Debian suite, an mmdebstrap variant and the packages to include. */
export interface RootfsRecipe {
  suite: string;
  variant: string;
  packages: readonly string[];
}

/**
 * The base images' root filesystem: rpm and kmod for the recipes, make for a synthetic release's
 * build, and the shared libraries OpenZFS's userland links (libtirpc, libcrypto, libblkid, libuuid,
 * libudev, zlib), so a real `zpool` runs in a composed image as it does on Fedora.
 */
export const ROOTFS_RECIPE: RootfsRecipe = {
  suite: 'bookworm',
  variant: 'apt',
  packages: [
    'rpm',
    'kmod',
    'cpio',
    'jq',
    'ca-certificates',
    'make',
    'libtirpc3',
    'libssl3',
    'zlib1g',
    'libblkid1',
    'libuuid1',
    'libudev1',
  ],
};

/**
 * The builder's root filesystem when the world builds real OpenZFS: the base's packages plus what
 * OpenZFS's autogen, configure and make need for kernel modules (gcc, dwarves for BTF on 6.x
 * kernels) and userland (the -dev libraries), and ccache. Debian names; a Fedora builder needs the
 * same set (docs/operations.md, "Builder image").
 */
export const BUILDER_ROOTFS_RECIPE: RootfsRecipe = {
  suite: 'bookworm',
  variant: 'apt',
  packages: [
    ...ROOTFS_RECIPE.packages,
    'build-essential',
    'autoconf',
    'automake',
    'libtool',
    'gawk',
    'python3',
    'ccache',
    'file',
    'dwarves',
    'bc',
    'flex',
    'bison',
    'libblkid-dev',
    'uuid-dev',
    'libudev-dev',
    'libssl-dev',
    'zlib1g-dev',
    'libaio-dev',
    'libattr1-dev',
    'libelf-dev',
    'libtirpc-dev',
  ],
};

/** Short hash of a recipe. */
export function rootfsHash(recipe: RootfsRecipe = ROOTFS_RECIPE): string {
  const key = `${recipe.suite}|${recipe.variant}|${[...recipe.packages].sort().join(',')}`;
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

/** Local podman image name of an imported root filesystem. */
export function rootfsImage(recipe: RootfsRecipe = ROOTFS_RECIPE): string {
  return `localhost/kinoite-zfs-world/rootfs:${rootfsHash(recipe)}`;
}

/**
 * Path of the cached root filesystem tarball, made with mmdebstrap on first use
 * (`<cache>/rootfs/bookworm-<hash>.tar`).
 */
export async function ensureRootfs(
  log: (line: string) => void = () => undefined,
  recipe: RootfsRecipe = ROOTFS_RECIPE,
): Promise<string> {
  const dir = join(cacheRoot(), 'rootfs');
  const file = join(dir, `${recipe.suite}-${rootfsHash(recipe)}.tar`);
  if (existsSync(file)) return file;
  await mkdir(dir, { recursive: true });
  // NOTE: mmdebstrap picks its output format from the file name; keep .tar and say --format=tar too.
  const tmp = join(dir, `.partial-${process.pid}-${recipe.suite}-${rootfsHash(recipe)}.tar`);
  try {
    {
      log(
        `making a ${recipe.suite} root filesystem with mmdebstrap (${recipe.packages.join(', ')}); takes 1-3 minutes the first time`,
      );
      const r = await execa(
        'mmdebstrap',
        ['--format=tar', `--variant=${recipe.variant}`, `--include=${recipe.packages.join(',')}`, recipe.suite, tmp],
        { reject: false, all: true },
      );
      if (r.exitCode !== 0) {
        throw new Error(
          `mmdebstrap failed (exit ${r.exitCode}) making ${file}: ${String(r.all).split('\n').slice(-15).join('\n')}\nCheck network access to the Debian mirror and that mmdebstrap is installed (scripts/setup.sh).`,
        );
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
export async function ensureRootfsImage(input: {
  containersConf: string;
  log?: (line: string) => void;
  recipe?: RootfsRecipe;
}): Promise<string> {
  const env = { CONTAINERS_CONF: input.containersConf };
  const recipe = input.recipe ?? ROOTFS_RECIPE;
  const image = rootfsImage(recipe);
  if (await localImageExists(image, env)) return image;
  const tarball = await ensureRootfs(input.log, recipe);
  input.log?.(`importing ${tarball} as ${image}`);
  const r = await execa('podman', ['import', '--change', 'CMD ["/bin/bash"]', tarball, image], {
    reject: false,
    all: true,
    env,
  });
  if (r.exitCode !== 0) throw new Error(`podman import of ${tarball} failed: ${String(r.all).trim()}`);
  return image;
}
