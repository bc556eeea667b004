#!/usr/bin/env node
// The kinoite-zfs executable: registers the TypeScript loader, then runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../client/cli.ts');
process.exitCode = await main(process.argv.slice(2));
