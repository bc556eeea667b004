/**
 * The recipe's git calls, with the real git: a location git refuses or a repository that does not
 * exist fails at once as permanent, quoting git's own line, instead of being retried for minutes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

/** A local http server standing for a git host: `/404/…` not found, `/401/…` asks for credentials, `/403/…` refuses, `/hang/…` never answers. */
async function gitHost(): Promise<{ url: string; close: () => void }> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/hang/')) return; // keeps the connection open, sends nothing
    const status = Number(/^\/(\d{3})\//.exec(req.url ?? '')?.[1] ?? 404);
    res.writeHead(status, status === 401 ? { 'WWW-Authenticate': 'Basic realm="git"' } : {});
    res.end('no\n');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

test("a recipe repository the git host does not have, or refuses, fails at once as permanent with git's own line", async () => {
  const host = await gitHost();
  try {
    for (const [path, type, line] of [
      // "500" in the location must not read as a server error
      ['/404/500/recipe.git', FailureType.InvalidInput, /fatal: repository '.*\/404\/500\/recipe\.git\/' not found/],
      ['/401/recipe.git', FailureType.AuthDenied, /fatal: could not read Username for '.*': terminal prompts disabled/],
      ['/403/recipe.git', FailureType.AuthDenied, /The requested URL returned error: 403/],
    ] as const) {
      await assert.rejects(resolveCommit(`${host.url}${path}`, 'main'), (err: Error) => {
        assert.ok(permanent(type, line)(err), `${path}: ${err.message}`);
        assert.doesNotMatch(err.message, /will be retried/);
        return true;
      });
    }
  } finally {
    host.close();
  }
});

test('a git host that does not answer in time, or a port nobody listens on, stays retryable', async () => {
  const host = await gitHost();
  const saved = { ...process.env };
  // curl's low-speed limit stands in for a network timeout, in 2 s instead of minutes.
  process.env.GIT_HTTP_LOW_SPEED_LIMIT = '1000';
  process.env.GIT_HTTP_LOW_SPEED_TIME = '2';
  try {
    await assert.rejects(resolveCommit(`${host.url}/hang/denied/recipe.git`, 'main'), (err: Error) => {
      assert.ok(!(err instanceof PermanentError), err.message);
      assert.match(err.message, /Operation too slow[\s\S]*network timeout; will be retried/);
      return true;
    });
    // Port 1: nothing listens; "denied" in the path must not read as refused credentials.
    await assert.rejects(resolveCommit('http://127.0.0.1:1/denied/recipe.git', 'main'), (err: Error) => {
      assert.ok(!(err instanceof PermanentError), err.message);
      assert.match(err.message, /will be retried/);
      return true;
    });
  } finally {
    process.env = saved;
    host.close();
  }
});

test("a commit only a pull request's ref holds is fetched by id; a commit the repository lacks is refused naming it and the location", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kz-git-'));
  const git = (args: string[]) =>
    execa('git', ['-C', join(dir, 'src'), '-c', 'user.name=t', '-c', 'user.email=t@t.invalid', ...args]);
  try {
    await execa('git', ['init', '--quiet', '-b', 'main', join(dir, 'src')]);
    await git(['commit', '--quiet', '--allow-empty', '-m', 'main']);
    await git(['checkout', '--quiet', '-b', 'pr']);
    await git(['commit', '--quiet', '--allow-empty', '-m', 'pull request change']);
    const pr = (await git(['rev-parse', 'HEAD'])).stdout.trim();
    // Like GitHub's refs/pull/N/merge: no branch or tag holds the commit, so a clone does not bring it.
    await git(['update-ref', 'refs/pull/1/merge', pr]);
    await git(['checkout', '--quiet', 'main']);
    await git(['branch', '--quiet', '-D', 'pr']);
    const url = `file://${join(dir, 'src')}`;
    const checkout = await checkoutCommit({ url, commit: pr, cacheDir: join(dir, 'cache') });
    const head = await execa('git', ['-C', checkout, 'rev-parse', 'HEAD']);
    assert.equal(head.stdout.trim(), pr);
    const missing = 'b'.repeat(40);
    await assert.rejects(
      checkoutCommit({ url, commit: missing, cacheDir: join(dir, 'cache') }),
      permanent(
        FailureType.InvalidInput,
        new RegExp(
          `^Recipe commit ${missing} does not exist in ${url}, the configured recipe repository \\(recipe\\.git\\)`,
        ),
      ),
    );
    assert.equal(existsSync(join(dir, 'cache', missing)), false, 'nothing was left in the cache');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
