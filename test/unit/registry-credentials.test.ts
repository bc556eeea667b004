/**
 * Registry credentials as podman and docker read them: `auths`, `credHelpers` (per registry) and
 * `credsStore` (the default helper), with a real helper script on PATH; which auth file a host
 * uses; and the copy podman gets when the file names a `credsStore` (which podman ignores).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultAuthFiles,
  readCredential,
  resolveAuthFile,
  withStoreAsHelpers,
} from '../../activities/registry-credentials.ts';
import { Host } from '../../activities/host.ts';
import { parseConfig } from '../../core/config-parse.ts';
import { FailureType, PermanentError } from '../../core/errors.ts';
import { minimalConfig } from '../support/config-fixture.ts';

const basic = (user: string, pass: string) => Buffer.from(`${user}:${pass}`).toString('base64');

let dir: string;
let calls: string;
const savedPath = process.env.PATH;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kz-creds-'));
  const bin = join(dir, 'bin');
  calls = join(dir, 'calls');
  await mkdir(bin);
  // Answers for registry.example, "not found" for other hosts, garbage for garbage.example.
  await writeFile(
    join(bin, 'docker-credential-kzfake'),
    `#!/bin/sh
[ "$1" = get ] || exit 3
read -r host
echo "$host" >> '${calls}'
case "$host" in
  registry.example) printf '{"ServerURL":"%s","Username":"robot","Secret":"s3cret-from-helper"}' "$host" ;;
  garbage.example) echo 'password=s3cret-garbage' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`,
  );
  await chmod(join(bin, 'docker-credential-kzfake'), 0o755);
  process.env.PATH = `${bin}:${savedPath}`;
});

after(async () => {
  process.env.PATH = savedPath;
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: object): Promise<string> {
  const f = join(dir, name);
  await writeFile(f, JSON.stringify(content));
  return f;
}

test('auths entries: base64 auth or username and password; an exact host key beats a namespaced one', async () => {
  const f = await file('auths.json', {
    auths: {
      'quay.io/someone': { auth: basic('ns', 'wrong') },
      'quay.io': { auth: basic('me', 'pw') },
      'https://ghcr.io': { username: 'u', password: 'p' },
      'https://index.docker.io/v1/': { auth: basic('hub', 'pw') },
    },
  });
  assert.deepEqual(await readCredential(f, 'quay.io'), { basic: basic('me', 'pw'), file: f });
  assert.deepEqual(await readCredential(f, 'ghcr.io'), { basic: basic('u', 'p'), file: f });
  assert.deepEqual(await readCredential(f, 'docker.io'), { basic: basic('hub', 'pw'), file: f });
  assert.equal(await readCredential(f, 'other.example'), undefined);
});

test('credHelpers runs the named helper with the host on stdin; credsStore is the default for other hosts', async () => {
  await writeFile(calls, '');
  const f = await file('helpers.json', {
    auths: { 'inline.example': { auth: basic('in', 'line') } },
    credHelpers: { 'registry.example': 'kzfake' },
  });
  assert.deepEqual(await readCredential(f, 'registry.example'), {
    basic: basic('robot', 's3cret-from-helper'),
    file: f,
    helper: 'docker-credential-kzfake',
  });
  assert.deepEqual(await readCredential(f, 'inline.example'), { basic: basic('in', 'line'), file: f });
  assert.equal(await readCredential(f, 'nothing.example'), undefined, 'no entry and no store: anonymous');

  const store = await file('store.json', { auths: { 'registry.example': {} }, credsStore: 'kzfake' });
  assert.equal((await readCredential(store, 'registry.example'))?.helper, 'docker-credential-kzfake');
  assert.equal(await readCredential(store, 'unknown.example'), undefined, '"credentials not found" is anonymous');
  assert.deepEqual((await readFile(calls, 'utf8')).trim().split('\n'), [
    'registry.example',
    'registry.example',
    'unknown.example',
  ]);
});

test('a missing or misbehaving helper fails permanently, naming it and the file, never echoing its output', async () => {
  const missing = await file('missing.json', { credHelpers: { 'registry.example': 'kz-not-installed' } });
  await assert.rejects(readCredential(missing, 'registry.example'), (err: Error) => {
    assert.ok(err instanceof PermanentError && err.type === FailureType.ToolMissing);
    assert.match(
      err.message,
      /docker-credential-kz-not-installed \(credHelpers of .*missing\.json\) for registry\.example/,
    );
    return true;
  });
  const garbage = await file('garbage.json', { credsStore: 'kzfake' });
  await assert.rejects(readCredential(garbage, 'garbage.example'), (err: Error) => {
    assert.ok(err instanceof PermanentError && err.type === FailureType.AuthDenied);
    assert.match(err.message, /credsStore of .*garbage\.json/);
    assert.doesNotMatch(err.message, /s3cret/);
    return true;
  });
  const notJson = join(dir, 'not-json.json');
  await writeFile(notJson, '{"auths": {"x": {"auth": "c2VjcmV0"}');
  await assert.rejects(readCredential(notJson, 'x'), (err: Error) => {
    assert.match(err.message, /not-json\.json is not a JSON object/);
    assert.doesNotMatch(err.message, /c2VjcmV0/);
    return true;
  });
});

test('the auth file: configured, else $REGISTRY_AUTH_FILE, else the first of podman’s places that exists', async () => {
  const home = join(dir, 'home');
  const env = { HOME: home, XDG_RUNTIME_DIR: join(dir, 'run') };
  assert.deepEqual(defaultAuthFiles(env), [
    join(dir, 'run', 'containers', 'auth.json'),
    join(home, '.config', 'containers', 'auth.json'),
    join(home, '.docker', 'config.json'),
  ]);
  assert.equal(resolveAuthFile(undefined, env), undefined);
  await mkdir(join(home, '.docker'), { recursive: true });
  await writeFile(join(home, '.docker', 'config.json'), '{}');
  assert.equal(resolveAuthFile(undefined, env), join(home, '.docker', 'config.json'));
  await mkdir(join(dir, 'run', 'containers'), { recursive: true });
  await writeFile(join(dir, 'run', 'containers', 'auth.json'), '{}');
  assert.equal(resolveAuthFile(undefined, env), join(dir, 'run', 'containers', 'auth.json'));
  assert.equal(resolveAuthFile(undefined, { ...env, REGISTRY_AUTH_FILE: '/e.json' }), '/e.json');
  assert.equal(resolveAuthFile('/c.json', { ...env, REGISTRY_AUTH_FILE: '/e.json' }), '/c.json');
});

test('podman gets a copy naming the credsStore as the helper of every registry the config uses; a file without one as is', async () => {
  assert.equal(withStoreAsHelpers({ auths: {} }, ['a']), undefined);
  assert.deepEqual(
    withStoreAsHelpers({ auths: { inline: { auth: 'x' } }, credHelpers: { own: 'other' }, credsStore: 'kzfake' }, [
      'inline',
      'own',
      'plain',
    ]),
    { auths: { inline: { auth: 'x' } }, credHelpers: { own: 'other', plain: 'kzfake' }, credsStore: 'kzfake' },
  );

  const store = await file('host-store.json', { auths: {}, credsStore: 'kzfake' });
  const raw = minimalConfig('127.0.0.1:1');
  const host = new Host(
    parseConfig(
      { ...raw, registries: { ...raw.registries, authFile: store }, worker: { workDir: join(dir, 'work') } },
      'c',
    ),
  );
  const env = host.containersEnv();
  assert.notEqual(env.REGISTRY_AUTH_FILE, store);
  assert.deepEqual(JSON.parse(await readFile(env.REGISTRY_AUTH_FILE!, 'utf8')).credHelpers, {
    '127.0.0.1:5000': 'kzfake',
  });
  assert.equal((await stat(env.REGISTRY_AUTH_FILE!)).mode & 0o777, 0o600);
  assert.equal(host.authFile(), store, 'cosign and the HTTP client read the file itself');

  const plain = await file('host-plain.json', { auths: { '127.0.0.1:5000': { auth: basic('a', 'b') } } });
  const host2 = new Host(parseConfig({ ...raw, registries: { ...raw.registries, authFile: plain } }, 'c'));
  assert.equal(host2.containersEnv().REGISTRY_AUTH_FILE, plain);
});
