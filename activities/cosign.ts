/**
 * cosign: sign, verify and attest one digest. The key password reaches cosign only through the
 * child's COSIGN_PASSWORD variable, an `env://NAME` private key only through that variable; registry credentials through DOCKER_CONFIG (a folder whose
 * config.json is the host's auth file).
 */
import { mkdtemp, symlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool } from './run-tool.ts';

/** Flags for registries allowed over plain HTTP. */
function insecureFlags(insecure: boolean): string[] {
  return insecure ? ['--allow-insecure-registry', '--allow-http-registry'] : [];
}

/** Flags for the transparency log: offline signing and verification when the stream turns it off. */
function tlogFlags(tlog: boolean, verb: 'sign' | 'verify'): string[] {
  if (tlog) return [];
  return verb === 'sign' ? ['--tlog-upload=false'] : ['--insecure-ignore-tlog'];
}

/**
 * Arguments of `cosign sign` for an exact digest. `key` is a file path or `env://NAME` (cosign reads
 * the key from that variable itself); with `tlog` the signature is uploaded to Rekor (cosign's default).
 */
export function signArgs(input: { ref: string; key: string; insecure: boolean; tlog: boolean }): string[] {
  return [
    'sign',
    '--yes',
    '--key',
    input.key,
    ...insecureFlags(input.insecure),
    ...tlogFlags(input.tlog, 'sign'),
    input.ref,
  ];
}

/** Arguments of `cosign verify` with a public key; without `tlog` no transparency log entry is required. */
export function verifyArgs(input: { ref: string; publicKeyFile: string; insecure: boolean; tlog: boolean }): string[] {
  return [
    'verify',
    '--key',
    input.publicKeyFile,
    ...insecureFlags(input.insecure),
    ...tlogFlags(input.tlog, 'verify'),
    '--output',
    'json',
    input.ref,
  ];
}

/** Arguments of `cosign attest` with a SLSA provenance v1 predicate file; `key` as for {@link signArgs}. */
export function attestArgs(input: {
  ref: string;
  key: string;
  predicateFile: string;
  insecure: boolean;
  tlog: boolean;
}): string[] {
  return [
    'attest',
    '--yes',
    '--key',
    input.key,
    '--type',
    'slsaprovenance1',
    '--predicate',
    input.predicateFile,
    ...insecureFlags(input.insecure),
    ...tlogFlags(input.tlog, 'sign'),
    input.ref,
  ];
}

/** Arguments of `cosign verify-attestation` for the SLSA provenance v1 type. */
export function verifyAttestationArgs(input: {
  ref: string;
  publicKeyFile: string;
  insecure: boolean;
  tlog: boolean;
}): string[] {
  return [
    'verify-attestation',
    '--key',
    input.publicKeyFile,
    '--type',
    'slsaprovenance1',
    ...insecureFlags(input.insecure),
    ...tlogFlags(input.tlog, 'verify'),
    input.ref,
  ];
}

/**
 * The `cosign verify` command a user of the image runs, exactly as the stream's settings require:
 * `--insecure-ignore-tlog` only when the stream signs offline, `--allow-insecure-registry` only for
 * registries allowed over plain HTTP. Words are quoted for a POSIX shell when they need it.
 */
export function verifyCommand(input: { ref: string; publicKeyFile: string; insecure: boolean; tlog: boolean }): string {
  const words = [
    'cosign',
    'verify',
    '--key',
    input.publicKeyFile,
    ...tlogFlags(input.tlog, 'verify'),
    ...(input.insecure ? ['--allow-insecure-registry'] : []),
    input.ref,
  ];
  return words.map(shellQuote).join(' ');
}

/** One word for a POSIX shell: as is when it is plain, else in single quotes. */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Runs cosign with an optional key password and the host's registry credentials. */
export async function cosign(input: {
  bin: string;
  args: string[];
  password?: string;
  authFile?: string;
  /** The private key's variable when the key is `env://NAME` (from Host.signingKey), and its text to redact. */
  key?: { env: Record<string, string>; secrets: string[] };
}) {
  let dockerConfig: string | undefined;
  try {
    if (input.authFile) {
      dockerConfig = await mkdtemp(join(tmpdir(), 'kz-cosign-'));
      await symlink(input.authFile, join(dockerConfig, 'config.json'));
    }
    return await runTool({
      tool: input.bin,
      args: input.args,
      env: {
        ...input.key?.env,
        ...(input.password !== undefined ? { COSIGN_PASSWORD: input.password } : {}),
        ...(dockerConfig ? { DOCKER_CONFIG: dockerConfig } : {}),
        COSIGN_YES: 'true',
        SIGSTORE_NO_CACHE: 'true',
      },
      secrets: [...(input.password ? [input.password] : []), ...(input.key?.secrets ?? [])],
    });
  } finally {
    if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
  }
}
