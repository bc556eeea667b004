/**
 * A hostile recipe location, tried as a user would: `config check` exits 2 naming the field, and
 * `run` refuses it with the same line before it contacts Temporal (a listener at the configured
 * Temporal address counts every connection) and before it spawns any process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { refusal } from '../../core/validate.ts';
import { minimalConfig } from '../support/config-fixture.ts';
import { cliWithoutSpawning } from '../support/cli-no-spawn.ts';

/** A TCP listener standing where Temporal should be: it counts connections and closes them. */
async function countingListener(): Promise<{ server: Server; address: string; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    server,
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => count,
  };
}

function config(temporalAddress: string, recipe: { git: string; ref?: string }) {
  const c = minimalConfig(temporalAddress);
  c.streams.s.recipe = recipe;
  return c;
}

/** `kinoite-zfs ARGS` in a child Node process whose child_process module refuses to spawn. */
function cli(_dir: string, args: string[]) {
  return cliWithoutSpawning(args, { env: { TEMPORAL_ADDRESS: '' } });
}

test('config check and run refuse a recipe location git would read as an option, without contacting Temporal', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kz-validation-'));
  const temporal = await countingListener();
  try {
    for (const recipe of [
      { git: `--upload-pack=touch%20${join(dir, 'pwned')}` },
      { git: 'ext::sh' },
      { git: '/srv/recipe.git', ref: '--upload-pack=x' },
    ]) {
      const field = recipe.ref ? 'recipe.ref' : 'recipe.git';
      const line = `streams.s.${field}: ${refusal(recipe.ref ? 'gitRef' : 'recipeLocation', recipe.ref ?? recipe.git)}`;
      const file = join(dir, 'hostile.yaml');
      await writeFile(file, stringify(config(temporal.address, recipe)));

      const check = await cli(dir, ['config', 'check', '--config', file]);
      assert.equal(check.code, 2, check.stderr);
      assert.ok(check.stderr.includes(line), `config check names the field:\n${check.stderr}`);
      assert.equal(check.spawned, '');

      const run = await cli(dir, ['run', '--config', file, '--stream', 's']);
      assert.equal(run.code, 2, run.stderr);
      assert.ok(run.stderr.includes(line), `run says the same line:\n${run.stderr}`);
      assert.equal(run.spawned, '');
    }
    // A run option the rules refuse: the same wording, exit 2, before Temporal too.
    const file = join(dir, 'valid.yaml');
    await writeFile(file, stringify(config(temporal.address, { git: '/srv/recipe.git' })));
    const commit = await cli(dir, ['run', '--config', file, '--stream', 's', '--commit=--upload-pack=x']);
    assert.equal(commit.code, 2, commit.stderr);
    assert.ok(commit.stderr.includes(`--commit: ${refusal('gitRef', '--upload-pack=x')}`), commit.stderr);
    // A PR run builds its commit: an abbreviated one is refused before anything is asked.
    const short = await cli(dir, ['run', '--config', file, '--mode', 'pr', '--pr', '3', '--commit', 'abc1234']);
    assert.equal(short.code, 2, short.stderr);
    assert.match(short.stderr, /--commit abc1234: a pr build builds this commit, so give its full 40-character id/);
    assert.equal(temporal.connections(), 0, 'nothing contacted Temporal');

    // The listener does see a run whose config passes: the check above can fail.
    assert.equal((await cli(dir, ['config', 'check', '--config', file])).code, 0);
    const run = await cli(dir, ['run', '--config', file, '--stream', 's']);
    assert.equal(run.code, 3, run.stderr);
    assert.ok(temporal.connections() > 0, 'a valid run contacts Temporal');
  } finally {
    temporal.server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
