/**
 * Layout rules, enforced: workflow code imports only the workflow SDK, the pure core and
 * activity types; core/ does no I/O and uses no clock or randomness; only the runner spawns
 * processes among the activities; the hermetic world (world/) and the command line (client/)
 * meet only in the `world` and `demo` commands, and the project's own services (services/) need
 * neither.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

async function sources(dir: string): Promise<[string, string][]> {
  const files = (await readdir(`${root}${dir}`)).filter((f) => f.endsWith('.ts'));
  return Promise.all(
    files.map(async (f) => [`${dir}/${f}`, await readFile(`${root}${dir}/${f}`, 'utf8')] as [string, string]),
  );
}

function imports(text: string): { spec: string; typeOnly: boolean }[] {
  return [...text.matchAll(/^import\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)].map((m) => ({
    spec: m[2]!,
    typeOnly: !!m[1],
  }));
}

test('workflow files import only @temporalio/workflow and common, the pure core, each other, and activity types', async () => {
  for (const [file, text] of await sources('workflows')) {
    for (const { spec, typeOnly } of imports(text)) {
      const ok =
        spec === '@temporalio/workflow' ||
        spec === '@temporalio/common' ||
        spec.startsWith('../core/') ||
        spec.startsWith('./') ||
        (typeOnly && spec.startsWith('../activities/'));
      assert.ok(ok, `${file} imports ${typeOnly ? 'type ' : ''}${spec}`);
    }
  }
});

test('core/ is pure: no node: or tool imports, no clock, no randomness', async () => {
  // zod (schemas) and @noble/hashes (SHA-256, pure JavaScript) are the only packages core uses.
  const pure = (spec: string) => spec.startsWith('./') || spec === 'zod' || spec.startsWith('@noble/hashes/');
  for (const [file, text] of await sources('core')) {
    for (const { spec } of imports(text)) assert.ok(pure(spec), `${file} imports ${spec}`);
    assert.doesNotMatch(
      text,
      /Date\.now\(|new Date\(\)|Math\.random\(|process\./,
      `${file} uses the clock, randomness or the process`,
    );
  }
});

test('among the activities only the runner spawns processes', async () => {
  for (const [file, text] of await sources('activities')) {
    if (file === 'activities/run-tool.ts') continue;
    assert.doesNotMatch(text, /from 'execa'|from 'node:child_process'/, `${file} spawns processes itself`);
  }
});

/** Every .ts file under `dir` (repository-relative), with its text. */
async function sourcesDeep(dir: string): Promise<[string, string][]> {
  const entries = await readdir(`${root}${dir}`, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(root, join(e.parentPath, e.name)));
  return Promise.all(files.map(async (f) => [f, await readFile(`${root}${f}`, 'utf8')] as [string, string]));
}

/**
 * Every module a file loads, resolved to a repository-relative path (packages stay bare):
 * `import … from`, `export … from`, side-effect `import '…'` and `import('…')`.
 */
function loads(file: string, text: string): { target: string; dynamic: boolean }[] {
  const statics = [...text.matchAll(/^\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?'([^']+)'/gm)];
  const dynamics = [...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)];
  const at = (spec: string) => (spec.startsWith('.') ? relative(root, resolve(root, dirname(file), spec)) : spec);
  return [
    ...statics.map((m) => ({ target: at(m[1]!), dynamic: false })),
    ...dynamics.map((m) => ({ target: at(m[1]!), dynamic: true })),
  ];
}

const inFolder = (path: string, folder: string) => path.startsWith(`${folder}/`);

test('world/ never imports client/', async () => {
  for (const [file, text] of await sourcesDeep('world'))
    for (const { target } of loads(file, text))
      assert.ok(!inFolder(target, 'client'), `${file} imports ${target}: move what both need to core/ or services/`);
});

test('client/ imports world/ only from the world and demo commands', async () => {
  const allowed = new Set(['client/commands/world.ts', 'client/commands/demo.ts']);
  for (const [file, text] of await sourcesDeep('client')) {
    if (allowed.has(file)) continue;
    for (const { target } of loads(file, text))
      assert.ok(!inFolder(target, 'world'), `${file} imports ${target}: only the world and demo commands load world/`);
  }
});

test('services/ (the Temporal dev server) imports neither world/ nor client/', async () => {
  for (const [file, text] of await sourcesDeep('services'))
    for (const { target } of loads(file, text))
      assert.ok(
        !inFolder(target, 'world') && !inFolder(target, 'client'),
        `${file} imports ${target}: services/ serves every user, not only the world's`,
      );
});

test('the CLI and its services command load no world/ module, not even indirectly', async () => {
  // Static imports only: a dynamic import is loaded when its command runs (world, demo,
  // services --dir), and the previous test pins down which modules may do that.
  const seen = new Set<string>();
  const visit = async (file: string, via: string[]): Promise<void> => {
    if (seen.has(file)) return;
    seen.add(file);
    assert.ok(!inFolder(file, 'world'), `${[...via, file].join(' -> ')} loads the hermetic world`);
    const text = await readFile(`${root}${file}`, 'utf8');
    for (const { target, dynamic } of loads(file, text))
      if (!dynamic && target.endsWith('.ts')) await visit(target, [...via, file]);
  };
  await visit('client/cli.ts', []);
  await visit('client/commands/services.ts', []);
});
