/**
 * Registry auth as ghcr.io does it, against the real registry: the world's `docker-registry` runs
 * with `auth: token` and trusts the world's token issuer (world/token-issuer.ts), so every request
 * needs a Bearer token; the base and builder repositories are public, the stream's are not.
 * Credentials come only from auth files, through a credential helper the test puts on PATH
 * (`credHelpers` for one registry, `credsStore` as the default); podman, buildah, cosign and the
 * worker's own client all get them that way, and none of them reaches a workflow history.
 *
 * Lane: side
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import type { Client } from '@temporalio/client';
import {
  bringUpWorld,
  worldSpec,
  startWorker,
  client,
  closeAll,
  cosignVerifies,
  digestOf,
  historyText,
  registryLogMark,
  registryRequests,
  repoRoot,
  tagsOf,
  writes,
  type TestWorld,
} from '../support/harness.ts';
import { loadConfig } from '../../client/config-file.ts';
import { Host } from '../../activities/host.ts';
import { RegistryClient } from '../../activities/registry-http.ts';
import { promotionActivities } from '../../activities/promotion.ts';
import { digestRef } from '../../core/refs.ts';
import { FailureType, PermanentError } from '../../core/errors.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const HELPER = 'kztest';

let world: TestWorld;
let c: Client;
let worker: { stop: () => Promise<void> } | undefined;
/** The world's own auth file (plain `auths`): what the test reads the registry with. */
let directAuth: string;
let host: string;
let password: string;
let helperLog: string;
const savedPath = process.env.PATH;

/** A config file for the world that takes its credentials from `authFile`. */
async function configWith(
  name: string,
  authFile: string,
): Promise<{ configFile: string; config: TestWorld['config'] }> {
  const raw = parse(await readFile(world.info.configFile, 'utf8')) as { registries: Record<string, unknown> };
  raw.registries.authFile = authFile;
  const configFile = join(world.dir, `${name}.config.yaml`);
  await writeFile(configFile, stringify(raw));
  return { configFile, config: await loadConfig(configFile) };
}

/** Writes an auth file in the world folder; returns its path. */
async function authFile(name: string, content: object): Promise<string> {
  const file = join(world.dir, 'secrets', `${name}.json`);
  await writeFile(file, JSON.stringify(content), { mode: 0o600 });
  return file;
}

/** Which programs ran the helper (the helper's parent), for which host. */
async function helperCalls(): Promise<{ caller: string; host: string }[]> {
  const text = await readFile(helperLog, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [caller, h] = l.split(' ');
      return { caller: caller!, host: h! };
    });
}

before(async () => {
  world = await bringUpWorld(
    'tokenauth',
    { ...worldSpec({ versions: [[K1]] }), registry: { auth: 'token' } },
    {
      fresh: true,
    },
  );
  const auth = world.info.registry.auth;
  assert.ok(auth, 'the world reports its registry user');
  directAuth = auth.authFile;
  host = world.info.registry.host;
  password = await readFile(auth.passwordFile, 'utf8');
  // A credential helper as docker-credential-helpers behave: `get`, the host on stdin, JSON out.
  const bin = join(world.dir, 'helper-bin');
  helperLog = join(world.dir, 'helper.log');
  await mkdir(bin, { recursive: true });
  await writeFile(
    join(bin, `docker-credential-${HELPER}`),
    `#!/bin/sh
[ "$1" = get ] || { echo "unsupported action $1" >&2; exit 1; }
read -r server
h=\${server#*://}; h=\${h%%/*}
echo "$(cat /proc/$PPID/comm) $h" >> '${helperLog}'
if [ "$h" = '${host}' ]; then
  printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n' "$server" '${auth.user}' "$(cat '${auth.passwordFile}')"
else
  echo "credentials not found in native keychain"; exit 1
fi
`,
  );
  await chmod(join(bin, `docker-credential-${HELPER}`), 0o755);
  process.env.PATH = `${bin}:${savedPath}`;
  c = await client(world);
});

after(async () => {
  process.env.PATH = savedPath;
  await closeAll({ worker, client: c, world });
});

test('the registry demands a token: the base is public, a stream repository refuses anonymous pulls', async () => {
  const res = await fetch(`http://${host}/v2/`);
  await res.arrayBuffer();
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token"/);

  const anonymous = new RegistryClient({ insecureHosts: [host] });
  const base = world.info.base.versions[0]!.digest;
  assert.equal(await anonymous.resolveDigest(world.info.base.reference), base, 'public: pulled anonymously');
  // Put the base into the candidate repository with credentials, then try to read it anonymously.
  const withCreds = new RegistryClient({ insecureHosts: [host], authFile: directAuth });
  const candidateRef = digestRef(world.info.stream.candidate, base);
  await promotionActivities({ registry: withCreds, host: new Host(world.config) }).copyImageByDigest({
    from: digestRef(world.info.base.reference.replace(/:[^:/]+$/, ''), base),
    to: candidateRef,
  });
  await assert.rejects(anonymous.getManifest(candidateRef), (err: Error) => {
    assert.ok(err instanceof PermanentError && err.type === FailureType.AuthDenied, err.message);
    assert.match(err.message, new RegExp(`registry ${host.replace(/\./g, '\\.')} denied access`));
    assert.match(err.message, /No registry auth file is configured/);
    return true;
  });
});

test('pull, push and a cross-repository mount through a credHelpers helper: 401, token, retry; layers mounted, not copied', async () => {
  const helperAuth = await authFile('cred-helpers', { auths: {}, credHelpers: { [host]: HELPER } });
  const registry = new RegistryClient({ insecureHosts: [host], authFile: helperAuth });
  const a = promotionActivities({ registry, host: new Host(world.config) });
  const base = world.info.base.versions[0]!.digest;
  const { candidate, stable } = world.info.stream;
  await a.copyImageByDigest({
    from: digestRef(world.info.base.reference.replace(/:[^:/]+$/, ''), base),
    to: digestRef(candidate, base),
  });
  const mark = await registryLogMark(world);
  const tokenMark = (await readFile(world.info.registry.auth!.tokenLogFile, 'utf8')).length;
  const before = { ...registry.stats };
  // Candidate to stable: a private-to-private mount needs pull on the source and push on the target.
  assert.deepEqual(await a.copyImageByDigest({ from: digestRef(candidate, base), to: `${stable}:mounted` }), {
    digest: base,
  });
  assert.equal(registry.stats.blobsCopied, before.blobsCopied, 'no blob went through this process');
  assert.ok(registry.stats.blobsMounted > before.blobsMounted, 'blobs were mounted');

  const requests = await registryRequests(world, mark);
  assert.equal(
    await digestOf(`${stable}:mounted`, directAuth),
    base,
    'skopeo reads the pushed tag (and its config blob)',
  );
  const mounts = requests.filter((r) => r.method === 'POST' && /mount=sha256(:|%3A)/.test(r.uri));
  assert.ok(mounts.length > 0, 'the registry saw mount requests');
  for (const m of mounts) {
    assert.match(m.uri, new RegExp(`from=${candidate.slice(host.length + 1).replace(/\//g, '%2F')}`));
    assert.equal(m.status, 201, `mounted, not an upload: ${m.uri}`);
  }
  assert.ok(!requests.some((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.uri)), 'no blob was read');
  const tokens = (await readFile(world.info.registry.auth!.tokenLogFile, 'utf8')).slice(tokenMark);
  const stableRepo = stable.slice(host.length + 1);
  const candidateRepo = candidate.slice(host.length + 1);
  // (The registry's challenge lists the two scopes in either order.)
  const user = world.info.registry.auth!.user;
  assert.ok(
    tokens.split('\n').some((line) => {
      const granted = /^GET \/token status=200 user=(\S+) .*granted="([^"]*)"$/.exec(line);
      return (
        granted?.[1] === user &&
        granted[2]!.split(' ').sort().join(' ') ===
          [`${candidateRepo}:pull`, `${stableRepo}:pull,push`].sort().join(' ')
      );
    }),
    `one token carries push on the target and pull on the source:\n${tokens}`,
  );

  // A new client's first request goes out anonymous, is answered 401, and is sent again with a token.
  // (A refused request has no "response completed" line: the access log has every answer.)
  const fresh = new RegistryClient({ insecureHosts: [host], authFile: helperAuth });
  const mark2 = await registryLogMark(world);
  assert.equal(await fresh.resolveDigest(`${stable}:mounted`), base);
  const access = (await readFile(world.info.registry.logFile, 'utf8')).slice(mark2);
  const answers = [...access.matchAll(/"HEAD \/v2\/\S+\/manifests\/mounted HTTP\/1\.1" (\d{3})/g)].map((m) => m[1]);
  assert.deepEqual(answers, ['401', '200']);
  assert.ok(
    (await helperCalls()).some((call) => call.host === host && call.caller === 'node'),
    'the worker ran the helper',
  );
});

test('a full run through the credential store promotes and signs; podman, cosign and the worker each ran the helper; no history holds a credential', async () => {
  const storeAuth = await authFile('creds-store', { auths: {}, credsStore: HELPER });
  const { configFile, config } = await configWith('creds-store', storeAuth);
  await writeFile(helperLog, '');
  worker = await startWorker({ config, configFile });
  const r = await execa(
    process.execPath,
    [join(repoRoot, 'bin', 'kinoite-zfs.js'), 'run', '--config', configFile, '--wait'],
    {
      cwd: repoRoot,
      reject: false,
      all: true,
      stdin: 'ignore',
      timeout: 400_000,
    },
  );
  assert.equal(r.exitCode, 0, r.all);
  assert.match(r.all, /PROMOTED/);
  const promoted = new RegExp(`${world.info.stream.stable.replace(/\./g, '\\.')}@(sha256:[0-9a-f]{64})`).exec(
    r.all,
  )?.[1];
  assert.ok(promoted, `the summary names the promoted digest:\n${r.all}`);
  const stableRef = digestRef(world.info.stream.stable, promoted!);
  assert.ok(await cosignVerifies(stableRef, world.info.signing.publicKeyFile, false, directAuth), 'signed');
  assert.ok(await cosignVerifies(stableRef, world.info.signing.publicKeyFile, true, directAuth), 'attested');
  assert.equal(await cosignVerifies(stableRef, world.info.signing.publicKeyFile), false, 'anonymous cosign is refused');

  const callers = new Set((await helperCalls()).filter((call) => call.host === host).map((call) => call.caller));
  for (const tool of ['podman', 'cosign', 'node'])
    assert.ok(callers.has(tool), `${tool} ran the credential helper (callers: ${[...callers].join(', ')})`);

  const runId = /run:\s+(\S+)/.exec(r.all)?.[1];
  assert.ok(runId, 'the summary names the run');
  const basic = Buffer.from(`${world.info.registry.auth!.user}:${password}`).toString('base64');
  for (const id of [runId!, `stream/${world.stream}`]) {
    const text = await historyText(world, id);
    if (id === runId) assert.ok(text.includes(promoted!), 'the scan reads the decoded payloads');
    assert.ok(!text.includes(password), `the history of ${id} holds the registry password`);
    assert.ok(!text.includes(basic), `the history of ${id} holds the base64 credentials`);
    // A token's header is base64url of {"typ":"JWT",...}.
    assert.ok(!text.includes('eyJ0eXAiOiJKV1Qi'), `the history of ${id} holds a registry token`);
  }
  assert.ok(!r.all.includes(password), 'the CLI printed the password');
});

test('a wrong password fails the run at once, naming the registry and the auth file, and writes nothing', async () => {
  await worker?.stop();
  const wrong = await authFile('wrong-password', {
    auths: { [host]: { auth: Buffer.from(`${world.info.registry.auth!.user}:not-the-password`).toString('base64') } },
  });
  const { configFile, config } = await configWith('wrong-password', wrong);
  worker = await startWorker({ config, configFile });
  const { candidate, stable, akmodsCandidate, akmodsStable } = world.info.stream;
  const repos = [candidate, stable, akmodsCandidate, akmodsStable];
  const tagsBefore = await Promise.all(repos.map((repo) => tagsOf(repo, directAuth)));
  const mark = await registryLogMark(world);
  const r = await execa(
    process.execPath,
    [join(repoRoot, 'bin', 'kinoite-zfs.js'), 'run', '--config', configFile, '--wait'],
    { cwd: repoRoot, reject: false, all: true, stdin: 'ignore', timeout: 600_000 },
  );
  assert.equal(r.exitCode, 1, r.all);
  assert.ok(r.all.includes(host), `the failure names the registry:\n${r.all}`);
  assert.ok(r.all.includes(wrong), `the failure names the auth file:\n${r.all}`);
  assert.ok(!r.all.includes('not-the-password'), 'the password is not printed');
  assert.deepEqual(writes(await registryRequests(world, mark)), [], 'nothing was written to the registry');
  assert.deepEqual(await Promise.all(repos.map((repo) => tagsOf(repo, directAuth))), tagsBefore, 'no tag moved');
  // Permanent: the failing activity ran once and was not retried.
  const runId = /run:\s+(\S+)/.exec(r.all)?.[1];
  assert.ok(runId, r.all);
  const text = await historyText(world, runId!);
  assert.match(text, /RETRY_STATE_NON_RETRYABLE_FAILURE/);
});
