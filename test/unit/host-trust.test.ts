/**
 * The worker as trust boundary, at the host: stream settings come from the worker's config file
 * (read again when it changes), an unknown stream is refused naming the file, and writes go only
 * to repositories the config names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Host } from '../../activities/host.ts';
import { loadConfig } from '../../client/config-file.ts';
import { REPOS, mockStreamSettings } from '../support/mock-activities.ts';

function rawConfig(policy: string) {
  return { temporal: { address: '127.0.0.1:1' }, streams: { s1: mockStreamSettings({ policy }) } };
}

async function withHost(fn: (host: Host, file: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'kz-host-'));
  const file = join(dir, 'config.yaml');
  try {
    await writeFile(file, stringify(rawConfig('auto')));
    await fn(new Host(await loadConfig(file), { file, load: (f) => loadConfig(f) }), file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Rewrites the config file with a later modification time (two writes can share one on coarse clocks). */
async function deploy(file: string, raw: object, secondsLater: number) {
  await writeFile(file, stringify(raw));
  const t = new Date(Date.now() + secondsLater * 1000);
  await utimes(file, t, t);
}

test('a stream plan comes from the config file and follows it when the file changes', async () => {
  await withHost(async (host, file) => {
    assert.equal((await host.streamPlan('s1')).promotion.policy, 'auto');
    await deploy(file, rawConfig('approval'), 5);
    assert.equal((await host.streamPlan('s1')).promotion.policy, 'approval');
  });
});

test('a stream the config does not name is refused, naming the file and the streams it has', async () => {
  await withHost(async (host, file) => {
    await assert.rejects(host.streamPlan('nope'), (err: Error & { type?: string }) => {
      assert.equal(err.type, 'InvalidInput');
      assert.ok(err.message.startsWith(`Stream "nope" is not in this worker's config (${file})`), err.message);
      assert.match(err.message, /\(streams: s1\)/);
      return true;
    });
    await assert.rejects(host.streamPlan('__proto__'), /is not in this worker's config/);
  });
});

test('a changed config that no longer loads is refused at once, naming the file and the field', async () => {
  await withHost(async (host, file) => {
    const bad = rawConfig('auto');
    bad.streams.s1.baseImage = 'x/y:latest;touch /tmp/pwned';
    await deploy(file, bad, 5);
    await assert.rejects(host.streamPlan('s1'), (err: Error & { type?: string }) => {
      assert.equal(err.type, 'InvalidInput');
      assert.match(err.message, /changed and no longer loads: .*baseImage/s);
      return true;
    });
  });
});

test('writes go only to repositories the config names (for signatures: of that stream)', async () => {
  await withHost(async (host) => {
    for (const repo of Object.values(REPOS).filter((r) => r !== REPOS.base && r !== REPOS.builder))
      await host.assertWritable(`${repo}:t`, 'test');
    await host.assertWritable(`${REPOS.stable}@sha256:${'a'.repeat(64)}`, 'image to sign', 's1');
    await assert.rejects(
      host.assertWritable(`${REPOS.base}:latest`, 'copy destination'),
      (err: Error & { type?: string }) => {
        assert.equal(err.type, 'PolicyViolation');
        assert.match(err.message, /^Refusing to write .*\(copy destination\): .* is not a repository of any stream/);
        return true;
      },
    );
    await assert.rejects(host.assertWritable('evil.invalid/x/y:latest', 'candidate'), /not a repository of any stream/);
    await assert.rejects(
      host.assertWritable(`${REPOS.stable}@sha256:${'a'.repeat(64)}`, 'image to sign', 'other'),
      /not a repository of stream "other"/,
    );
  });
});
