/**
 * A small token service for the world's registry, as ghcr.io does registry auth (the Docker token
 * authentication spec): `GET /token?service=…&scope=repository:NAME:pull,push` with Basic
 * credentials answers `{token, access_token, expires_in}`, a JWT signed RS256 with a key whose
 * self-signed certificate the registry trusts (`auth: token: rootcertbundle`, the `x5c` header).
 * Anonymous requests get pull on the public repositories only; wrong credentials get 401.
 *
 * Run as a world service: `node token-issuer.ts CONFIG.json` (see world/services.ts ensureTokenIssuer).
 * Test world only: the key and certificate come from the openssl CLI.
 */
import { createHash, createPrivateKey, randomBytes, sign, timingSafeEqual, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';

/** The issuer's settings (written by the world to `registry/token/issuer.json`). */
export interface TokenIssuerConfig {
  /** Listen address `127.0.0.1:<port>`. */
  host: string;
  /** `service` the registry names in its challenge (the JWT audience). */
  service: string;
  /** `iss` of the tokens; the registry's `auth.token.issuer`. */
  issuer: string;
  /** PEM private key (RSA) and its self-signed certificate. */
  keyFile: string;
  certFile: string;
  /** Users: name → sha256 hex of the password. */
  users: Record<string, string>;
  /** Repositories anyone may pull without credentials (ghcr.io public packages). */
  publicRepositories: string[];
  /** Token lifetime in seconds. @default 300 */
  expiresIn?: number;
}

/** The registry's `auth: token` settings for an issuer config and its URL. */
export function registryTokenAuth(config: TokenIssuerConfig) {
  return {
    realm: `http://${config.host}/token`,
    service: config.service,
    issuer: config.issuer,
    rootcertbundle: config.certFile,
  };
}

/** sha256 hex of a password, as {@link TokenIssuerConfig.users} holds it. */
export function passwordHash(password: string): string {
  return createHash('sha256').update(password).digest('hex');
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** Parses `repository:NAME:pull,push` scopes (several per parameter, space-separated). */
function parseScopes(values: string[]): Access[] {
  const out: Access[] = [];
  for (const s of values.flatMap((v) => v.split(' ')).filter(Boolean)) {
    const first = s.indexOf(':');
    const last = s.lastIndexOf(':');
    if (first < 0 || last === first) continue;
    out.push({ type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',') });
  }
  return out;
}

/** Who the Basic header names: a user, `undefined` (anonymous) or `false` (wrong credentials). */
function authenticate(req: IncomingMessage, users: Record<string, string>): string | undefined | false {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const m = /^Basic\s+(\S+)$/i.exec(header);
  if (!m) return false;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i < 0) return false;
  const user = text.slice(0, i);
  const want = users[user];
  if (!want) return false;
  const got = Buffer.from(passwordHash(text.slice(i + 1)), 'hex');
  return timingSafeEqual(got, Buffer.from(want, 'hex')) ? user : false;
}

/** An HTTP server answering `/token` (not listening yet). Each request is logged as one line. */
export function createTokenIssuer(config: TokenIssuerConfig, log: (line: string) => void = console.log): Server {
  const key = createPrivateKey(readFileSync(config.keyFile));
  const certDer = new X509Certificate(readFileSync(config.certFile)).raw;
  const expiresIn = config.expiresIn ?? 300;
  const publicRepos = new Set(config.publicRepositories);

  function token(subject: string, access: Access[]): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = {
      iss: config.issuer,
      sub: subject,
      aud: config.service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
  }

  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${config.host}`);
    const send = (status: number, body: object, note: string) => {
      log(`${req.method} ${url.pathname} status=${status} ${note}`);
      res.writeHead(status, {
        'Content-Type': 'application/json',
        ...(status === 401 ? { 'WWW-Authenticate': `Basic realm="${config.service}"` } : {}),
      });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token' || req.method !== 'GET') return send(404, { errors: [{ code: 'NOT_FOUND' }] }, '');
    const user = authenticate(req, config.users);
    const scopes = url.searchParams.getAll('scope');
    if (user === false)
      return send(
        401,
        { errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] },
        `user=? scope=${JSON.stringify(scopes.join(' '))}`,
      );
    if (url.searchParams.get('service') && url.searchParams.get('service') !== config.service)
      return send(400, { errors: [{ code: 'DENIED', message: 'unknown service' }] }, '');
    const granted = parseScopes(scopes)
      .filter((a) => a.type === 'repository')
      .map((a) => ({
        ...a,
        // Users get what they ask for; anonymous requests get pull on public repositories, nothing else.
        actions: user ? a.actions : publicRepos.has(a.name) ? a.actions.filter((x) => x === 'pull') : [],
      }))
      .filter((a) => a.actions.length > 0);
    const t = token(user ?? '', granted);
    send(
      200,
      { token: t, access_token: t, expires_in: expiresIn, issued_at: new Date().toISOString() },
      `user=${user ?? 'anonymous'} scope=${JSON.stringify(scopes.join(' '))} granted=${JSON.stringify(granted.map((a) => `${a.name}:${a.actions.join(',')}`).join(' '))}`,
    );
  });
}

/** `node token-issuer.ts CONFIG.json`: serve until killed. */
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: token-issuer CONFIG.json');
    process.exit(2);
  }
  const config = JSON.parse(readFileSync(file, 'utf8')) as TokenIssuerConfig;
  const [address, port] = [config.host.slice(0, config.host.lastIndexOf(':')), Number(config.host.split(':').pop())];
  const server = createTokenIssuer(config);
  server.listen(port, address, () => console.log(`token issuer listening on http://${config.host}/token`));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => server.close(() => process.exit(0)));
}
