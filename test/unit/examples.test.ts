/**
 * The example configs in examples/ (issue 12 item 7): each passes `kinoite-zfs config check` exactly
 * as docs/use-it.md tells users to run it, without any key, password or auth file present and
 * without spawning a process; each is for real infrastructure (ghcr.io, the real OpenZFS release
 * source, a builder on the network); and each commented alternative it offers ("Uncomment …")
 * validates too, so an example cannot drift from the schema unnoticed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { ConfigError, loadConfig, parseConfig } from '../../client/config-file.ts';
import { ReleaseSource } from '../../core/config.ts';
import { parseImageRef } from '../../core/refs.ts';
import { cliWithoutSpawning } from '../support/cli-no-spawn.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));

/** examples/*.yaml, relative to the repository, as a user passes them to `config check`. */
async function exampleFiles(): Promise<string[]> {
  const names = (await readdir(join(repo, 'examples'))).filter((n) => n.endsWith('.yaml')).sort();
  return names.map((n) => `examples/${n}`);
}

/** An environment without TEMPORAL_* or KINOITE_ZFS_CONFIG: the file alone decides the check. */
const cleanEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir() };

/** Runs `node bin/kinoite-zfs.js config check --config FILE` from the repository root; spawning is refused inside. */
function cliConfigCheck(file: string) {
  return cliWithoutSpawning(['config', 'check', '--config', file], { extendEnv: false, env: cleanEnv });
}

/** A commented block the example offers, introduced by `# Uncomment to add …` or `# Uncomment instead of the X section above …`. */
const MARKER = /^( *)# Uncomment (?:instead of the ([a-z]+) section above|to add)\b/;

/**
 * The example's text with one commented block uncommented, for each block it offers: in place
 * ("to add"), or in place of the top-level section it names ("instead of the X section above").
 */
function alternatives(text: string): { label: string; text: string }[] {
  const lines = text.split('\n');
  const found: { label: string; text: string }[] = [];
  lines.forEach((line, at) => {
    const m = MARKER.exec(line);
    if (!m) return;
    const [, indent, replaces] = m;
    const out = [...lines];
    let end = at + 1;
    for (; end < out.length && out[end]!.startsWith(`${indent}# `); end++) {
      out[end] = indent + out[end]!.slice(indent!.length + 2);
    }
    assert.ok(end > at + 1, `"${line.trim()}" is followed by no commented block`);
    if (replaces) {
      const start = out.findIndex((l) => l.startsWith(`${replaces}:`));
      assert.ok(start >= 0 && start < at, `"${line.trim()}": no ${replaces} section above it`);
      let stop = start + 1;
      while (stop < at && !/^[a-z$]/.test(out[stop]!)) stop++;
      out.splice(start, stop - start);
    }
    found.push({ label: line.trim(), text: out.join('\n') });
  });
  return found;
}

test('examples/ holds a config for ghcr.io/ublue-os/kinoite-main and one for another Universal Blue image', async () => {
  const bases: string[] = [];
  for (const file of await exampleFiles()) {
    const config = await loadConfig(join(repo, file), {});
    bases.push(...Object.values(config.streams).map((s) => parseImageRef(s.baseImage).name));
  }
  assert.ok(bases.includes('ghcr.io/ublue-os/kinoite-main'), bases.join(', '));
  assert.ok(
    bases.some((b) => b !== 'ghcr.io/ublue-os/kinoite-main' && b.startsWith('ghcr.io/ublue-os/')),
    bases.join(', '),
  );
});

test('every example passes `kinoite-zfs config check --config examples/X.yaml` with no key files present and spawns nothing', async () => {
  const files = await exampleFiles();
  assert.ok(files.length >= 2, `examples: ${files.join(', ')}`);
  for (const file of files) {
    const r = await cliConfigCheck(file);
    assert.equal(r.code, 0, `${file}:\n${r.out}`);
    assert.match(r.out, new RegExp(`^${file.replace('.', '\\.')}: valid\\. 1 stream\\(s\\): `, 'm'), r.out);
    assert.equal(r.spawned, '', file);
  }
});

test('every example is set up for real infrastructure: ghcr.io, the real OpenZFS releases, a networked builder, keys by reference', async () => {
  const defaults = ReleaseSource.parse({});
  for (const file of await exampleFiles()) {
    const text = await readFile(join(repo, file), 'utf8');
    const config = await loadConfig(join(repo, file), {});
    assert.deepEqual(config.registries.insecure, [], `${file}: plain-HTTP registries`);
    for (const [name, s] of Object.entries(config.streams)) {
      const where = `${file}: streams.${name}`;
      assert.match(s.baseImage, /^ghcr\.io\/ublue-os\//, where);
      assert.equal(s.builderNetwork, 'default', where);
      assert.deepEqual(s.zfs.source, defaults, `${where}.zfs.source is not the real OpenZFS release source`);
      assert.match(s.recipe.git, /^https:\/\//, where);
      const repos = [s.images.candidate, s.images.stable, s.images.akmodsCandidate, s.images.akmodsStable];
      for (const r of repos) assert.match(r, /^ghcr\.io\/your-org\//, `${where}: publishes to ${r}`);
      assert.equal(new Set(repos).size, 4, `${where}: four distinct repositories`);
      // recipes/os/ensure-signing-policy.sh names its files after these last path parts.
      assert.notEqual(basename(s.images.stable), basename(s.images.candidate), where);
      assert.match(s.signing.keyFile, /^\/etc\/kinoite-zfs\//, where);
      assert.match(s.signing.publicKeyFile, /^\/etc\/kinoite-zfs\//, where);
      assert.ok(s.signing.passwordEnv, `${where}: the key password comes from a variable`);
      assert.ok(s.schedule.cron, where);
    }
    assert.doesNotMatch(text, /BEGIN [A-Z ]*PRIVATE KEY|"auth":/, `${file} holds a secret`);
  }
});

test("each example's commented alternatives (Temporal Cloud, mTLS, webhooks) validate when uncommented", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kz-examples-'));
  const labels: string[] = [];
  for (const file of await exampleFiles()) {
    const text = await readFile(join(repo, file), 'utf8');
    const found = alternatives(text);
    assert.ok(
      found.some((a) => a.label.includes('Temporal Cloud')),
      `${file}: no commented Temporal Cloud section`,
    );
    for (const [i, alt] of found.entries()) {
      const variant = join(dir, `${basename(file, '.yaml')}-${i}.yaml`);
      await writeFile(variant, alt.text);
      const config = await loadConfig(variant, {}).catch((err: unknown) => {
        assert.fail(`${file}, "${alt.label}":\n${err instanceof ConfigError ? err.message : String(err)}`);
      });
      assert.notDeepEqual(parseYaml(alt.text), parseYaml(text), `${file}, "${alt.label}" changed nothing`);
      if (alt.label.includes('Temporal Cloud')) {
        assert.match(config.temporal.address, /(\.tmprl\.cloud|\.api\.temporal\.io):7233$/, alt.label);
        assert.ok(config.temporal.apiKeyEnv || config.temporal.tls?.certFile, alt.label);
      }
      labels.push(alt.label);
    }
  }
  assert.ok(labels.length >= 4, labels.join('\n'));
});

test('a broken example fails the check, naming the field', async () => {
  const [first] = await exampleFiles();
  const raw = parseYaml(await readFile(join(repo, first!), 'utf8'));
  const stream = Object.values(raw.streams)[0] as any;
  stream.images.stable = 'ghcr.io/Your-Org/kinoite-zfs:latest';
  assert.throws(
    () => parseConfig(raw, first!),
    (err: unknown) => err instanceof ConfigError && err.problems.some((p) => /\.images\.stable: /.test(p)),
  );
});
