/**
 * The benchmark script runs to the end and prints its table. Only the shape is checked (rows and
 * numeric cells): timings and ratios depend on the machine and are never asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../support/harness.ts';

const ROWS = [
  'kernel resolution (memo hit)',
  'kernel resolution (first scan)',
  'smoke test',
  'akmods merge',
  'promotion copy',
  'unchanged run (registry writes)',
];
const NUMBER = String.raw`\d+(?:\.\d+)?(?:e-?\d+)?`;
const SIDE = new RegExp(String.raw`^${NUMBER} (?:B|KiB|MiB), \d+ req, ${NUMBER} s$`);

test(
  'bench --quick exits 0 and prints a table with every measurement row and numeric cells',
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
    for (const [name, [ours, naive, bytesRatio, timeRatio]] of rows) {
      assert.match(ours!, SIDE, `${name}: ours cell`);
      // --quick skips only the slow naive sides that pull, build or copy with podman, buildah and skopeo.
      if (naive === 'skipped (--quick)') {
        assert.equal(bytesRatio, '-', `${name}: no ratio without a naive side`);
        continue;
      }
      assert.match(naive!, SIDE, `${name}: naive cell`);
      assert.match(bytesRatio!, new RegExp(`^(?:${NUMBER}|∞)$`), `${name}: bytes ratio`);
      assert.match(timeRatio!, new RegExp(`^(?:${NUMBER}|∞)$`), `${name}: time ratio`);
    }
    assert.ok(
      ['smoke test', 'unchanged run (registry writes)'].every((n) => rows.get(n)?.[1] !== 'skipped (--quick)'),
      'the in-process naive sides are measured even with --quick',
    );
  },
);
