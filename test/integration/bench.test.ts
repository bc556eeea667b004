/**
 * The registry benchmark runs to the end and prints its section. Only the shape is checked (rows
 * and numeric cells): timings and ratios depend on the machine and are never asserted. The quick
 * mode skips the original's podman/buildah sides; the skopeo promotion copies are still measured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../support/harness.ts';

const ROWS = [
  'kernel scan, base already in local storage',
  'kernel scan, base not in local storage',
  'smoke test',
  'akmods merge',
  'promotion copy, same registry, fresh runner',
  'promotion copy, same registry, skopeo cache warm',
  'unchanged run, akmods cache hit (registry writes)',
];
const NUMBER = String.raw`\d+(?:\.\d+)?(?:e-?\d+)?`;
const SIDE = new RegExp(String.raw`^${NUMBER} (?:B|KiB|MiB), \d+ req, ${NUMBER} s$`);
const RATIO = String.raw`(?:${NUMBER}|∞)`;
const RATIOS = new RegExp(String.raw`^bytes ${RATIO}, time ${RATIO}$`);

test(
  'bench --quick exits 0 and prints a section with every measurement row, numeric cells and a reason per original side',
  { timeout: 20 * 60_000 },
  async () => {
    const r = await execa(process.execPath, ['--import', 'tsx', join(repoRoot, 'scripts', 'bench.ts'), '--quick'], {
      cwd: repoRoot,
      reject: false,
      all: true,
    });
    assert.equal(r.exitCode, 0, r.all);
    const rows = new Map<string, string[]>();
    for (const line of r.stdout.split('\n')) {
      if (!line.startsWith('| ') || line.startsWith('| ---') || line.startsWith('| measurement')) continue;
      const cells = line
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim());
      rows.set(cells[0]!, cells.slice(1));
    }
    assert.deepEqual([...rows.keys()], ROWS, r.stdout);
    for (const [name, [ours, original, ratios]] of rows) {
      assert.match(ours!, SIDE, `${name}: ours cell`);
      // Every row names, before the table, why its original side is the original's own way.
      assert.match(
        r.stdout,
        new RegExp(`^- \\*\\*${name.replace(/[()]/g, '\\$&')}\\*\\*: \\S`, 'm'),
        `${name}: reason`,
      );
      if (original === 'skipped (--quick)') {
        assert.equal(ratios, '-', `${name}: no ratio without the original's side`);
        continue;
      }
      assert.match(original!, SIDE, `${name}: the original's cell`);
      assert.match(ratios!, RATIOS, `${name}: ratios`);
    }
    assert.ok(
      ROWS.filter((n) => n.startsWith('promotion copy')).every((n) => rows.get(n)?.[1] !== 'skipped (--quick)'),
      'the skopeo promotion copies are measured even with --quick',
    );
    assert.match(r.stdout, /Skopeo or our code for the promotion copy/, 'the skopeo verdict is written down');
  },
);
