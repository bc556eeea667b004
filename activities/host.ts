/**
 * What a worker host knows that never travels through Temporal: tool paths, the containers
 * configuration, registry credentials and signing secrets. Built once by the worker's
 * composition root from the host's config file.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ENV_KEY_PREFIX, type Config } from '../core/config.ts';
import { streamPlanOf, streamRepositories, type StreamPlan } from '../core/pipeline.ts';
import { parseImageRef } from '../core/refs.ts';
import { PermanentError, FailureType } from '../core/errors.ts';
import { readAuthFileSync, resolveAuthFile, withStoreAsHelpers } from './registry-credentials.ts';

/** Pinned tool versions the set-up builds into the tools cache; bump here and in scripts/setup.sh together. */
export const TOOL_VERSIONS = {
  temporal: 'v1.5.1',
  cosign: 'v2.6.5',
  actionlint: 'v1.7.12',
  // The self-hosted cluster (deploy/temporal/): the server the CLI v1.5.1 embeds (its schema tool,
  // temporal-sql-tool, is built beside it) and the Web UI server the CLI embeds.
  'temporal-server': 'v1.29.1',
  'temporal-ui-server': 'v2.42.1',
} as const;

/** The per-user tools cache: $KINOITE_ZFS_TOOLS_DIR, else ${XDG_CACHE_HOME:-~/.cache}/kinoite-zfs/tools (scripts/setup.sh agrees). */
export function toolsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KINOITE_ZFS_TOOLS_DIR
    ? resolve(env.KINOITE_ZFS_TOOLS_DIR)
    : join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kinoite-zfs', 'tools');
}

/** Path of a pinned Go tool: env override (KINOITE_ZFS_<NAME>, dashes as _), then the tools cache, then PATH. */
export function toolPath(name: keyof typeof TOOL_VERSIONS, env: NodeJS.ProcessEnv = process.env): string {
  const override = env[`KINOITE_ZFS_${name.toUpperCase().replaceAll('-', '_')}`];
  if (override) return override;
  const cached = join(toolsDir(env), `${name}-${TOOL_VERSIONS[name]}`, name);
  return existsSync(cached) ? cached : name;
}

/** Host facts handed to activities. */
export class Host {
  #config: Config;
  #configStamp?: number;

  /**
   * @param config the worker's config as loaded at start
   * @param source its file and loader: the streams' settings are read again from the file when it
   *   changes (a deploy), so a stream takes new settings at its next trigger without a restart
   */
  constructor(
    config: Config,
    readonly source?: { file: string; load: (file: string) => Promise<Config> },
  ) {
    this.#config = config;
    if (source) this.#configStamp = statSync(source.file, { throwIfNoEntry: false })?.mtimeMs;
  }

  /** The worker's config (as last read). */
  get config(): Config {
    return this.#config;
  }

  /** The worker's config, read again when its file changed since. */
  async currentConfig(): Promise<Config> {
    if (!this.source) return this.#config;
    const stamp = statSync(this.source.file, { throwIfNoEntry: false })?.mtimeMs;
    if (stamp !== undefined && stamp !== this.#configStamp) {
      // A deployed config that does not load stops the runs that need it, saying why (config check names the field).
      this.#config = await this.source.load(this.source.file).catch((err: Error) => {
        throw new PermanentError(
          FailureType.InvalidInput,
          `The workers' config ${this.source!.file} changed and no longer loads: ${err.message}`,
        );
      });
      this.#configStamp = stamp;
    }
    return this.#config;
  }

  /** The plan of a stream from this worker's config; refuses a stream the config does not name. */
  async streamPlan(stream: string): Promise<StreamPlan> {
    const config = await this.currentConfig();
    const plan = streamPlanOf(config, stream);
    if (!plan)
      throw new PermanentError(
        FailureType.InvalidInput,
        `Stream "${stream}" is not in this worker's config${this.source ? ` (${this.source.file})` : ''}: a trigger can only name a stream the workers are configured for (streams: ${Object.keys(config.streams).join(', ') || 'none'}). Add it to the workers' config and deploy it.`,
      );
    return plan;
  }

  /**
   * Refuses a write (push, copy, signature) to a repository no stream of this worker's config names
   * (or, with `stream`, that this stream does not name): workers publish only where they are configured to.
   */
  async assertWritable(ref: string, what: string, stream?: string): Promise<void> {
    const config = await this.currentConfig();
    const name = parseImageRef(ref, what).name;
    const streams = stream ? [stream] : Object.keys(config.streams);
    const allowed = streams.flatMap((s) => {
      const plan = streamPlanOf(config, s);
      return plan ? streamRepositories(plan) : [];
    });
    if (!allowed.includes(name))
      throw new PermanentError(
        FailureType.PolicyViolation,
        `Refusing to write ${ref} (${what}): ${name} is not a repository of ${stream ? `stream "${stream}"` : 'any stream'} in this worker's config (images.candidate, stable, akmodsCandidate, akmodsStable). Workers publish only to the repositories their own config names.`,
      );
  }

  /** Scratch folder of this host. */
  get workDir(): string {
    return this.config.worker.workDir;
  }

  /** Environment for podman/buildah/skopeo children: containers.conf and the auth file, if any. */
  containersEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    if (this.config.worker.containersConf) env.CONTAINERS_CONF = this.config.worker.containersConf;
    const auth = this.authFile();
    if (auth) env.REGISTRY_AUTH_FILE = this.#containersAuthFile(auth);
    return env;
  }

  /**
   * The registry credentials file on this host: registries.authFile, else $REGISTRY_AUTH_FILE, else
   * the first that exists of podman's own places (${XDG_RUNTIME_DIR}/containers/auth.json,
   * ~/.config/containers/auth.json, ~/.docker/config.json). Every client of the worker (its HTTP
   * client, podman, buildah, skopeo, cosign) reads this one file.
   */
  authFile(): string | undefined {
    return resolveAuthFile(this.config.registries.authFile);
  }

  /**
   * The auth file as podman, buildah and skopeo should see it: the file itself, or, when it names a
   * `credsStore` (which they ignore), a copy in the work folder (0600) where that store is the
   * `credHelpers` entry of every registry this worker's config uses.
   */
  #containersAuthFile(file: string): string {
    let derived;
    try {
      const hosts = Object.values(this.config.streams).flatMap((s) =>
        [s.baseImage, s.builderImage, ...streamRepositories(s)].map((r) => parseImageRef(r).registry),
      );
      derived = withStoreAsHelpers(readAuthFileSync(file), [...new Set(hosts)]);
    } catch {
      return file; // unreadable or not JSON: the tools say so themselves, naming the file
    }
    if (!derived) return file;
    const dir = join(this.workDir, 'registry-auth');
    const out = join(dir, 'auth.json');
    const text = `${JSON.stringify(derived, null, 2)}\n`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!existsSync(out) || readFileSync(out, 'utf8') !== text) {
      const tmp = `${out}.${process.pid}.${Date.now()}`;
      writeFileSync(tmp, text, { mode: 0o600 });
      renameSync(tmp, out);
    }
    return out;
  }

  /** True when the registry of `ref` is explicitly allowed over plain HTTP. */
  isInsecure(ref: string): boolean {
    return this.config.registries.insecure.includes(parseImageRef(ref).registry);
  }

  /** `--tls-verify=false` for registries allowed over plain HTTP; nothing otherwise. */
  tlsArgs(ref: string, flag = '--tls-verify=false'): string[] {
    return this.isInsecure(ref) ? [flag] : [];
  }

  /** Signing settings of a stream on this host; a clear error when the stream is unknown here. */
  signing(stream: string) {
    const s = this.config.streams[stream];
    if (!s)
      throw new PermanentError(
        FailureType.InvalidInput,
        `Stream "${stream}" is not in this worker's config file; add it there (the signing keys are read on the worker host).`,
      );
    return s.signing;
  }

  /**
   * The private key of a stream as cosign's `--key` takes it, with what its child needs: a file path
   * as is, or `env://NAME` with that variable passed to cosign alone (the runner drops secret-looking
   * variables from children) and its text listed for redaction. The key's text never leaves the worker.
   */
  signingKey(stream: string): { key: string; env: Record<string, string>; secrets: string[] } {
    const { keyFile } = this.signing(stream);
    if (!keyFile.startsWith(ENV_KEY_PREFIX)) return { key: keyFile, env: {}, secrets: [] };
    const name = keyFile.slice(ENV_KEY_PREFIX.length);
    const text = process.env[name];
    if (!text)
      throw new PermanentError(
        FailureType.AuthDenied,
        `The cosign private key variable ${name} (signing.keyFile ${keyFile} of stream "${stream}") is ${text === undefined ? 'not set' : 'empty'} in this worker's environment; set it to the key's text (cosign.key) and restart the worker.`,
      );
    return { key: keyFile, env: { [name]: text }, secrets: [text] };
  }

  /** Reads the signing key password of a stream (from its file or variable); never logged. */
  async signingPassword(stream: string): Promise<string> {
    const s = this.signing(stream);
    if (s.passwordFile) return (await readFile(s.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    if (s.passwordEnv) {
      const v = process.env[s.passwordEnv];
      if (v === undefined)
        throw new PermanentError(
          FailureType.AuthDenied,
          `The cosign key password variable ${s.passwordEnv} is not set in this worker's environment; set it (or signing.passwordFile) and restart the worker.`,
        );
      return v;
    }
    return '';
  }
}
