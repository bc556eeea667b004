/**
 * The compatibility hold and the kernel-to-stable lag (core/compat-hold.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holdAfterRun, holdText, lagText, recheck, updateLag } from '../../core/compat-hold.ts';

const K61 = '6.1.0-57-cloud-amd64';
const K612 = '6.12.117+deb12-cloud-amd64';
const blocked = { kernel: K612, max: '6.10', zfsVersion: '2.2.6', kernels: [K61, K612] };

test('a blocked run begins the hold, a second one keeps its start, a promotion ends it, other outcomes leave it', () => {
  const a = holdAfterRun(undefined, { outcome: 'blocked', blocked }, 't1');
  assert.equal(a.transition, 'blocked');
  assert.deepEqual(a.hold, { since: 't1', ...blocked });
  const b = holdAfterRun(a.hold, { outcome: 'blocked', blocked }, 't2');
  assert.equal(b.transition, undefined);
  assert.equal(b.hold!.since, 't1');
  assert.deepEqual(holdAfterRun(b.hold, { outcome: 'failed' }, 't3'), { hold: b.hold });
  assert.deepEqual(holdAfterRun(b.hold, { outcome: 'promoted' }, 't4'), { hold: undefined, transition: 'unblocked' });
  assert.deepEqual(holdAfterRun(undefined, { outcome: 'promoted' }, 't4'), { hold: undefined });
});

test('a re-check starts a run only when the release supports every held kernel', () => {
  const hold = holdAfterRun(undefined, { outcome: 'blocked', blocked }, 't1').hold!;
  const still = recheck(hold, { version: '2.2.6', linuxMin: '4.18', linuxMax: '6.10' }, false, 't2');
  assert.equal(still.start, false);
  assert.deepEqual(still.hold.lastCheck, { at: 't2', zfsVersion: '2.2.6', verdict: 'blocked' });
  assert.equal(recheck(hold, { version: '2.2.7', linuxMin: '4.18', linuxMax: '6.12' }, false, 't3').start, true);
  assert.equal(
    recheck(hold, { version: '2.2.6', linuxMin: '4.18', linuxMax: '6.10' }, true, 't3').start,
    true,
    'experimental builds are allowed when the stream says so',
  );
});

test('the hold says since when and which series it waits for', () => {
  const hold = recheck(
    holdAfterRun(undefined, { outcome: 'blocked', blocked }, '2026-12-01T06:00:00Z').hold!,
    { version: '2.2.6', linuxMax: '6.10' },
    false,
    '2026-12-01T12:00:00Z',
  ).hold;
  assert.equal(
    holdText(hold),
    `held by compatibility since 2026-12-01T06:00:00Z, waiting for an OpenZFS release supporting 6.12 (kernel ${K612}; zfs-2.2.6 supports up to 6.10); last re-check 2026-12-01T12:00:00Z: zfs-2.2.6 blocked`,
  );
});

test("the lag runs from a kernel's first sight to its first promotion", () => {
  let lag = updateLag([], { kernels: [K61], promoted: true }, '2026-12-01T00:00:00Z');
  lag = updateLag(lag, { kernels: [K61, K612], promoted: false }, '2026-12-02T00:00:00Z');
  lag = updateLag(lag, { kernels: [K61, K612], promoted: false }, '2026-12-03T00:00:00Z');
  assert.deepEqual(lag, [
    { kernel: K61, firstSeen: '2026-12-01T00:00:00Z', firstPromoted: '2026-12-01T00:00:00Z' },
    { kernel: K612, firstSeen: '2026-12-02T00:00:00Z' },
  ]);
  assert.equal(
    lagText(lag[1]!, '2026-12-04T03:00:00Z'),
    `${K612}: first seen 2026-12-02T00:00:00Z, not stable yet (2d 3h so far)`,
  );
  lag = updateLag(lag, { kernels: [K61, K612], promoted: true }, '2026-12-04T06:30:00Z');
  assert.equal(
    lagText(lag[1]!, '2026-12-09T00:00:00Z'),
    `${K612}: first seen 2026-12-02T00:00:00Z, stable 2026-12-04T06:30:00Z (lag 2d 6h)`,
  );
  assert.equal(lag[0]!.firstPromoted, '2026-12-01T00:00:00Z', 'a later promotion does not move the first one');
});
