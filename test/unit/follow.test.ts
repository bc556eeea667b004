import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressPrinter } from '../../client/follow.ts';
import type { RunProgress } from '../../core/pipeline.ts';

test('run --wait prints each new "no build host" waiting time of the running stage once', () => {
  const lines: string[] = [];
  const printer = new ProgressPrinter((l) => lines.push(l));
  const progress = (waiting?: string[]): RunProgress => ({
    stream: 's',
    stage: 'compose',
    stages: [{ stage: 'compose', status: 'running', startedAt: '2026-11-30T00:00:00.000Z' }],
    kernels: [],
    akmods: [],
    waiting,
  });
  printer.update(progress());
  printer.update(progress(['no build host has taken this for 15 minutes: compose r:t']));
  printer.update(progress(['no build host has taken this for 15 minutes: compose r:t']));
  printer.update(progress(['no build host has taken this for 30 minutes: compose r:t']));
  assert.deepEqual(lines, [
    '▶ compose',
    '  no build host has taken this for 15 minutes: compose r:t',
    '  no build host has taken this for 30 minutes: compose r:t',
  ]);
});
