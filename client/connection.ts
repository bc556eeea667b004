/**
 * Connection options for Temporal from the config (address, namespace, mTLS files, API key
 * variable), shared by the CLI's client and the worker. Secrets are read here, on this host.
 */
import { readFileSync } from 'node:fs';
import type { TemporalSettings } from '../core/config.ts';

/** gRPC connection options common to Client and NativeConnection. */
export function connectionOptions(t: TemporalSettings, env: NodeJS.ProcessEnv = process.env) {
  const apiKey = env.TEMPORAL_API_KEY ?? (t.apiKeyEnv ? env[t.apiKeyEnv] : undefined);
  const tls = t.tls
    ? {
        serverNameOverride: t.tls.serverName,
        serverRootCACertificate: t.tls.caFile ? readFileSync(t.tls.caFile) : undefined,
        clientCertPair:
          t.tls.certFile && t.tls.keyFile
            ? { crt: readFileSync(t.tls.certFile), key: readFileSync(t.tls.keyFile) }
            : undefined,
      }
    : apiKey
      ? true
      : undefined;
  return { address: t.address, tls, ...(apiKey ? { apiKey } : {}) };
}
