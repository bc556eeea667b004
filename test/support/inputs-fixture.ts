/** The pinned inputs of one run, for unit tests of the records derived from them. */
import type { RunInputs } from '../../core/pipeline.ts';

/** A sha256 digest of one repeated hex character. */
export const D = (c: string): string => `sha256:${c.repeat(64)}`;

/** Two kernels, base and builder pinned by digest, zfs-2.4.4, a recipe commit. */
export const inputs: RunInputs = {
  base: {
    ref: 'r.io/u/base:latest',
    name: 'r.io/u/base',
    digest: D('a'),
    pinned: `r.io/u/base@${D('a')}`,
    tag: 'latest-20261101.0',
    ostreeLinux: 'k2',
    version: '43.20261101.0',
  },
  builder: { ref: 'r.io/u/dev:latest', name: 'r.io/u/dev', digest: D('b'), pinned: `r.io/u/dev@${D('b')}` },
  kernels: ['6.17.7-300.fc43.x86_64', '6.18.5-200.fc43.x86_64'],
  kernel: '6.18.5-200.fc43.x86_64',
  fedora: '43',
  zfs: { line: '2.4', tag: 'zfs-2.4.4', version: '2.4.4', linuxMin: '4.18', linuxMax: '7.2' },
  recipe: { git: '/srv/recipe', path: 'recipes', ref: 'main', commit: '0123456789abcdef0123456789abcdef01234567' },
  pipelineVersion: '1',
};
