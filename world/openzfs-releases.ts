/**
 * Real OpenZFS releases for the world's release source: their real `META` and source tarball from a
 * folder of real releases (`<tag>.tar.gz`, optionally `meta/<tag>.META` and a GitHub-shaped
 * `releases.json`), as the steering repository's shared/openzfs holds them.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { parseMeta } from '../core/compat.ts';
import { REPO_ROOT } from './tools.ts';

/** Environment variable naming a folder of real OpenZFS release tarballs. */
export const OPENZFS_DIR_ENV = 'KINOITE_ZFS_OPENZFS_DIR';

/** The folder of real releases: the spec's, else $KINOITE_ZFS_OPENZFS_DIR, else ../shared/openzfs next to the checkout. */
export function openzfsDir(
  specValue: string | undefined,
  specDir: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (specValue) return resolve(specDir, specValue);
  if (env[OPENZFS_DIR_ENV]) return resolve(env[OPENZFS_DIR_ENV]!);
  return resolve(REPO_ROOT, '..', 'shared', 'openzfs');
}

/** One real release as the world serves it. */
export interface RealRelease {
  tag: string;
  version: string;
  meta: string;
  linuxMin: string;
  linuxMax: string;
  tarball: string;
  prerelease: boolean;
  publishedAt?: string;
}

/**
 * Reads a real release from `dir`; undefined (with the reason) when its tarball is not there, so
 * the world can fall back to a synthetic release and say how to point it at real ones.
 */
export async function readRealRelease(dir: string, tag: string): Promise<RealRelease | { missing: string }> {
  const tarball = join(dir, `${tag}.tar.gz`);
  if (!existsSync(tarball)) {
    return {
      missing: `${tarball} not found: set ${OPENZFS_DIR_ENV} (or zfs.openzfsDir in the spec) to a folder holding ${tag}.tar.gz (a GitHub release tarball or a git archive of the tag)`,
    };
  }
  const version = tag.replace(/^zfs-/, '');
  const metaFile = join(dir, 'meta', `${tag}.META`);
  const meta = existsSync(metaFile) ? await readFile(metaFile, 'utf8') : await metaFromTarball(tarball, version);
  const parsed = parseMeta(meta);
  let listed: { prerelease?: boolean; published_at?: string } | undefined;
  const releasesFile = join(dir, 'releases.json');
  if (existsSync(releasesFile)) {
    const list = JSON.parse(await readFile(releasesFile, 'utf8')) as {
      tag_name: string;
      prerelease?: boolean;
      published_at?: string;
    }[];
    listed = list.find((r) => r.tag_name === tag);
  }
  return {
    tag,
    version,
    meta,
    linuxMin: parsed.linuxMin ?? '4.18',
    linuxMax: parsed.linuxMax ?? '99.99',
    tarball,
    prerelease: listed?.prerelease ?? /-rc\d+$/.test(version),
    publishedAt: listed?.published_at,
  };
}

async function metaFromTarball(tarball: string, version: string): Promise<string> {
  const r = await execa('tar', ['-xzOf', tarball, `zfs-${version}/META`], { reject: false, all: true });
  if (r.exitCode !== 0)
    throw new Error(
      `${tarball} has no zfs-${version}/META: is it an OpenZFS release tarball? (${String(r.all).trim()})`,
    );
  return String(r.stdout);
}
