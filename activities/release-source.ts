/**
 * The OpenZFS release source over HTTP(S): the release list, a release's META, its tarball.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PermanentError, FailureType } from '../core/errors.ts';
import { fetchWithTimeouts, HttpTimeoutError } from './http.ts';

/** Expands `{tag}` and `{version}` in a release URL template. */
export function releaseUrl(template: string, vars: { tag: string; version: string }): string {
  return template
    .replaceAll('{tag}', encodeURIComponent(vars.tag))
    .replaceAll('{version}', encodeURIComponent(vars.version));
}

async function get(url: string, what: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetchWithTimeouts(
      url,
      { headers: { 'User-Agent': 'kinoite-zfs', Accept: 'application/json, text/plain, */*' } },
      { what: `read the ${what} from the OpenZFS release source` },
    );
  } catch (err) {
    if (err instanceof HttpTimeoutError) throw err;
    throw new Error(
      `Cannot reach the OpenZFS release source for ${what} at ${url}: ${(err as Error).message} (will be retried)`,
    );
  }
  if (res.status === 404)
    throw new PermanentError(
      FailureType.ImageNotFound,
      `The OpenZFS release source has no ${what} at ${url} (HTTP 404); check zfs.source in the config.`,
    );
  if (res.status === 401 || res.status === 403)
    throw new PermanentError(FailureType.AuthDenied, `The OpenZFS release source refused ${url} (HTTP ${res.status}).`);
  if (!res.ok) throw new Error(`The OpenZFS release source answered HTTP ${res.status} for ${url} (will be retried)`);
  return res;
}

/** The list of releases (GitHub API shape). */
export async function fetchReleases(url: string): Promise<{ tag: string; prerelease: boolean; draft: boolean }[]> {
  const body = (await (await get(url, 'release list')).json()) as {
    tag_name?: string;
    prerelease?: boolean;
    draft?: boolean;
  }[];
  if (!Array.isArray(body))
    throw new PermanentError(FailureType.InvalidInput, `The release list at ${url} is not a JSON array.`);
  return body
    .filter((r) => typeof r.tag_name === 'string')
    .map((r) => ({ tag: r.tag_name!, prerelease: !!r.prerelease, draft: !!r.draft }));
}

/** The text of a release's META file. */
export async function fetchText(url: string, what: string): Promise<string> {
  return (await get(url, what)).text();
}

/** Downloads a file once (atomically); later calls reuse it. */
export async function downloadOnce(url: string, file: string, what: string): Promise<string> {
  if (existsSync(file)) return file;
  await mkdir(dirname(file), { recursive: true });
  const res = await get(url, what);
  // Unique per call: two builds of one run (one worker process) download the same tarball at once.
  const tmp = `${file}.part-${process.pid}-${randomUUID()}`;
  try {
    await pipeline(Readable.fromWeb(res.body as never), createWriteStream(tmp));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return file;
}
