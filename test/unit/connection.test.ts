/**
 * The config's Temporal connection fields reach the gRPC connection, without Temporal Cloud: a
 * loopback TLS server (HTTP/2, a private CA, client certificates requested) records what each
 * connection attempt brings. mTLS files, the CA, the server name, an API key from `apiKeyEnv` or
 * TEMPORAL_API_KEY, and the TEMPORAL_TLS_* overrides, for the CLI's Connection (grpc-js) and the
 * worker's NativeConnection (Rust core) alike. The server answers every call with UNIMPLEMENTED.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadConfig } from '../../client/config-file.ts';
import { connectionOptions } from '../../client/connection.ts';
import { minimalConfig } from '../support/config-fixture.ts';

/** What one request to the fake frontend carried. */
interface Seen {
  path: string;
  authorization?: string;
  clientCertCN?: string;
  servername?: string;
}

let dir: string;
let server: Http2SecureServer;
let address: string;
const seen: Seen[] = [];
const sessions = new Set<ServerHttp2Session>();

async function openssl(args: string[]) {
  await execa('openssl', args, { cwd: dir });
}

/** A new P-256 key in `name`.key and, for `subject`, a self-signed certificate (`x509`) or a request. */
function newKey(name: string, subject: string, x509: boolean) {
  const out = x509 ? ['-x509', '-days', '2', '-out', `${name}.pem`] : ['-out', `${name}.csr`];
  return openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-subj',
    subject,
    ...out,
  ]);
}

/** A CA, a server certificate for `temporal.test` only (not 127.0.0.1), and a client certificate. */
async function makeCerts() {
  await newKey('ca', '/CN=kz-test-ca', true);
  for (const [name, cn, ext] of [
    ['server', 'temporal.test', 'subjectAltName=DNS:temporal.test\nextendedKeyUsage=serverAuth'],
    ['client', 'kz-client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    await newKey(name, `/CN=${cn}`, false);
    await writeFile(join(dir, `${name}.ext`), `${ext}\n`);
    await openssl([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
    ]);
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kz-conn-'));
  await makeCerts();
  const read = (f: string) => readFile(join(dir, f));
  server = createSecureServer({
    key: await read('server.key'),
    cert: await read('server.pem'),
    ca: await read('ca.pem'),
    requestCert: true,
    rejectUnauthorized: false,
    allowHTTP1: false,
  });
  server.on('stream', (stream, headers) => {
    const socket = stream.session?.socket as TLSSocket | undefined;
    const cert = socket?.getPeerCertificate();
    seen.push({
      path: String(headers[':path']),
      authorization: headers.authorization as string | undefined,
      clientCertCN: cert && socket?.authorized ? (cert.subject?.CN as string | undefined) : undefined,
      servername: (socket as (TLSSocket & { servername?: string }) | undefined)?.servername || undefined,
    });
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'fake frontend' },
      { endStream: true },
    );
  });
  server.on('sessionError', () => undefined);
  server.on('session', (session) => sessions.add(session));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  address = `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
});

after(async () => {
  for (const session of sessions) session.destroy();
  await new Promise((r) => server?.close(r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Writes a config whose `temporal` section is `temporal`, loads it with `env`, and returns its connection options. */
async function optionsFor(temporal: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
  const file = join(dir, `config-${seen.length}-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, stringify({ ...minimalConfig(), temporal: { address, ...temporal } }));
  const config = await loadConfig(file, env);
  return connectionOptions(config.temporal, env);
}

/** Connects with the client's Connection, expecting the fake frontend's refusal; returns what it saw. */
async function viaClient(options: Awaited<ReturnType<typeof optionsFor>>): Promise<Seen | undefined> {
  const before = seen.length;
  // The SDK tolerates UNIMPLEMENTED from GetSystemInfo (older servers): connecting may succeed.
  const c = await Connection.connect({ ...options, connectTimeout: '5s' }).catch(() => undefined);
  await c?.close();
  return seen.slice(before)[0];
}

/** The same through the worker's NativeConnection. */
async function viaWorker(options: Awaited<ReturnType<typeof optionsFor>>): Promise<Seen | undefined> {
  const before = seen.length;
  const c = await NativeConnection.connect(options).catch(() => undefined);
  await c?.close();
  return seen.slice(before)[0];
}

const tls = () => ({
  certFile: join(dir, 'client.pem'),
  keyFile: join(dir, 'client.key'),
  caFile: join(dir, 'ca.pem'),
  serverName: 'temporal.test',
});

test('mTLS from the config: client certificate, private CA and server name reach the connection', async () => {
  const options = await optionsFor({ tls: tls() });
  for (const s of [await viaClient(options), await viaWorker(options)]) {
    assert.ok(s, 'the request reached the server: the handshake verified temporal.test against the CA');
    assert.equal(s.clientCertCN, 'kz-client', 'the client certificate was presented and verified');
    assert.equal(s.servername, 'temporal.test');
    assert.equal(s.authorization, undefined, 'no API key was sent');
    assert.match(s.path, /^\/temporal\.api\.workflowservice\.v1\.WorkflowService\//);
  }
});

test('without the server name the handshake fails: the setting is what made it pass', async () => {
  const { serverName: _, ...noName } = tls();
  const options = await optionsFor({ tls: noName });
  assert.equal(await viaClient(options), undefined, 'nothing reached the server');
});

test('an API key from the variable named by apiKeyEnv is sent as a bearer token over TLS', async () => {
  const { caFile, serverName } = tls();
  const options = await optionsFor(
    { apiKeyEnv: 'KZ_TEST_CLOUD_KEY', tls: { caFile, serverName } },
    {
      KZ_TEST_CLOUD_KEY: 'key-from-apiKeyEnv',
    },
  );
  for (const s of [await viaClient(options), await viaWorker(options)]) {
    assert.equal(s?.authorization, 'Bearer key-from-apiKeyEnv');
    assert.equal(s?.clientCertCN, undefined, 'no client certificate');
  }
});

test('TEMPORAL_API_KEY and the TEMPORAL_TLS_* variables override the config file', async () => {
  const { certFile, keyFile, caFile } = tls();
  const options = await optionsFor(
    { apiKeyEnv: 'KZ_TEST_CLOUD_KEY', tls: { serverName: 'temporal.test' } },
    {
      KZ_TEST_CLOUD_KEY: 'not this one',
      TEMPORAL_API_KEY: 'key-from-TEMPORAL_API_KEY',
      TEMPORAL_TLS_CERT: certFile,
      TEMPORAL_TLS_KEY: keyFile,
      TEMPORAL_TLS_CA: caFile,
    },
  );
  const s = await viaClient(options);
  assert.equal(s?.authorization, 'Bearer key-from-TEMPORAL_API_KEY');
  assert.equal(s?.clientCertCN, 'kz-client');
});

test('an API key alone turns TLS on (Temporal Cloud with the system CAs)', async () => {
  const options = await optionsFor({ apiKeyEnv: 'KZ_TEST_CLOUD_KEY' }, { KZ_TEST_CLOUD_KEY: 'k' });
  assert.equal(options.tls, true);
  // The fake frontend's private CA is not among the system's: the handshake fails before any request.
  assert.equal(await viaClient(options), undefined);
});
