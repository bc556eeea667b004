/**
 * The README's demo command, end to end as a user runs it: the first run ends with a signed
 * stable image (checked with the cosign verify command it prints), the second builds no akmods.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { repoRoot } from '../support/harness.ts';
import { toolPath } from '../../activities/host.ts';
import { worldDown } from '../../world/world.ts';

const dir = join(repoRoot, '.state', 'test-worlds', 'demo-test');
const specFile = join(dir, 'demo-spec.yaml');

function demo() {
  return execa(process.execPath, [join(repoRoot, 'bin', 'kinoite-zfs.js'), 'demo', '--dir', dir, '--spec', specFile], {
    cwd: repoRoot,
    reject: false,
    stdin: 'ignore',
    timeout: 600_000,
    all: true,
  });
}

after(async () => {
  await worldDown({ dir }).catch(() => undefined);
});

test('the demo ends with a signed stable image, and a second demo run builds no akmods', async () => {
  await worldDown({ dir }).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  // The shipped demo spec, with a stream name of its own so it never meets a user's demo stream.
  const spec = parse(await readFile(join(repoRoot, 'world', 'specs', 'demo.yaml'), 'utf8'));
  await writeFile(specFile, stringify({ ...spec, name: 'demo-test', stream: { ...spec.stream, name: 'demo-test' } }));

  const first = await demo();
  assert.equal(first.exitCode, 0, first.all);
  assert.match(first.all!, /PROMOTED/);
  assert.match(first.all!, /Temporal Web UI: http:\/\/127\.0\.0\.1:\d+/);
  assert.match(first.all!, /world down --dir .* --all/);
  const verify = /verify:\s+(cosign verify .*)$/m.exec(first.all!)?.[1];
  assert.ok(verify, 'the summary prints a cosign verify command');
  const [, ...args] = verify!.split(/\s+/);
  const v = await execa(toolPath('cosign'), args, { reject: false });
  assert.equal(v.exitCode, 0, `cosign verify failed: ${v.stderr}`);

  const second = await demo();
  assert.equal(second.exitCode, 0, second.all);
  assert.doesNotMatch(second.all!, /akmods [^:]+: building/, 'no akmods build in the second run');
  assert.match(second.all!, /UNCHANGED|built: none/);
  assert.match(second.all!, /worker already running/);
});
