/**
 * Compose stage: build the OS image recipe at the pinned commit FROM the base by digest, with the
 * akmods cache by digest, and push it to the candidate repository; the digest is the push's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseImageRef } from '../core/refs.ts';
import { checkValue } from '../core/validate.ts';
import { attemptLocalName, composeBuildArgs, podman, pushImage } from './podman.ts';
import { checkoutCommit } from './git.ts';
import { checkBuildHostDisk } from './disk-preflight.ts';
import type { ActivityDeps } from './deps.ts';
import { noteProgress } from './progress.ts';

/** Input of the compose activity. */
export interface ComposeInput {
  stream: string;
  recipe: { git: string; commit: string; path: string };
  base: string;
  akmods: string;
  candidateRepo: string;
  stableRepo: string;
  tag: string;
  labels: Record<string, string>;
}

/** Activities of the compose stage. */
export function composeActivities({ host }: ActivityDeps) {
  return {
    /** Builds and pushes the candidate image; returns the digest the registry answered with. */
    async composeCandidate(input: ComposeInput): Promise<{ digest: string }> {
      for (const [field, ref] of [
        ['base', input.base],
        ['akmods', input.akmods],
        ['candidate', `${input.candidateRepo}:${input.tag}`],
      ] as const)
        parseImageRef(ref, field);
      await host.assertWritable(`${input.candidateRepo}:${input.tag}`, 'candidate');
      checkValue('recipePath', input.recipe.path, 'recipe.path');
      const env = host.containersEnv();
      await checkBuildHostDisk(host, `composing ${input.candidateRepo}:${input.tag}`);
      const checkout = await checkoutCommit({
        url: input.recipe.git,
        commit: input.recipe.commit,
        cacheDir: join(host.workDir, 'recipes'),
      });
      const local = attemptLocalName('localhost/kinoite-zfs-candidate-build:');
      const tls = host.isInsecure(input.base) || host.isInsecure(input.akmods) ? ['--tls-verify=false'] : [];
      noteProgress({ step: 'build' });
      // The built image is in the registry once pushed; kept locally it would add a candidate's
      // layers to the host's storage on every run. So would the akmods cache it was built from (a
      // new digest whenever a kernel is added); the base stays, for the next compose on it.
      try {
        await podman(
          composeBuildArgs({
            contextDir: join(checkout, input.recipe.path, 'os'),
            tag: local,
            tls,
            buildArgs: {
              BASE_IMAGE: input.base,
              AKMODS_IMAGE: input.akmods,
              STABLE_REPO: input.stableRepo,
              CANDIDATE_REPO: input.candidateRepo,
            },
            labels: input.labels,
          }),
          env,
        );
        noteProgress({ step: 'push' });
        const tmp = await mkdtemp(join(host.workDir, 'compose-'));
        try {
          const dest = `${input.candidateRepo}:${input.tag}`;
          return {
            digest: await pushImage({ local, dest, digestFile: join(tmp, 'digest'), tls: host.tlsArgs(dest), env }),
          };
        } finally {
          await rm(tmp, { recursive: true, force: true });
        }
      } finally {
        await podman(['rmi', '--force', local], env).catch(() => undefined);
        await podman(['rmi', input.akmods], env).catch(() => undefined);
      }
    },
  };
}
