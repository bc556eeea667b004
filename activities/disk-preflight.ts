/**
 * Disk preflight of the build activities: before an akmods build or a compose writes gigabytes,
 * measure the free space of podman's containers storage (its graphroot) and of the worker's
 * work dir, and fail at once, naming the path and the numbers, when either is below the host's
 * `worker.minFreeSpace`. A full disk otherwise shows up as a failed layer write deep inside a
 * build, retried until the retries run out, with the host unusable meanwhile.
 */
import { mkdir, statfs } from 'node:fs/promises';
import { diskShortfall, type MeasuredVolume } from '../core/disk.ts';
import { FailureType, PermanentError } from '../core/errors.ts';
import { parseSize } from '../core/size.ts';
import type { Host } from './host.ts';
import { podman } from './podman.ts';

/** Bytes available to an unprivileged writer on the file system holding `path`. */
async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

/** The containers storage folder podman uses with this host's environment. */
async function graphRoot(env: Record<string, string>): Promise<string> {
  const { stdout } = await podman(['info', '--format', '{{.Store.GraphRoot}}'], env);
  return stdout.trim();
}

/**
 * Throws PermanentError InsufficientDiskSpace when the containers storage or the work dir has
 * less free space than `worker.minFreeSpace`; returns what it measured otherwise.
 */
export async function checkBuildHostDisk(host: Host, stage: string): Promise<MeasuredVolume[]> {
  const minFree = parseSize(host.config.worker.minFreeSpace, { allowZero: true }) ?? 0;
  if (minFree === 0) return [];
  await mkdir(host.workDir, { recursive: true });
  const storage = await graphRoot(host.containersEnv());
  const volumes: MeasuredVolume[] = [
    { what: 'containers storage', path: storage, free: await freeBytes(storage) },
    { what: 'work dir', path: host.workDir, free: await freeBytes(host.workDir) },
  ];
  const message = diskShortfall({ stage, volumes, minFree });
  if (message) throw new PermanentError(FailureType.InsufficientDiskSpace, message);
  return volumes;
}
