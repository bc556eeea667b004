/**
 * Layout rules, enforced: workflow code imports only the workflow SDK, the pure core and
 * activity types; core/ does no I/O and uses no clock or randomness; only the runner spawns
 * processes among the activities.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
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
  for (const [file, text] of await sources('core')) {
    for (const { spec } of imports(text)) assert.ok(spec.startsWith('./') || spec === 'zod', `${file} imports ${spec}`);
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
