/**
 * The compiled CLI and worker (`npm run build` → dist/): the executable runs dist/ only while it is
 * current and otherwise the TypeScript sources, saying so; the compiled code finds every file it
 * reads from the package (boot scripts, fixtures, specs, recipes, state) in the checkout; and the
 * prebuilt workflow bundle replays every committed history.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { Worker } from '@temporalio/worker';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const historyDir = join(repo, 'test', 'history');

/** compiledState(repo) of bin/compiled-state.js, through its own command line (no TypeScript involved). */
async function repoDistState(): Promise<string> {
  const r = await execa(process.execPath, [join(repo, 'bin', 'compiled-state.js')], { reject: false });
  return r.stdout.trim();
}

/**
 * A package root in a temporary folder with the real executable, a one-file "source tree" and a
 * "compiled" copy that answer differently, so each test can see which one ran.
 */
async function fakePackage(): Promise<{
  root: string;
  cli: (env?: NodeJS.ProcessEnv) => Promise<{ stdout: string; stderr: string }>;
}> {
  const root = await mkdtemp(join(tmpdir(), 'kz-compiled-'));
  await mkdir(join(root, 'bin'));
  await mkdir(join(root, 'client'));
  await mkdir(join(root, 'dist', 'client'), { recursive: true });
  for (const f of ['kinoite-zfs.js', 'compiled-state.js']) await copyFile(join(repo, 'bin', f), join(root, 'bin', f));
  await symlink(join(repo, 'node_modules'), join(root, 'node_modules'));
  await writeFile(join(root, 'package.json'), '{ "type": "module" }\n');
  await writeFile(join(root, 'package-lock.json'), '{}\n');
  await writeFile(join(root, 'tsconfig.build.json'), '{ "include": ["client"] }\n');
  await writeFile(
    join(root, 'client', 'cli.ts'),
    "export async function main(argv: string[]): Promise<number> { console.log('source', argv.join(' ')); return 0; }\n",
  );
  await writeFile(
    join(root, 'dist', 'client', 'cli.js'),
    "export async function main(argv) { console.log('dist', argv.join(' ')); return 0; }\n",
  );
  // Sources a minute old, the build stamp half a minute old: dist/ is current, and any edit now is newer.
  const past = new Date(Date.now() - 60_000);
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.build.json', 'client', 'client/cli.ts'])
    await utimes(join(root, p), past, past);
  await writeFile(join(root, 'dist', '.build-stamp'), '{}\n');
  const built = new Date(Date.now() - 30_000);
  await utimes(join(root, 'dist', '.build-stamp'), built, built);
  const cli = async (env: NodeJS.ProcessEnv = {}) => {
    const r = await execa(process.execPath, [join(root, 'bin', 'kinoite-zfs.js'), '--help'], {
      env: { KINOITE_ZFS_FROM_SOURCE: undefined, ...env },
    });
    return { stdout: r.stdout.trim(), stderr: r.stderr.trim() };
  };
  return { root, cli };
}

test('the executable runs dist/ quietly while it is at least as new as every source', async () => {
  const { root, cli } = await fakePackage();
  try {
    assert.deepEqual(await cli(), { stdout: 'dist --help', stderr: '' });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a source file edited after the build runs the sources through tsx, with one line saying so', async () => {
  const { root, cli } = await fakePackage();
  try {
    await writeFile(join(root, 'client', 'cli.ts'), (await readFile(join(root, 'client', 'cli.ts'), 'utf8')) + '\n');
    const r = await cli();
    assert.equal(r.stdout, 'source --help');
    assert.equal(
      r.stderr,
      'kinoite-zfs: running from TypeScript (client/cli.ts changed after the last build); `npm run build` compiles it.',
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a source file added, a changed lock file or a missing build stamp also mean the sources run', async () => {
  const { root, cli } = await fakePackage();
  try {
    await writeFile(join(root, 'client', 'new-command.ts'), 'export {};\n');
    assert.match((await cli()).stderr, /\(client changed after the last build\)/);
    await utimes(join(root, 'client'), new Date(0), new Date(0));
    assert.equal((await cli()).stdout, 'source --help', 'the new file itself is newer than the build');
    await utimes(join(root, 'client', 'new-command.ts'), new Date(0), new Date(0));
    assert.equal((await cli()).stdout, 'dist --help');

    await writeFile(join(root, 'package-lock.json'), '{ "lockfileVersion": 3 }\n');
    assert.match((await cli()).stderr, /\(package-lock\.json changed after the last build\)/);
    await utimes(join(root, 'package-lock.json'), new Date(0), new Date(0));

    await rm(join(root, 'dist', '.build-stamp'));
    const r = await cli();
    assert.equal(r.stdout, 'source --help');
    assert.match(r.stderr, /\(dist\/ has not been built\)/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('KINOITE_ZFS_FROM_SOURCE=1 runs the sources without a notice; an install without sources runs dist/', async () => {
  const { root, cli } = await fakePackage();
  try {
    assert.deepEqual(await cli({ KINOITE_ZFS_FROM_SOURCE: '1' }), { stdout: 'source --help', stderr: '' });
    await rm(join(root, 'client'), { recursive: true });
    await rm(join(root, 'dist', '.build-stamp'));
    assert.deepEqual(await cli(), { stdout: 'dist --help', stderr: '' });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('compiled code finds the files it reads in the checkout, not under dist/', async (t) => {
  const state = await repoDistState();
  if (state !== 'current') return t.skip(`dist/ is not current (${state}): npm run build`);
  // Plain node, no tsx: the compiled modules as the executable loads them.
  const script = `
    const { PACKAGE_ROOT, RUNS_COMPILED } = await import('./dist/activities/package-root.js');
    const { REPO_ROOT, stateDir } = await import('./dist/world/tools.js');
    const { ZFS_SOURCE_TEMPLATE_DIR } = await import('./dist/world/zfs-source.js');
    const { BOOT_SCRIPTS } = await import('./dist/activities/boot-test.js');
    const { workflowCodeSource } = await import('./dist/worker/main.js');
    const { describe, ...source } = workflowCodeSource();
    console.log(JSON.stringify({ PACKAGE_ROOT, RUNS_COMPILED, REPO_ROOT, state: stateDir({}), ZFS_SOURCE_TEMPLATE_DIR, BOOT_SCRIPTS, source, describe }));
  `;
  const r = await execa(process.execPath, ['--input-type=module', '-e', script], { cwd: repo });
  const got = JSON.parse(r.stdout);
  const root = repo.replace(/\/$/, '');
  assert.equal(got.PACKAGE_ROOT, root);
  assert.equal(got.RUNS_COMPILED, true);
  assert.equal(got.REPO_ROOT, root, 'recipes/ and ../shared/openzfs are found from the checkout');
  assert.equal(got.state, join(root, '.state'), 'state stays in <checkout>/.state');
  assert.equal(got.ZFS_SOURCE_TEMPLATE_DIR, join(root, 'world', 'fixtures', 'zfs-source'));
  assert.deepEqual(got.BOOT_SCRIPTS, {
    collect: join(root, 'activities', 'boot', 'collect.sh'),
    init: join(root, 'activities', 'boot', 'init.sh'),
  });
  assert.deepEqual(got.source, { workflowBundle: { codePath: join(root, 'dist', 'workflow-bundle.js') } });
  assert.equal(got.describe, 'prebuilt workflow bundle');
  for (const dir of [got.ZFS_SOURCE_TEMPLATE_DIR, join(root, 'recipes'), join(root, 'world', 'specs')])
    assert.ok((await readdir(dir)).length > 0, `${dir} exists`);
});

test('the prebuilt workflow bundle replays every committed history', async (t) => {
  const state = await repoDistState();
  if (state !== 'current') return t.skip(`dist/ is not current (${state}): npm run build`);
  const codePath = join(repo, 'dist', 'workflow-bundle.js');
  const files = (await readdir(historyDir)).filter((f) => f.endsWith('.json'));
  assert.ok(files.length > 0, 'at least one history is committed');
  for (const file of files) {
    const history = JSON.parse(await readFile(join(historyDir, file), 'utf8'));
    await Worker.runReplayHistory({ workflowBundle: { codePath }, replayName: file }, history);
  }
});
