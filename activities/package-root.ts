/**
 * Where this package's own files are, whether the code runs from its TypeScript sources (through
 * tsx) or compiled into `dist/` (`npm run build`). Files that are not TypeScript (boot scripts,
 * recipes, world fixtures and specs) are never copied into `dist/`: they are read from the package
 * root, so an edit to one takes effect without a build.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** True when this code runs compiled from `dist/`, false when it runs from its `.ts` sources. */
export const RUNS_COMPILED = import.meta.url.endsWith('.js');

/** The package root: the folder holding package.json, bin/, recipes/ and (when built) dist/. */
export const PACKAGE_ROOT = resolve(fileURLToPath(import.meta.url), RUNS_COMPILED ? '../../..' : '../..');

/** A path inside the package root, e.g. `packagePath('activities', 'boot', 'init.sh')`. */
export function packagePath(...segments: string[]): string {
  return resolve(PACKAGE_ROOT, ...segments);
}
