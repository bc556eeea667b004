#!/usr/bin/env node
// The kinoite-zfs executable. Runs the compiled CLI (dist/, made by `npm run build`) when it is
// current; when dist/ is missing or older than a source file, runs the TypeScript sources through
// tsx instead and says so on stderr, so an edit never runs as stale compiled code.
// KINOITE_ZFS_FROM_SOURCE=1 always runs the sources (quietly).
import module from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compiledState } from './compiled-state.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const fromSource = process.env.KINOITE_ZFS_FROM_SOURCE === '1';
const { state, reason } = fromSource ? { state: 'forced' } : compiledState(root);
let cli;
if (state === 'current' || state === 'no-sources') {
  // Node 22.1+ keeps V8's compiled code of every module between starts (a no-op on Node 20).
  module.enableCompileCache?.();
  cli = await import('../dist/client/cli.js');
} else {
  if (!fromSource)
    process.stderr.write(`kinoite-zfs: running from TypeScript (${reason}); \`npm run build\` compiles it.\n`);
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../client/cli.ts');
}
process.exitCode = await cli.main(process.argv.slice(2));
