/**
 * The pipeline's metrics text, from stream states: values, labels, an unreadable stream, and the
 * exposition format (every sample belongs to a family declared with HELP and TYPE).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderPipelineMetrics, PIPELINE_METRICS as M, type StreamFacts } from '../../core/metrics.ts';

const now = new Date('2026-12-02T12:00:00Z');

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${want}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const promoted: StreamFacts = {
  counters: { runs: 5, promoted: 3, failed: 2 },
  lastGood: { at: '2026-12-01T12:00:00Z' },
  kernelLag: [
    { kernel: '6.17.7-300.fc43.x86_64', firstSeen: '2026-11-20T00:00:00Z', firstPromoted: '2026-11-20T01:00:00Z' },
    { kernel: '6.18.5-200.fc43.x86_64', firstSeen: '2026-12-02T10:00:00Z' },
  ],
  failedInARow: 2,
  stageSeconds: { compose: 12.5, akmods: 300 },
  notifications: { sent: 4, failed: 1 },
};

test('a stream with releases, a waiting kernel and failures: every series and value', () => {
  const text = renderPipelineMetrics([{ stream: 'kinoite', state: promoted }], now);
  const s = { stream: 'kinoite' };
  assert.equal(sample(text, M.up, s), 1);
  assert.equal(sample(text, M.runs, { ...s, outcome: 'promoted' }), 3);
  assert.equal(sample(text, M.runs, { ...s, outcome: 'failed' }), 2);
  assert.equal(sample(text, M.runs, { ...s, outcome: 'runs' }), undefined, 'the all-runs counter is not an outcome');
  assert.equal(sample(text, M.stableTimestamp, s), Date.parse('2026-12-01T12:00:00Z') / 1000);
  assert.equal(sample(text, M.stableAge, s), 86_400);
  // The newest kernel, first seen two hours ago, is not stable yet: its lag grows with the clock.
  assert.equal(sample(text, M.kernelLag, { ...s, kernel: '6.18.5-200.fc43.x86_64' }), 7200);
  assert.equal(sample(text, M.kernelWaiting, s), 1);
  assert.equal(sample(text, M.blocked, s), 0);
  assert.equal(sample(text, M.blockedSeconds, s), 0);
  assert.equal(sample(text, M.approvals, s), 0);
  assert.equal(sample(text, M.failedInARow, s), 2);
  assert.equal(sample(text, M.stageDuration, { ...s, stage: 'compose' }), 12.5);
  assert.equal(sample(text, M.stageDuration, { ...s, stage: 'akmods' }), 300);
  assert.equal(sample(text, M.notificationsSent, s), 4);
  assert.equal(sample(text, M.notificationsFailed, s), 1);
});

test('a held stream names the blocking kernel; a promoted newest kernel has a fixed lag', () => {
  const state: StreamFacts = {
    counters: { blocked: 1 },
    compatHold: { kernel: '6.19.1-100.fc43.x86_64', zfsVersion: '2.4.4', since: '2026-12-01T00:00:00Z' },
    parked: { runWorkflowId: 'r' },
    kernelLag: [
      { kernel: '6.17.7-300.fc43.x86_64', firstSeen: '2026-11-20T00:00:00Z', firstPromoted: '2026-11-20T01:30:00Z' },
    ],
  };
  const text = renderPipelineMetrics([{ stream: 'x', state }], now);
  assert.equal(sample(text, M.blocked, { stream: 'x', kernel: '6.19.1-100.fc43.x86_64', zfs: '2.4.4' }), 1);
  assert.equal(sample(text, M.blockedSeconds, { stream: 'x' }), 36 * 3600);
  assert.equal(sample(text, M.kernelLag, { stream: 'x', kernel: '6.17.7-300.fc43.x86_64' }), 5400);
  assert.equal(sample(text, M.kernelWaiting, { stream: 'x' }), 0);
  assert.equal(sample(text, M.approvals, { stream: 'x' }), 1);
  assert.equal(sample(text, M.stableAge, { stream: 'x' }), undefined, 'no release yet: no age');
});

test('a stream whose state cannot be read is down and has no other series', () => {
  const text = renderPipelineMetrics([{ stream: 'gone', error: 'not found' }], now);
  assert.equal(sample(text, M.up, { stream: 'gone' }), 0);
  assert.ok(!text.split('\n').some((l) => !l.startsWith('#') && l.includes('stream="gone"') && !l.startsWith(M.up)));
});

test('the text is valid exposition: each sample follows its HELP and TYPE, label values are escaped', () => {
  const text = renderPipelineMetrics(
    [
      { stream: 'a"b\\c', state: promoted },
      { stream: 'b', state: { counters: {} } },
    ],
    now,
  );
  assert.ok(text.endsWith('\n'));
  let declared = '';
  for (const line of text.trimEnd().split('\n')) {
    const help = /^# HELP (\S+) \S/.exec(line);
    if (help) {
      declared = help[1]!;
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      assert.match(line, new RegExp(`^# TYPE ${declared} (counter|gauge)$`));
      continue;
    }
    assert.match(line, /^[a-z_]+\{([a-z]+="([^"\\]|\\.)*",?)*\} -?[0-9.]+$/, line);
    assert.equal(line.slice(0, line.indexOf('{')), declared, `${line} follows the HELP of ${declared}`);
  }
  assert.ok(text.includes('stream="a\\"b\\\\c"'));
});
