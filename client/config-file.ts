/**
 * Loading the configuration file: read YAML, validate with the one schema, apply environment
 * overrides for the Temporal connection. Secrets are never read here: only their references.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { resolve, dirname, isAbsolute } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ENV_KEY_PREFIX, type Config } from '../core/config.ts';
import { parseConfig, ConfigError } from '../core/config-parse.ts';

// The loader's API keeps the pure checks with it (tests, scripts and the CLI import them from here).
export { ConfigError, formatIssues, parseConfig } from '../core/config-parse.ts';

/** Default config path: $KINOITE_ZFS_CONFIG, else ./kinoite-zfs.yaml. */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.KINOITE_ZFS_CONFIG ?? 'kinoite-zfs.yaml';
}

/** Expands `~/` and makes a path absolute relative to the config file's folder. */
export function resolvePath(path: string, baseDir: string): string {
  if (path === '~' || path.startsWith('~/')) return resolve(homedir(), path.slice(2));
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

/** Reads, validates and normalises a config file; applies environment overrides (TEMPORAL_*). */
export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      `cannot read the file (${(err as NodeJS.ErrnoException).code ?? err}): pass --config FILE or set KINOITE_ZFS_CONFIG`,
    ]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    const e = err as YAMLParseError;
    throw new ConfigError(file, [
      `YAML syntax error${e.linePos ? ` at line ${e.linePos[0].line}` : ''}: ${e.message.split('\n')[0]}`,
    ]);
  }
  const config = parseConfig(raw ?? {}, file);
  return normalise(applyEnv(config, env), dirname(resolve(file)));
}

/** Environment overrides for the Temporal connection, so one file serves a dev server, a cluster and Temporal Cloud. */
export function applyEnv(config: Config, env: NodeJS.ProcessEnv): Config {
  const t = { ...config.temporal };
  if (env.TEMPORAL_ADDRESS) t.address = env.TEMPORAL_ADDRESS;
  if (env.TEMPORAL_NAMESPACE) t.namespace = env.TEMPORAL_NAMESPACE;
  if (env.TEMPORAL_TLS_CERT || env.TEMPORAL_TLS_KEY || env.TEMPORAL_TLS_CA) {
    t.tls = {
      ...t.tls,
      ...(env.TEMPORAL_TLS_CERT ? { certFile: env.TEMPORAL_TLS_CERT } : {}),
      ...(env.TEMPORAL_TLS_KEY ? { keyFile: env.TEMPORAL_TLS_KEY } : {}),
      ...(env.TEMPORAL_TLS_CA ? { caFile: env.TEMPORAL_TLS_CA } : {}),
    };
  }
  if (env.TEMPORAL_WEB_URL) t.webUrl = env.TEMPORAL_WEB_URL;
  return { ...config, temporal: t };
}

function normalise(config: Config, baseDir: string): Config {
  const p = (v: string | undefined) => (v === undefined ? undefined : resolvePath(v, baseDir));
  const streams = Object.fromEntries(
    Object.entries(config.streams).map(([name, s]) => [
      name,
      {
        ...s,
        signing: {
          ...s.signing,
          keyFile: s.signing.keyFile.startsWith(ENV_KEY_PREFIX) ? s.signing.keyFile : p(s.signing.keyFile)!,
          publicKeyFile: p(s.signing.publicKeyFile)!,
          passwordFile: p(s.signing.passwordFile),
        },
      },
    ]),
  );
  return {
    ...config,
    registries: { ...config.registries, authFile: p(config.registries.authFile) },
    worker: {
      ...config.worker,
      workDir: p(config.worker.workDir)!,
      containersConf: p(config.worker.containersConf),
      buildCacheDir: p(config.worker.buildCacheDir)!,
      ccacheDir: p(config.worker.ccacheDir)!,
    },
    temporal: config.temporal.tls
      ? {
          ...config.temporal,
          tls: {
            ...config.temporal.tls,
            certFile: p(config.temporal.tls.certFile),
            keyFile: p(config.temporal.tls.keyFile),
            caFile: p(config.temporal.tls.caFile),
          },
        }
      : config.temporal,
    streams,
  };
}
