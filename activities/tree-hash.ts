/**
 * Content hash of a folder (relative paths, file bytes and symlink targets), so a build keyed by its
 * recipe changes exactly when the recipe does.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** SHA-256 hex of every file under `dir`, walked in name order. */
export async function treeHash(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    const entries = (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile())
        h.update(`${relative(dir, p)}\0`)
          .update(await readFile(p))
          .update('\0');
      else if (e.isSymbolicLink()) h.update(`${relative(dir, p)}\0->${await readlink(p)}\0`);
    }
  };
  await walk(dir);
  return h.digest('hex');
}
