/**
 * Registry credentials as podman and docker read them: a containers-auth.json / docker config.json
 * with `auths` (base64 `user:password`, or `username` + `password`), `credHelpers` (a helper per
 * registry host) and `credsStore` (the helper for every other host). A helper is run as
 * `docker-credential-<name> get` with the host on standard input and answers
 * `{"Username": …, "Secret": …}`. Credentials stay in this process: never in arguments, results,
 * logs or errors; errors name the host, the file and the helper.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FailureType, PermanentError } from '../core/errors.ts';
import { runCredentialHelper } from './run-tool.ts';

/** The parts of an auth file this module reads. */
export interface AuthFileContent {
  auths?: Record<string, { auth?: unknown; username?: unknown; password?: unknown }>;
  credHelpers?: Record<string, unknown>;
  credsStore?: unknown;
}

/** Credentials for one registry host, and where they came from (for messages). */
export interface RegistryCredential {
  /** base64 of `user:secret`, as a Basic Authorization header carries it. */
  basic: string;
  /** The auth file, and the helper when one answered. */
  file: string;
  helper?: string;
}

/**
 * Auth files in the order podman looks for them when none is given:
 * `${XDG_RUNTIME_DIR}/containers/auth.json`, `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`,
 * `${DOCKER_CONFIG:-~/.docker}/config.json`.
 */
export function defaultAuthFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME || homedir();
  return [
    ...(env.XDG_RUNTIME_DIR ? [join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json')] : []),
    join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'),
    join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json'),
  ];
}

/** The auth file of this host: the configured one, else $REGISTRY_AUTH_FILE, else the first of {@link defaultAuthFiles} that exists. */
export function resolveAuthFile(
  configured: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  return configured ?? (env.REGISTRY_AUTH_FILE || defaultAuthFiles(env).find((f) => existsSync(f)));
}

/** The host part of an auth file key (`host`, `https://host`, `https://host/v1/` or `host/namespace`). */
export function hostOfKey(key: string): string {
  return key.replace(/^https?:\/\//, '').split('/')[0]!;
}

/** Docker Hub goes by several names in auth files. */
function sameHost(key: string, host: string): boolean {
  const k = hostOfKey(key);
  if (k === host) return true;
  const hub = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];
  return hub.includes(k) && hub.includes(host);
}

/** Parses an auth file's text; the text is never echoed (it holds secrets). */
export function parseAuthFile(text: string, file: string): AuthFileContent {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as AuthFileContent;
  } catch {
    // fall through
  }
  throw new PermanentError(
    FailureType.InvalidInput,
    `Registry auth file ${file} is not a JSON object (containers-auth.json / docker config.json); fix it`,
  );
}

/** Reads and parses an auth file (sync: for the tool environment). */
export function readAuthFileSync(file: string): AuthFileContent {
  return parseAuthFile(readFileSync(file, 'utf8'), file);
}

/** The helper an auth file names for `host`: its `credHelpers` entry, else its `credsStore`. */
function helperFor(content: AuthFileContent, host: string): string | undefined {
  for (const [key, name] of Object.entries(content.credHelpers ?? {}))
    if (sameHost(key, host) && typeof name === 'string' && name) return name;
  return undefined;
}

/** base64 `user:password` of an `auths` entry for `host`; an exact host key beats a namespaced one. */
function inlineAuth(content: AuthFileContent, host: string): string | undefined {
  let found: string | undefined;
  for (const [key, entry] of Object.entries(content.auths ?? {})) {
    if (!sameHost(key, host)) continue;
    let auth = typeof entry?.auth === 'string' && entry.auth !== '' ? entry.auth : undefined;
    if (!auth && typeof entry?.username === 'string' && typeof entry?.password === 'string')
      auth = Buffer.from(`${entry.username}:${entry.password}`).toString('base64');
    if (auth && (found === undefined || key === host)) found = auth;
  }
  return found;
}

/**
 * The credentials of `host` from `file`: its `credHelpers` helper, else an `auths` entry, else its
 * `credsStore` helper; undefined when the file has none (anonymous access).
 */
export async function readCredential(file: string, host: string): Promise<RegistryCredential | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new PermanentError(
      FailureType.InvalidInput,
      `Cannot read registry auth file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); fix registries.authFile or $REGISTRY_AUTH_FILE`,
    );
  }
  const content = parseAuthFile(text, file);
  const perHost = helperFor(content, host);
  if (perHost) return fromHelper(perHost, host, file, 'credHelpers');
  const inline = inlineAuth(content, host);
  if (inline) return { basic: inline, file };
  if (typeof content.credsStore === 'string' && content.credsStore)
    return fromHelper(content.credsStore, host, file, 'credsStore');
  return undefined;
}

async function fromHelper(
  name: string,
  host: string,
  file: string,
  field: 'credHelpers' | 'credsStore',
): Promise<RegistryCredential | undefined> {
  const program = `docker-credential-${name}`;
  const where = `(${field} of ${file})`;
  if (!/^[A-Za-z0-9._-]+$/.test(name))
    throw new PermanentError(
      FailureType.InvalidInput,
      `Credential helper name "${name}" ${where} is not a plain name; fix it`,
    );
  const r = await runCredentialHelper(program, host);
  if (r.missing)
    throw new PermanentError(
      FailureType.ToolMissing,
      `Credential helper ${program} ${where} for ${host} is not on this worker's PATH; install it or change the auth file`,
    );
  if (r.exitCode !== 0) {
    // The helpers' own word for "nothing stored for this host" (docker-credential-helpers' ErrCredentialsNotFound).
    if (/credentials not found/i.test(`${r.stdout}\n${r.stderr}`)) return undefined;
    throw new PermanentError(
      FailureType.AuthDenied,
      `Credential helper ${program} ${where} failed for ${host} (exit ${r.exitCode ?? '?'}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`,
    );
  }
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(r.stdout) as typeof answer;
  } catch {
    // Never echo the output: it may hold the secret.
    throw new PermanentError(
      FailureType.AuthDenied,
      `Credential helper ${program} ${where} answered ${host} with something that is not JSON {"Username", "Secret"}`,
    );
  }
  if (typeof answer?.Username !== 'string' || typeof answer?.Secret !== 'string' || !answer.Secret)
    throw new PermanentError(
      FailureType.AuthDenied,
      `Credential helper ${program} ${where} answered ${host} without a Username and Secret`,
    );
  return { basic: Buffer.from(`${answer.Username}:${answer.Secret}`).toString('base64'), file, helper: program };
}

/**
 * The auth file tools get when `file` has a `credsStore`: podman, buildah and skopeo read
 * `credHelpers` but not `credsStore` (containers/image), so every registry host the worker uses
 * that has no entry of its own gets the store as its helper. Nothing is added but helper names.
 * Undefined when `file` needs no such change.
 */
export function withStoreAsHelpers(content: AuthFileContent, hosts: string[]): AuthFileContent | undefined {
  const store = content.credsStore;
  if (typeof store !== 'string' || !store) return undefined;
  const credHelpers: Record<string, unknown> = { ...content.credHelpers };
  for (const host of hosts) if (!helperFor(content, host) && !inlineAuth(content, host)) credHelpers[host] = store;
  return { ...content, credHelpers };
}
