/**
 * Checking a parsed configuration against the one schema, and the one way to word a schema
 * issue (`field.path: message`). Pure: reading the file and the environment is the loader's
 * (client/config-file.ts); the world's spec files use the same wording (world/spec.ts).
 */
import type { z } from 'zod';
import { Config } from './config.ts';

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
