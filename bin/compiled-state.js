// Whether the compiled CLI in dist/ may run: plain JavaScript, so the executable can ask before it
// loads any TypeScript tooling. dist/ is current when its stamp (written last by `npm run build`,
// dated when the build started) is at least as new as every source file and source folder (a
// folder's time changes when a file in it is added, removed or renamed).
//
//   node bin/compiled-state.js   prints "current", "missing: …" or "stale: …" (exit 0, 1, 1)
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Files outside the source folders whose change makes dist/ stale. */
const BUILD_INPUTS = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];

/**
 * The state of dist/ under `root`:
 * - `{ state: 'current' }`: dist/ is at least as new as every source;
 * - `{ state: 'missing', reason }`: never built, or a build did not finish;
 * - `{ state: 'stale', reason }`: a source (named in reason) changed after the last build;
 * - `{ state: 'no-sources' }`: an installed package without its TypeScript sources: dist/ is all there is.
 * @param {string} root the package root
 * @returns {{ state: 'current' | 'missing' | 'stale' | 'no-sources', reason?: string, checked: number }}
 */
export function compiledState(root) {
  if (!existsSync(join(root, 'client', 'cli.ts'))) return { state: 'no-sources', checked: 0 };
  let built;
  try {
    built = statSync(join(root, 'dist', '.build-stamp')).mtimeMs;
  } catch {
    return { state: 'missing', reason: 'dist/ has not been built', checked: 0 };
  }
  // The folders tsc compiles: tsconfig.build.json's include.
  const folders = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')).include;
  let checked = 0;
  /** @param {string} rel @returns {string | undefined} a path newer than the build */
  const newer = (rel) => {
    const path = join(root, rel);
    let st;
    try {
      st = statSync(path);
    } catch {
      return undefined;
    }
    checked++;
    if (st.mtimeMs > built) return rel;
    if (!st.isDirectory()) return undefined;
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      if (entry.isDirectory() || /\.(ts|mts|json)$/.test(entry.name)) {
        const hit = newer(join(rel, entry.name));
        if (hit) return hit;
      }
    }
    return undefined;
  };
  for (const rel of [...BUILD_INPUTS, ...folders]) {
    const hit = newer(rel);
    if (hit) return { state: 'stale', reason: `${hit} changed after the last build`, checked };
  }
  return { state: 'current', checked };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const s = compiledState(dirname(dirname(fileURLToPath(import.meta.url))));
  console.log(s.reason ? `${s.state}: ${s.reason}` : s.state);
  process.exitCode = s.state === 'missing' || s.state === 'stale' ? 1 : 0;
}
