/**
 * The config file: one strict schema, every problem reported with its field path, exit code 2,
 * no process spawned; the generated JSON Schema and docs stay in step with the schema.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parseConfig, applyEnv, ConfigError, loadConfig } from '../../client/config-file.ts';
import { configJsonSchema, configMarkdown } from '../../client/config-docs.ts';
import { cliWithoutSpawning } from '../support/cli-no-spawn.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));

function validConfig(): Record<string, any> {
  return {
    registries: { insecure: ['127.0.0.1:5000'] },
    streams: {
      'kinoite-zfs': {
        baseImage: '127.0.0.1:5000/ublue-os/kinoite-main:latest',
        builderImage: '127.0.0.1:5000/ublue-os/devcontainer:latest',
        zfs: { line: '2.4' },
        images: {
          candidate: '127.0.0.1:5000/o/kinoite-zfs-candidate',
          stable: '127.0.0.1:5000/o/kinoite-zfs',
          akmodsCandidate: '127.0.0.1:5000/o/akmods-candidate',
          akmodsStable: '127.0.0.1:5000/o/akmods',
        },
        recipe: { git: '/srv/recipe.git' },
        signing: {
          keyFile: '/etc/kinoite-zfs/cosign.key',
          publicKeyFile: '/etc/kinoite-zfs/cosign.pub',
          passwordEnv: 'COSIGN_PASSWORD',
        },
      },
    },
  };
}

/** Runs `kinoite-zfs config check FILE` in a child Node process whose child_process module refuses to spawn. */
async function configCheck(config: unknown) {
  const file = join(await mkdtemp(join(tmpdir(), 'kz-config-')), 'config.yaml');
  await writeFile(file, typeof config === 'string' ? config : stringify(config));
  return cliWithoutSpawning(['config', 'check', file]);
}

test('config check accepts a valid file and fills safe defaults', async () => {
  const r = await configCheck(validConfig());
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /valid\. 1 stream\(s\): kinoite-zfs/);
  const c = parseConfig(validConfig(), 'x.yaml');
  assert.deepEqual(c.streams['kinoite-zfs']!.images.stableTags, ['latest', '{fedora}']);
  assert.equal(c.streams['kinoite-zfs']!.promotion.policy, 'auto');
  assert.equal(c.temporal.taskQueues.build, 'kinoite-zfs-build');
});

test('config check rejects an unknown field with its path, exit code 2, and spawns no process', async () => {
  const c = validConfig();
  c.streams['kinoite-zfs'].zfs.lien = '2.4';
  const r = await configCheck(c);
  assert.equal(r.code, 2);
  assert.match(r.out, /streams\.kinoite-zfs\.zfs: unknown field\(s\) "lien"/);
  assert.equal(r.spawned, '');
});

test('config check rejects a missing required field with its path', async () => {
  const c = validConfig();
  delete c.streams['kinoite-zfs'].builderImage;
  const r = await configCheck(c);
  assert.equal(r.code, 2);
  assert.match(r.out, /streams\.kinoite-zfs\.builderImage: required field is missing/);
  assert.equal(r.spawned, '');
});

test('config check rejects a shell metacharacter in an image reference with its path', async () => {
  for (const bad of [
    '127.0.0.1:5000/x/y:latest;rm -rf /',
    '127.0.0.1:5000/x/$(id)',
    '127.0.0.1:5000/x/y\n:latest',
    '127.0.0.1:5000/x/y latest',
  ]) {
    const c = validConfig();
    c.streams['kinoite-zfs'].baseImage = bad;
    const r = await configCheck(c);
    assert.equal(r.code, 2, bad);
    assert.match(
      r.out,
      /streams\.kinoite-zfs\.baseImage: ".*" contains (shell metacharacters|whitespace or control characters)/,
      bad,
    );
    assert.equal(r.spawned, '');
  }
});

test('config check rejects a plain-HTTP registry that is not listed as allowed', async () => {
  const c = validConfig();
  c.registries.insecure = [];
  const r = await configCheck(c);
  assert.equal(r.code, 2);
  assert.match(
    r.out,
    /streams\.kinoite-zfs\.baseImage: uses registry 127\.0\.0\.1:5000, which is not listed in registries\.insecure/,
  );
  assert.match(r.out, /streams\.kinoite-zfs\.images\.stable: uses registry/);
  const h = validConfig();
  h.streams['kinoite-zfs'].zfs.source = { releasesUrl: 'http://releases.example.org/list' };
  assert.throws(
    () => parseConfig(h, 'x.yaml'),
    (e: ConfigError) =>
      e.problems.some((p) => /zfs\.source\.releasesUrl: uses plain HTTP host releases\.example\.org/.test(p)),
  );
});

test('config check rejects a secret written inline instead of a variable name', () => {
  const c = validConfig();
  c.streams['kinoite-zfs'].signing.passwordEnv = 'hunter2-is-my-password';
  assert.throws(
    () => parseConfig(c, 'x.yaml'),
    (e: ConfigError) =>
      e.problems.some((p) =>
        p.startsWith('streams.kinoite-zfs.signing.passwordEnv: must be the NAME of an environment variable'),
      ),
  );
});

test("signing.tlog defaults to true (cosign's default) and can be turned off per stream", () => {
  assert.equal(parseConfig(validConfig(), 'x.yaml').streams['kinoite-zfs']!.signing.tlog, true);
  const c = validConfig();
  c.streams['kinoite-zfs'].signing.tlog = false;
  assert.equal(parseConfig(c, 'x.yaml').streams['kinoite-zfs']!.signing.tlog, false);
  c.streams['kinoite-zfs'].signing.tlog = 'no';
  assert.throws(
    () => parseConfig(c, 'x.yaml'),
    (e: ConfigError) => e.problems.some((p) => p.startsWith('streams.kinoite-zfs.signing.tlog:')),
  );
});

test('the private key is a file or env://NAME, kept as a reference (not made a path), never the key itself', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kz-cfg-'));
  const c = validConfig();
  c.streams['kinoite-zfs'].signing.keyFile = 'env://SIGNING_SECRET';
  const file = join(dir, 'config.yaml');
  await writeFile(file, stringify(c));
  assert.equal((await loadConfig(file, {})).streams['kinoite-zfs']!.signing.keyFile, 'env://SIGNING_SECRET');
  c.streams['kinoite-zfs'].signing.keyFile = 'cosign.key';
  await writeFile(file, stringify(c));
  assert.equal((await loadConfig(file, {})).streams['kinoite-zfs']!.signing.keyFile, join(dir, 'cosign.key'));
  for (const bad of ['env://signing_secret', 'env://-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----', 'env://']) {
    c.streams['kinoite-zfs'].signing.keyFile = bad;
    assert.throws(
      () => parseConfig(c, 'x.yaml'),
      (e: ConfigError) =>
        e.problems.some((p) =>
          p.startsWith(
            'streams.kinoite-zfs.signing.keyFile: env:// must be followed by the NAME of an environment variable',
          ),
        ),
      bad,
    );
  }
});

test('config check reports YAML syntax errors and unreadable files with exit code 2', async () => {
  const r = await configCheck('streams: [unclosed');
  assert.equal(r.code, 2);
  assert.match(r.out, /YAML syntax error/);
});

test('environment variables override the Temporal connection', () => {
  const c = parseConfig(validConfig(), 'x.yaml');
  const o = applyEnv(c, {
    TEMPORAL_ADDRESS: 'temporal.example.org:7233',
    TEMPORAL_NAMESPACE: 'prod',
    TEMPORAL_TLS_CERT: '/c.pem',
    TEMPORAL_TLS_KEY: '/k.pem',
  });
  assert.equal(o.temporal.address, 'temporal.example.org:7233');
  assert.equal(o.temporal.namespace, 'prod');
  assert.deepEqual(o.temporal.tls, { certFile: '/c.pem', keyFile: '/k.pem' });
});

test('the committed JSON Schema and configuration docs match the zod schema (run npm run docs after a change)', async () => {
  assert.equal(
    await readFile(join(repo, 'docs/config.schema.json'), 'utf8'),
    JSON.stringify(configJsonSchema(), null, 2) + '\n',
  );
  assert.equal(await readFile(join(repo, 'docs/configuration.md'), 'utf8'), configMarkdown());
});

test('config check refuses a recipe location git would read as an option or as a command-running transport', () => {
  for (const [location, why] of [
    ['-uupload-pack=touch', /recipe\.git: "-uupload-pack=touch" starts with "-", so git would read it as an option/],
    ['ext::sh', /recipe\.git: "ext::sh" uses git's "<transport>::<address>" remote-helper form/],
    ['fd::17', /recipe\.git: "fd::17" uses git's "<transport>::<address>" remote-helper form/],
    ['gopher://example.org/recipe', /recipe\.git: "gopher:\/\/example.org\/recipe" uses the "gopher" transport/],
  ] as const) {
    const c = validConfig();
    c.streams['kinoite-zfs'].recipe = { git: location };
    assert.throws(
      () => parseConfig(c, 'x.yaml'),
      (e: ConfigError) => e.problems.some((p) => why.test(p)),
      location,
    );
  }
  for (const location of [
    'https://github.com/o/r.git',
    'ssh://git@github.com/o/r.git',
    'git@github.com:o/r.git',
    'file:///srv/r.git',
    '/srv/recipe.git',
  ]) {
    const c = validConfig();
    c.streams['kinoite-zfs'].recipe = { git: location };
    assert.doesNotThrow(() => parseConfig(c, 'x.yaml'), location);
  }
});

test('worker.minFreeSpace defaults to 10GB, takes sizes and "0", and refuses what is not a size with its path', () => {
  assert.equal(parseConfig(validConfig(), 'x.yaml').worker.minFreeSpace, '10GB');
  for (const v of ['25GB', '500MiB', '0'])
    assert.equal(parseConfig({ ...validConfig(), worker: { minFreeSpace: v } }, 'x.yaml').worker.minFreeSpace, v);
  assert.throws(
    () => parseConfig({ ...validConfig(), worker: { minFreeSpace: 'ten gigs' } }, 'x.yaml'),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(String(err.message), /worker\.minFreeSpace: must be a size such as "10GB"/);
      return true;
    },
  );
});

test('a stream may pin its builds to a build queue of its own, never to the control queue or a malformed name', () => {
  assert.equal(parseConfig(validConfig(), 'x.yaml').streams['kinoite-zfs']!.buildQueue, undefined);
  const c = validConfig();
  c.streams['kinoite-zfs'].buildQueue = 'kinoite-zfs-build-aarch64';
  assert.equal(parseConfig(c, 'x.yaml').streams['kinoite-zfs']!.buildQueue, 'kinoite-zfs-build-aarch64');
  for (const [queue, message] of [
    ['kinoite-zfs-control', 'streams.kinoite-zfs.buildQueue: is the control queue (temporal.taskQueues.control)'],
    ['--queue', 'streams.kinoite-zfs.buildQueue: "--queue" is not a task queue name'],
  ]) {
    c.streams['kinoite-zfs'].buildQueue = queue;
    assert.throws(
      () => parseConfig(c, 'x.yaml'),
      (e: ConfigError) => e.problems.some((p) => p.startsWith(message!)),
      queue,
    );
  }
});
