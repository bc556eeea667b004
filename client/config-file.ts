/**
 * Loading the configuration file: read YAML, validate with the one schema, apply environment
 * overrides for the Temporal connection. Secrets are never read here: only their references.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { resolve, dirname, isAbsolute } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { Config } from '../core/config.ts';

/** A configuration file that could not be used; `problems` lists every issue with its field path. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file} is not a valid kinoite-zfs config:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Default config path: $KINOITE_ZFS_CONFIG, else ./kinoite-zfs.yaml. */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.KINOITE_ZFS_CONFIG ?? 'kinoite-zfs.yaml';
}

/** Expands `~/` and makes a path absolute relative to the config file's folder. */
export function resolvePath(path: string, baseDir: string): string {
  if (path === '~' || path.startsWith('~/')) return resolve(homedir(), path.slice(2));
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

/** Validates parsed YAML; returns the config or throws ConfigError naming every bad field. */
export function parseConfig(raw: unknown, file: string): Config {
  const result = Config.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(file, formatIssues(result.error));
  }
  return result.data;
}

/** One line per issue: `field.path: message`. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
    let message = issue.message;
    if (issue.code === 'unrecognized_keys')
      message = `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}: remove them or check the spelling (see docs/configuration.md)`;
    if (issue.code === 'invalid_type' && /received undefined/.test(issue.message))
      message = `required field is missing (${issue.expected})`;
    return `${path}: ${message}`;
  });
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
          keyFile: p(s.signing.keyFile)!,
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
