/**
 * Protocol paths of RegistryClient that Debian's docker-registry cannot be made to take on demand:
 * Bearer token auth (with token caching) and a cross-repository mount answered with 202.
 * A small in-process HTTP server plays the registry and its token service.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../activities/registry-http.ts';
import { FailureType, PermanentError } from '../../core/errors.ts';

const BLOB = randomBytes(300_000);
const BLOB_DIGEST = `sha256:${createHash('sha256').update(BLOB).digest('hex')}`;
const CREDS = Buffer.from('robot:s3cret').toString('base64');

let server: Server;
let host: string;
let dir: string;
let authFile: string;
const log: string[] = [];
const tokenRequests: { scopes: string[]; basic: boolean }[] = [];
const uploads = new Map<string, Buffer[]>();
const stored = new Map<string, Buffer>();
let cancelled: string[] = [];

function tokenScopes(req: IncomingMessage): string[] {
  const m = /^Bearer T\|(.*)$/.exec(req.headers.authorization ?? '');
  return m ? m[1]!.split(' ') : [];
}

function challenge(res: ServerResponse, scope: string): void {
  res.writeHead(401, {
    'WWW-Authenticate': `Bearer realm="http://${host}/token",service="fake-registry",scope="${scope}"`,
    'Content-Type': 'application/json',
  });
  res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url!, `http://${host}`);
  log.push(`${req.method} ${url.pathname}${url.search}`);
  const body: Buffer[] = [];
  for await (const c of req) body.push(c as Buffer);

  if (url.pathname === '/token') {
    const basic = req.headers.authorization === `Basic ${CREDS}`;
    tokenRequests.push({ scopes: url.searchParams.getAll('scope'), basic });
    if (!basic) {
      res.writeHead(401).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token: `T|${url.searchParams.getAll('scope').join(' ')}`, expires_in: 300 }));
    return;
  }
  const m = /^\/v2\/(src|dst)\/blobs\/(.*)$/.exec(url.pathname);
  if (!m) {
    res.writeHead(404).end();
    return;
  }
  const [, repo, rest] = m;
  const scopes = tokenScopes(req);
  const needPush = req.method !== 'GET' && req.method !== 'HEAD';
  const need = `repository:${repo}:${needPush ? 'pull,push' : 'pull'}`;
  const mountFrom = url.searchParams.get('from');
  const required = mountFrom ? [need, `repository:${mountFrom}:pull`] : [need];
  if (!required.every((s) => scopes.includes(s))) {
    challenge(res, required.join(' '));
    return;
  }
  if (repo === 'src' && (req.method === 'GET' || req.method === 'HEAD') && rest === BLOB_DIGEST) {
    res.writeHead(200, { 'Content-Length': String(BLOB.length), 'Docker-Content-Digest': BLOB_DIGEST });
    res.end(req.method === 'GET' ? BLOB : undefined);
    return;
  }
  if (repo === 'dst' && (req.method === 'GET' || req.method === 'HEAD')) {
    const blob = stored.get(rest!);
    res.writeHead(blob ? 200 : 404).end();
    return;
  }
  if (repo === 'dst' && req.method === 'POST' && rest === 'uploads/') {
    const id = `u${uploads.size + 1}`;
    uploads.set(id, []);
    // Refuse every mount, as a registry does when the source blob is not visible to it.
    res.writeHead(202, { Location: `/v2/dst/blobs/uploads/${id}?_state=x`, 'Docker-Upload-UUID': id }).end();
    return;
  }
  const up = /^uploads\/(u\d+)$/.exec(rest!);
  if (repo === 'dst' && up && uploads.has(up[1]!)) {
    const id = up[1]!;
    if (req.method === 'DELETE') {
      cancelled.push(id);
      uploads.delete(id);
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'PATCH') {
      uploads.get(id)!.push(Buffer.concat(body));
      res.writeHead(202, { Location: `/v2/dst/blobs/uploads/${id}?_state=y` }).end();
      return;
    }
    if (req.method === 'PUT') {
      const all = Buffer.concat([...uploads.get(id)!, Buffer.concat(body)]);
      const digest = `sha256:${createHash('sha256').update(all).digest('hex')}`;
      if (digest !== url.searchParams.get('digest')) {
        res.writeHead(400).end(JSON.stringify({ errors: [{ code: 'DIGEST_INVALID' }] }));
        return;
      }
      stored.set(digest, all);
      res.writeHead(201, { Location: `/v2/dst/blobs/${digest}` }).end();
      return;
    }
  }
  res.writeHead(404).end();
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kz-registry-unit-'));
  server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  host = `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  authFile = join(dir, 'auth.json');
  await writeFile(authFile, JSON.stringify({ auths: { [host]: { auth: CREDS } } }));
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

test('a Bearer challenge is answered with a token fetched with the auth file credentials, and the token is reused', async () => {
  tokenRequests.length = 0;
  const client = new RegistryClient({ insecureHosts: [host], authFile });
  assert.equal(await client.blobExists(`${host}/src`, BLOB_DIGEST), true);
  assert.equal(await client.blobExists(`${host}/src`, BLOB_DIGEST), true);
  assert.deepEqual(tokenRequests, [{ scopes: ['repository:src:pull'], basic: true }]);
  // 401 + token + retry for the first call, then one request with the cached token.
  assert.equal(client.stats.requests, 4);
});

test('a token service refusing the credentials gives AuthDenied without leaking them', async () => {
  const client = new RegistryClient({ insecureHosts: [host] });
  await assert.rejects(client.blobExists(`${host}/src`, BLOB_DIGEST), (err: unknown) => {
    assert.ok(err instanceof PermanentError);
    assert.equal(err.type, FailureType.AuthDenied);
    assert.doesNotMatch(err.message, new RegExp(CREDS));
    return true;
  });
});

test('mountBlob answered with 202 cancels that upload and streams the blob from the source instead', async () => {
  cancelled = [];
  tokenRequests.length = 0;
  const client = new RegistryClient({ insecureHosts: [host], authFile });
  const mounted = await client.mountBlob({ from: `${host}/src`, to: `${host}/dst`, digest: BLOB_DIGEST });
  assert.equal(mounted, false);
  assert.deepEqual(stored.get(BLOB_DIGEST), BLOB);
  assert.deepEqual(cancelled, ['u1']);
  assert.equal(client.stats.blobsCopied, 1);
  assert.equal(client.stats.blobBytesRead, BLOB.length);
  assert.equal(client.stats.blobBytesWritten, BLOB.length);
  // The mount asked for push on the target and pull on the source in one token.
  assert.deepEqual(tokenRequests[0]?.scopes, ['repository:dst:pull,push', 'repository:src:pull']);
  assert.equal(await client.blobExists(`${host}/dst`, BLOB_DIGEST), true);
});
