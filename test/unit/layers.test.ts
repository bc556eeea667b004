import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LayerScan, normalizeTarPath } from '../../core/layers.ts';
import type { TarEntry } from '../../core/layers.ts';

const K1 = '6.18.9-200.fc43.x86_64';
const K2 = '6.18.10-200.fc43.x86_64';
const REF = `ghcr.io/o/kinoite-zfs-candidate@sha256:${'ab'.repeat(32)}`;

const f = (name: string): TarEntry => ({ name, type: 'file' });
const d = (name: string): TarEntry => ({ name, type: 'directory' });
const l = (name: string): TarEntry => ({ name, type: 'link' });
const s = (name: string): TarEntry => ({ name, type: 'symlink' });

function scan(layers: TarEntry[][], expectedKernels?: string[]): LayerScan {
  const sc = new LayerScan(expectedKernels ? { expectedKernels } : {});
  for (const layer of layers) {
    sc.beginLayer();
    for (const e of layer) sc.entry(e);
  }
  return sc;
}

/** A base layer with kernel directories and some unrelated files. */
function baseLayer(...kernels: string[]): TarEntry[] {
  const out: TarEntry[] = [d('./'), d('./usr/'), d('./usr/lib/'), d('./usr/lib/modules/'), f('./etc/os-release'), s('./lib')];
  for (const k of kernels) {
    out.push(d(`./usr/lib/modules/${k}/`), f(`./usr/lib/modules/${k}/vmlinuz`), d(`./usr/lib/modules/${k}/kernel/`));
  }
  return out;
}

/** A layer that installs ZFS userspace and modules for the given kernels. */
function zfsLayer(...kernels: string[]): TarEntry[] {
  const out: TarEntry[] = [d('usr/sbin/'), f('usr/sbin/zfs'), f('usr/sbin/zpool')];
  for (const k of kernels) out.push(d(`usr/lib/modules/${k}/extra/zfs/`), f(`usr/lib/modules/${k}/extra/zfs/zfs.ko.xz`));
  return out;
}

test('normalizeTarPath strips ./ and /, collapses // and . segments and trailing slashes', () => {
  assert.equal(normalizeTarPath('./usr/lib/modules/'), 'usr/lib/modules');
  assert.equal(normalizeTarPath('/usr//sbin/./zfs'), 'usr/sbin/zfs');
  assert.equal(normalizeTarPath('././usr'), 'usr');
  assert.equal(normalizeTarPath('usr/sbin/zfs'), 'usr/sbin/zfs');
});

test('normalizeTarPath rejects .. anywhere and the root itself', () => {
  assert.equal(normalizeTarPath('../usr/sbin/zfs'), undefined);
  assert.equal(normalizeTarPath('usr/../usr/sbin/zfs'), undefined);
  assert.equal(normalizeTarPath('./'), undefined);
  assert.equal(normalizeTarPath(''), undefined);
  assert.equal(normalizeTarPath('/'), undefined);
});

test('LayerScan lists kernel directories natural-sorted', () => {
  const sc = scan([baseLayer(K2, K1)]);
  assert.deepEqual(sc.kernels(), [K1, K2]);
});

test('LayerScan counts usr/lib/modules and lib/modules kernels once each', () => {
  const sc = scan([[d('lib/modules/6.1.0-47-amd64'), f('usr/lib/modules/6.1.0-47-amd64/modules.dep'), f('lib/modules/7.1/x')]]);
  assert.deepEqual(sc.kernels(), ['6.1.0-47-amd64', '7.1']);
});

test('LayerScan does not count a plain file at modules/<name> as a kernel', () => {
  const sc = scan([[f('usr/lib/modules/README'), s('usr/lib/modules/latest'), d('usr/lib/modules')]]);
  assert.deepEqual(sc.kernels(), []);
});

test('LayerScan marks a kernel present from a file beneath it without a directory entry', () => {
  assert.deepEqual(scan([[f(`usr/lib/modules/${K1}/modules.dep`)]]).kernels(), [K1]);
});

test('LayerScan smoke passes with commands and a module for every payload kernel', () => {
  const r = scan([baseLayer(K1, K2), zfsLayer(K1, K2)]).smoke(REF);
  assert.deepEqual(r, { ok: true, kernels: [K1, K2], commands: ['usr/sbin/zfs', 'usr/sbin/zpool'] });
});

test('LayerScan accepts commands under usr/bin, as hard links or symlinks', () => {
  const r = scan([baseLayer(K1), [s('usr/bin/zfs'), l('usr/sbin/zpool'), f(`usr/lib/modules/${K1}/extra/zfs/zfs.ko`)]]).smoke(REF);
  assert.equal(r.ok, true);
  assert.ok(r.ok && r.commands.includes('usr/bin/zfs') && r.commands.includes('usr/sbin/zpool'));
});

test('LayerScan ignores commands outside usr/ and directories named like commands', () => {
  const r = scan([baseLayer(K1), [f('sbin/zfs'), f('bin/zpool'), d('usr/sbin/zfs'), f('usr/local/sbin/zpool'), f(`usr/lib/modules/${K1}/extra/zfs/zfs.ko`)]]).smoke(REF);
  assert.deepEqual(r, {
    ok: false,
    reason: 'missing-command',
    missingCommand: 'zfs',
    message: `Candidate image ${REF} is missing expected command zfs`,
  });
});

test('LayerScan reports the first missing command alphabetically', () => {
  const r = scan([[f('usr/sbin/zfs'), f(`usr/lib/modules/${K1}/extra/zfs/zfs.ko`)]]).smoke(REF);
  assert.ok(!r.ok && r.reason === 'missing-command' && r.missingCommand === 'zpool');
  assert.equal(r.ok ? '' : r.message, `Candidate image ${REF} is missing expected command zpool`);
});

test('LayerScan with commands but no module payload fails with no-payload', () => {
  const r = scan([baseLayer(K1), [f('usr/sbin/zfs'), f('usr/sbin/zpool')]]).smoke(REF);
  assert.deepEqual(r, { ok: false, reason: 'no-payload', message: `No ZFS kernel payloads found in candidate image ${REF}` });
});

test('LayerScan fails missing-module listing every expected kernel without zfs.ko', () => {
  const r = scan([baseLayer(K1, K2), zfsLayer(K1)], [K2, K1, '7.1.0-1.fc43.x86_64']).smoke(REF);
  assert.deepEqual(r, {
    ok: false,
    reason: 'missing-module',
    missingKernels: [K2, '7.1.0-1.fc43.x86_64'],
    message: `Candidate image is missing a ZFS module payload for kernels ${K2} 7.1.0-1.fc43.x86_64: ${REF}`,
  });
});

test('LayerScan checks only expected kernels when given and ignores modules for others', () => {
  const sc = scan([baseLayer(K1, K2), zfsLayer(K1, K2)], [K2]);
  assert.deepEqual(sc.smoke(REF), { ok: true, kernels: [K2], commands: ['usr/sbin/zfs', 'usr/sbin/zpool'] });
  assert.deepEqual(sc.moduleKernels(), [K2]);
});

test('LayerScan treats an empty expected list as not given', () => {
  const r = scan([zfsLayer(K1)], []).smoke(REF);
  assert.ok(r.ok && r.kernels.length === 1 && r.kernels[0] === K1);
});

test('LayerScan accepts module paths with and without compression suffix and under lib/modules', () => {
  const layer = [
    f('usr/sbin/zfs'),
    f('usr/sbin/zpool'),
    f('usr/lib/modules/a.1/extra/zfs/zfs.ko'),
    f('usr/lib/modules/b.1/extra/zfs/zfs.ko.zst'),
    f('lib/modules/c.1/extra/zfs/zfs.ko.gz'),
    s('usr/lib/modules/d.1/extra/zfs/zfs.ko.xz'),
  ];
  assert.deepEqual(scan([layer]).moduleKernels(), ['a.1', 'b.1', 'c.1', 'd.1']);
});

test('LayerScan ignores look-alike module paths', () => {
  const layer = [
    d('usr/lib/modules/a.1/extra/zfs/zfs.ko'),
    f('usr/lib/modules/b.1/extra/zfs/zfs.ko.xz/x'),
    f('usr/lib/modules/c.1/extra/zfs/spl.ko'),
    f('usr/lib/modules/d.1/extra/zfs.ko'),
    f('usr/lib/modules/e.1/kernel/zfs/zfs.ko'),
    f('usr/lib/modules/f.1/extra/zfs/zfs.kox'),
    f('usr/lib/modules/g.1/extra/zfs/zfs.ko.xz.bak'),
    f('opt/lib/modules/h.1/extra/zfs/zfs.ko'),
    { name: 'usr/lib/modules/i.1/extra/zfs/zfs.ko', type: 'other' as const },
    f('usr/lib/modules/../modules/j.1/extra/zfs/zfs.ko'),
  ];
  assert.deepEqual(scan([layer]).moduleKernels(), []);
});

test('LayerScan: a whiteout of a file removes it from an earlier layer', () => {
  const r = scan([baseLayer(K1), zfsLayer(K1), [f('usr/sbin/.wh.zpool')]]).smoke(REF);
  assert.ok(!r.ok && r.missingCommand === 'zpool');
});

test('LayerScan: a whiteout of a module file removes that kernel payload', () => {
  const r = scan([baseLayer(K1, K2), zfsLayer(K1, K2), [f(`usr/lib/modules/${K2}/extra/zfs/.wh.zfs.ko.xz`)]], [K1, K2]).smoke(REF);
  assert.ok(!r.ok && r.reason === 'missing-module');
  assert.deepEqual(r.ok ? [] : r.missingKernels, [K2]);
});

test('LayerScan: a whiteout of a kernel directory removes the kernel and its modules', () => {
  const sc = scan([baseLayer(K1, K2), zfsLayer(K1, K2), [f(`usr/lib/modules/.wh.${K1}`)]]);
  assert.deepEqual(sc.kernels(), [K2]);
  assert.deepEqual(sc.moduleKernels(), [K2]);
  const withExpected = scan([baseLayer(K1, K2), zfsLayer(K1, K2), [f(`usr/lib/modules/.wh.${K1}`)]], [K1, K2]).smoke(REF);
  assert.ok(!withExpected.ok && withExpected.reason === 'missing-module');
  assert.deepEqual(withExpected.ok ? [] : withExpected.missingKernels, [K1]);
});

test('LayerScan: a whiteout of an ancestor directory removes everything beneath it', () => {
  const sc = scan([baseLayer(K1), zfsLayer(K1), [f('usr/lib/.wh.modules'), f('usr/.wh.sbin')]]);
  assert.deepEqual(sc.kernels(), []);
  assert.deepEqual(sc.commandPaths(), []);
  const all = scan([baseLayer(K1), zfsLayer(K1), [f('.wh.usr')]]);
  assert.deepEqual(all.kernels(), []);
  assert.deepEqual(all.commandPaths(), []);
});

test('LayerScan: a whiteout does not remove a sibling with a longer name', () => {
  const sc = scan([[d(`usr/lib/modules/${K1}`), d(`usr/lib/modules/${K1}-debug`)], [f(`usr/lib/modules/.wh.${K1}`)]]);
  assert.deepEqual(sc.kernels(), [`${K1}-debug`]);
});

test('LayerScan: a whiteout never removes entries of its own layer, in either order', () => {
  const before = scan([zfsLayer(K1), [f('usr/sbin/zpool'), f('usr/sbin/.wh.zpool')]]);
  assert.ok(before.commandPaths().includes('usr/sbin/zpool'));
  const after = scan([zfsLayer(K1), [f('usr/sbin/.wh.zpool'), f('usr/sbin/zpool')]]);
  assert.ok(after.commandPaths().includes('usr/sbin/zpool'));
});

test('LayerScan: a re-added file after a whiteout in a later layer is visible again', () => {
  const sc = scan([zfsLayer(K1), [f('usr/sbin/.wh.zfs')], [f('usr/sbin/zfs')]]);
  assert.equal(sc.smoke(REF).ok, true);
});

test('LayerScan: an opaque directory hides earlier layers but keeps its own layer', () => {
  const sc = scan([
    baseLayer(K1, K2),
    zfsLayer(K1, K2),
    [d('usr/lib/modules/'), f('usr/lib/modules/.wh..wh..opq'), d(`usr/lib/modules/${K2}`), f(`usr/lib/modules/${K2}/extra/zfs/zfs.ko`)],
  ]);
  assert.deepEqual(sc.kernels(), [K2]);
  assert.deepEqual(sc.moduleKernels(), [K2]);
});

test('LayerScan: an opaque marker after same-layer entries still keeps them', () => {
  const sc = scan([zfsLayer(K1), [f('usr/sbin/zfs'), f('usr/sbin/.wh..wh..opq')]]);
  assert.deepEqual(sc.commandPaths(), ['usr/sbin/zfs']);
});

test('LayerScan: an opaque kernel directory keeps the kernel but drops its older modules', () => {
  const sc = scan([baseLayer(K1), zfsLayer(K1), [f(`usr/lib/modules/${K1}/.wh..wh..opq`), f(`usr/lib/modules/${K1}/modules.dep`)]]);
  assert.deepEqual(sc.kernels(), [K1]);
  assert.deepEqual(sc.moduleKernels(), []);
});

test('LayerScan: an opaque marker alone keeps its directory visible', () => {
  const sc = scan([baseLayer(K1), [f(`usr/lib/modules/${K1}/.wh..wh..opq`)]]);
  assert.deepEqual(sc.kernels(), [K1]);
});

test('LayerScan: an opaque root hides every earlier layer', () => {
  const sc = scan([baseLayer(K1), zfsLayer(K1), [f('.wh..wh..opq'), f('etc/x')]]);
  assert.deepEqual(sc.kernels(), []);
  assert.deepEqual(sc.commandPaths(), []);
});

test('LayerScan: whiteout entries never count as payload', () => {
  const sc = scan([[f('usr/sbin/.wh.zfs'), f('usr/sbin/.wh.zpool'), f(`usr/lib/modules/${K1}/extra/zfs/.wh.zfs.ko`), f(`usr/lib/modules/.wh.${K1}`)]]);
  assert.deepEqual(sc.kernels(), []);
  assert.deepEqual(sc.commandPaths(), []);
  assert.deepEqual(sc.moduleKernels(), []);
});

test('LayerScan ignores aufs .wh..wh. bookkeeping entries', () => {
  const sc = scan([zfsLayer(K1), [f('usr/sbin/.wh..wh.plnk'), d('.wh..wh.orph')]]);
  assert.equal(sc.smoke(REF).ok, true);
});

test('LayerScan: a file replacing a kernel directory hides its older contents', () => {
  const sc = scan([baseLayer(K1), zfsLayer(K1), [f(`usr/lib/modules/${K1}`)]]);
  assert.deepEqual(sc.kernels(), []);
  assert.deepEqual(sc.moduleKernels(), []);
});

test('LayerScan: a symlink replacing usr/sbin hides the commands beneath it', () => {
  const sc = scan([zfsLayer(K1), [s('usr/sbin')]]);
  assert.deepEqual(sc.commandPaths(), []);
});

test('LayerScan: a directory entry over an existing directory changes nothing', () => {
  const sc = scan([zfsLayer(K1), [d('usr/sbin'), d(`usr/lib/modules/${K1}`)]]);
  assert.equal(sc.smoke(REF).ok, true);
});

test('LayerScan: a directory replacing a command file removes it as payload', () => {
  const sc = scan([zfsLayer(K1), [d('usr/sbin/zpool')]]);
  assert.deepEqual(sc.commandPaths(), ['usr/sbin/zfs']);
});

test('LayerScan ignores entries with .. and tolerates entries before the first beginLayer', () => {
  const sc = new LayerScan();
  sc.entry(f('usr/sbin/zfs'));
  sc.entry(f('../usr/sbin/zpool'));
  sc.entry(f('usr/sbin/../sbin/zpool'));
  assert.deepEqual(sc.commandPaths(), ['usr/sbin/zfs']);
});

test('LayerScan handles an image with many unrelated files quickly', () => {
  const sc = new LayerScan();
  sc.beginLayer();
  for (let i = 0; i < 20000; i++) sc.entry(f(`usr/share/doc/pkg${i}/README`));
  for (let i = 0; i < 5000; i++) sc.entry(f(`usr/lib/modules/${K1}/kernel/drivers/m${i}.ko.xz`));
  sc.beginLayer();
  for (let i = 0; i < 5000; i++) sc.entry(f(`usr/lib/modules/${K2}/kernel/drivers/m${i}.ko.xz`));
  for (let i = 0; i < 2000; i++) sc.entry(f(`usr/share/doc/.wh.pkg${i}`));
  sc.entry(f(`usr/lib/modules/.wh.${K1}`));
  assert.deepEqual(sc.kernels(), [K2]);
});

test('LayerScan: a file replacing an empty kernel directory removes the kernel', () => {
  const sc = scan([[d(`usr/lib/modules/${K1}`)], [f(`usr/lib/modules/${K1}`)]]);
  assert.deepEqual(sc.kernels(), []);
});
