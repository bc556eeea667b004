/**
 * The recipe's git calls, with the real git: a location git refuses or a repository that does not
 * exist fails at once as permanent, quoting git's own line, instead of being retried for minutes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { checkoutCommit, resolveCommit } from '../../activities/git.ts';
import { FailureType, PermanentError } from '../../core/errors.ts';

const permanent = (type: FailureType, line: RegExp) => (err: unknown) =>
  err instanceof PermanentError && err.type === type && line.test(err.message);

test("a recipe repository that does not exist fails permanently with git's own line", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kz-git-'));
  try {
    await assert.rejects(
      resolveCommit(join(dir, 'nope.git'), 'main'),
      permanent(FailureType.InvalidInput, /does not appear to be a git repository/),
    );
    await assert.rejects(
      checkoutCommit({ url: join(dir, 'nope.git'), commit: 'a'.repeat(40), cacheDir: join(dir, 'cache') }),
      permanent(FailureType.InvalidInput, /repository '.*nope\.git' does not exist/),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('command-running transports are refused before git runs, and git itself refuses them too', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kz-git-'));
  const marker = join(dir, 'pwned');
  try {
    await assert.rejects(
      resolveCommit(`ext::sh -c touch% ${marker}`, 'main'),
      permanent(FailureType.InvalidInput, /remote-helper form/),
    );
    await assert.rejects(resolveCommit('-uupload-pack=x', 'main'), permanent(FailureType.InvalidInput, /option/));
    // The second line of defence: git run with the worker's environment refuses ext:: on its own.
    const r = await execa('git', ['ls-remote', '--', `ext::sh -c touch% ${marker}`], {
      reject: false,
      env: { GIT_ALLOW_PROTOCOL: 'https:http:ssh:git:file', GIT_TERMINAL_PROMPT: '0' },
    });
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /transport 'ext' not allowed/);
    assert.equal(existsSync(marker), false, 'no command ran');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
