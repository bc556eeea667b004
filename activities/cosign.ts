/**
 * cosign: sign, verify and attest one digest. The key password reaches cosign only through the
 * child's COSIGN_PASSWORD variable; registry credentials through DOCKER_CONFIG (a folder whose
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

/** Arguments of `cosign sign` for an exact digest, offline (no transparency log upload). */
export function signArgs(input: { ref: string; keyFile: string; insecure: boolean }): string[] {
  return ['sign', '--yes', '--key', input.keyFile, ...insecureFlags(input.insecure), '--tlog-upload=false', input.ref];
}

/** Arguments of `cosign verify` with a public key, offline. */
export function verifyArgs(input: { ref: string; publicKeyFile: string; insecure: boolean }): string[] {
  return [
    'verify',
    '--key',
    input.publicKeyFile,
    ...insecureFlags(input.insecure),
    '--insecure-ignore-tlog',
    '--output',
    'json',
    input.ref,
  ];
}

/** Arguments of `cosign attest` with a SLSA provenance v1 predicate file. */
export function attestArgs(input: {
  ref: string;
  keyFile: string;
  predicateFile: string;
  insecure: boolean;
}): string[] {
  return [
    'attest',
    '--yes',
    '--key',
    input.keyFile,
    '--type',
    'slsaprovenance1',
    '--predicate',
    input.predicateFile,
    ...insecureFlags(input.insecure),
    '--tlog-upload=false',
    input.ref,
  ];
}

/** Arguments of `cosign verify-attestation` for the SLSA provenance v1 type. */
export function verifyAttestationArgs(input: { ref: string; publicKeyFile: string; insecure: boolean }): string[] {
  return [
    'verify-attestation',
    '--key',
    input.publicKeyFile,
    '--type',
    'slsaprovenance1',
    ...insecureFlags(input.insecure),
    '--insecure-ignore-tlog',
    input.ref,
  ];
}

/** Runs cosign with an optional key password and the host's registry credentials. */
export async function cosign(input: { bin: string; args: string[]; password?: string; authFile?: string }) {
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
        ...(input.password !== undefined ? { COSIGN_PASSWORD: input.password } : {}),
        ...(dockerConfig ? { DOCKER_CONFIG: dockerConfig } : {}),
        COSIGN_YES: 'true',
        SIGSTORE_NO_CACHE: 'true',
      },
      secrets: input.password ? [input.password] : [],
    });
  } finally {
    if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
  }
}
