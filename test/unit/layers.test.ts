import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync, gzipSync } from 'node:zlib';
import { LayerScan, normalizeTarPath, wantsModuleContent } from '../../core/layers.ts';
import type { LayerScanOptions, ModuleContent, SmokeResult, TarEntry } from '../../core/layers.ts';

const K1 = '6.18.9-200.fc43.x86_64';
const K2 = '6.18.10-200.fc43.x86_64';
const REF = `ghcr.io/o/kinoite-zfs-candidate@sha256:${'ab'.repeat(32)}`;

const f = (name: string): TarEntry => ({ name, type: 'file' });
const d = (name: string): TarEntry => ({ name, type: 'directory' });
const l = (name: string): TarEntry => ({ name, type: 'link' });
const s = (name: string): TarEntry => ({ name, type: 'symlink' });

/** A tar member together with the content the layer reader would hand over for it. */
type Item = TarEntry & { content?: ModuleContent };

/**
 * A minimal ELF64 little-endian relocatable object holding only `.modinfo` (the given fields)
 * and `.shstrtab`, enough for `readModinfo`.
 */
function elfModule(fields: string[]): Uint8Array {
  const enc = new TextEncoder();
  const modinfo = enc.encode(fields.map((x) => `${x}\0`).join(''));
  const names = enc.encode('\0.modinfo\0.shstrtab\0');
  const shoff = Math.ceil((64 + modinfo.length + names.length) / 8) * 8;
  const buf = new Uint8Array(shoff + 3 * 64);
  const v = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 1, true); // ET_REL
  v.setBigUint64(0x28, BigInt(shoff), true);
  v.setUint16(0x3a, 64, true);
  v.setUint16(0x3c, 3, true);
  v.setUint16(0x3e, 2, true);
  buf.set(modinfo, 64);
  buf.set(names, 64 + modinfo.length);
  const section = (i: number, name: number, type: number, offset: number, size: number) => {
    v.setUint32(shoff + i * 64, name, true);
    v.setUint32(shoff + i * 64 + 4, type, true);
    v.setBigUint64(shoff + i * 64 + 24, BigInt(offset), true);
    v.setBigUint64(shoff + i * 64 + 32, BigInt(size), true);
  };
  section(1, 1, 1, 64, modinfo.length);
  section(2, 10, 3, 64 + modinfo.length, names.length);
  return buf;
}

/** The `.modinfo` vermagic of a module built for `kernel`. */
const vermagic = (kernel: string) => `${kernel} SMP preempt mod_unload `;

/** A module file at `path` whose `.modinfo` says it was built for `builtFor`. */
function ko(path: string, builtFor: string, version = '2.4.4-1'): Item {
  const name = /spl\.ko/.test(path) ? 'spl' : 'zfs';
  return {
    name: path,
    type: 'file',
    content: {
      bytes: elfModule([`version=${version}`, 'license=CDDL', `name=${name}`, `vermagic=${vermagic(builtFor)}`]),
    },
  };
}

/** The `zfs.ko` path of `kernel` under usr/lib/modules. */
const zfsKoPath = (kernel: string) => `usr/lib/modules/${kernel}/extra/zfs/zfs.ko`;
/** The `spl.ko` path of `kernel` under usr/lib/modules. */
const splKoPath = (kernel: string) => `usr/lib/modules/${kernel}/extra/zfs/spl.ko`;

function scan(
  layers: Item[][],
  expectedKernels?: string[],
  opts: Omit<LayerScanOptions, 'expectedKernels'> = {},
): LayerScan {
  const sc = new LayerScan(expectedKernels ? { ...opts, expectedKernels } : opts);
  for (const layer of layers) {
    sc.beginLayer();
    for (const { content, ...e } of layer) sc.entry(e, content);
  }
  return sc;
}

/** A base layer with kernel directories and some unrelated files. */
function baseLayer(...kernels: string[]): TarEntry[] {
  const out: TarEntry[] = [
    d('./'),
    d('./usr/'),
    d('./usr/lib/'),
    d('./usr/lib/modules/'),
    f('./etc/os-release'),
    s('./lib'),
  ];
  for (const k of kernels) {
    out.push(d(`./usr/lib/modules/${k}/`), f(`./usr/lib/modules/${k}/vmlinuz`), d(`./usr/lib/modules/${k}/kernel/`));
  }
  return out;
}

/** A layer that installs ZFS userspace and a zfs.ko built for each of the given kernels. */
function zfsLayer(...kernels: string[]): Item[] {
  const out: Item[] = [d('usr/sbin/'), f('usr/sbin/zfs'), f('usr/sbin/zpool')];
  for (const k of kernels) out.push(d(`usr/lib/modules/${k}/extra/zfs/`), ko(zfsKoPath(k), k));
  return out;
}

/** What the passing verdict reports for a zfs.ko of `kernel` made by {@link ko}. */
const zfsReport = (kernel: string, path = zfsKoPath(kernel)) => ({
  path,
  vermagic: vermagic(kernel),
  version: '2.4.4-1',
});

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
  const sc = scan([
    [d('lib/modules/6.1.0-47-amd64'), f('usr/lib/modules/6.1.0-47-amd64/modules.dep'), f('lib/modules/7.1/x')],
  ]);
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
  assert.deepEqual(r, {
    ok: true,
    kernels: [K1, K2],
    commands: ['usr/sbin/zfs', 'usr/sbin/zpool'],
    modules: { [K1]: { zfs: zfsReport(K1) }, [K2]: { zfs: zfsReport(K2) } },
  });
});

test('LayerScan accepts commands under usr/bin, as hard links or symlinks', () => {
  const r = scan([baseLayer(K1), [s('usr/bin/zfs'), l('usr/sbin/zpool'), ko(zfsKoPath(K1), K1)]]).smoke(REF);
  assert.equal(r.ok, true);
  assert.ok(r.ok && r.commands.includes('usr/bin/zfs') && r.commands.includes('usr/sbin/zpool'));
});

test('LayerScan ignores commands outside usr/ and directories named like commands', () => {
  const r = scan([
    baseLayer(K1),
    [
      f('sbin/zfs'),
      f('bin/zpool'),
      d('usr/sbin/zfs'),
      f('usr/local/sbin/zpool'),
      f(`usr/lib/modules/${K1}/extra/zfs/zfs.ko`),
    ],
  ]).smoke(REF);
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
  assert.deepEqual(r, {
    ok: false,
    reason: 'no-payload',
    message: `No ZFS kernel payloads found in candidate image ${REF}`,
  });
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
  assert.deepEqual(sc.smoke(REF), {
    ok: true,
    kernels: [K2],
    commands: ['usr/sbin/zfs', 'usr/sbin/zpool'],
    modules: { [K2]: { zfs: zfsReport(K2) } },
  });
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
  const r = scan(
    [baseLayer(K1, K2), zfsLayer(K1, K2), [f(`usr/lib/modules/${K2}/extra/zfs/.wh.zfs.ko`)]],
    [K1, K2],
  ).smoke(REF);
  assert.ok(!r.ok && r.reason === 'missing-module');
  assert.deepEqual(r.ok ? [] : r.missingKernels, [K2]);
});

test('LayerScan: a whiteout of a kernel directory removes the kernel and its modules', () => {
  const sc = scan([baseLayer(K1, K2), zfsLayer(K1, K2), [f(`usr/lib/modules/.wh.${K1}`)]]);
  assert.deepEqual(sc.kernels(), [K2]);
  assert.deepEqual(sc.moduleKernels(), [K2]);
  const withExpected = scan([baseLayer(K1, K2), zfsLayer(K1, K2), [f(`usr/lib/modules/.wh.${K1}`)]], [K1, K2]).smoke(
    REF,
  );
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
    [
      d('usr/lib/modules/'),
      f('usr/lib/modules/.wh..wh..opq'),
      d(`usr/lib/modules/${K2}`),
      f(`usr/lib/modules/${K2}/extra/zfs/zfs.ko`),
    ],
  ]);
  assert.deepEqual(sc.kernels(), [K2]);
  assert.deepEqual(sc.moduleKernels(), [K2]);
});

test('LayerScan: an opaque marker after same-layer entries still keeps them', () => {
  const sc = scan([zfsLayer(K1), [f('usr/sbin/zfs'), f('usr/sbin/.wh..wh..opq')]]);
  assert.deepEqual(sc.commandPaths(), ['usr/sbin/zfs']);
});

test('LayerScan: an opaque kernel directory keeps the kernel but drops its older modules', () => {
  const sc = scan([
    baseLayer(K1),
    zfsLayer(K1),
    [f(`usr/lib/modules/${K1}/.wh..wh..opq`), f(`usr/lib/modules/${K1}/modules.dep`)],
  ]);
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
  const sc = scan([
    [
      f('usr/sbin/.wh.zfs'),
      f('usr/sbin/.wh.zpool'),
      f(`usr/lib/modules/${K1}/extra/zfs/.wh.zfs.ko`),
      f(`usr/lib/modules/.wh.${K1}`),
    ],
  ]);
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

// The vermagic check: every checked zfs.ko and spl.ko must be built for the kernel it sits under.

const wrongKernelNext =
  'The ZFS modules do not match the kernels they are installed for; rebuild the akmods for these kernels.';
/**
 * A verdict as text for assertion messages; an explicit message also keeps node's assert.ok from
 * re-parsing the (transpiled) source to describe a falsy value, which can stall under tsx.
 */
const verdict = (r: SmokeResult) => (r.ok ? `passed: ${JSON.stringify(r.modules)}` : `${r.reason}: ${r.message}`);
const unreadableNext =
  'Install the ZFS modules uncompressed (or gzip-compressed) and stripped of debug info so their kernel can be checked.';

test('wantsModuleContent selects zfs.ko and spl.ko, plain or .gz, under either modules root', () => {
  for (const yes of [
    `./usr/lib/modules/${K1}/extra/zfs/zfs.ko`,
    `lib/modules/${K1}/extra/zfs/spl.ko`,
    `/usr/lib/modules/${K1}/extra/zfs/zfs.ko.gz`,
  ]) {
    assert.equal(wantsModuleContent(yes), true, yes);
  }
  for (const no of [
    `usr/lib/modules/${K1}/extra/zfs/zfs.ko.xz`,
    `usr/lib/modules/${K1}/extra/zfs/spl.ko.zst`,
    `usr/lib/modules/${K1}/extra/zfs/icp.ko`,
    `usr/lib/modules/${K1}/kernel/zfs/zfs.ko`,
    `usr/lib/modules/${K1}/vmlinuz`,
    `usr/lib/modules/../modules/${K1}/extra/zfs/zfs.ko`,
    'opt/lib/modules/k/extra/zfs/zfs.ko',
    'usr/sbin/zfs',
  ]) {
    assert.equal(wantsModuleContent(no), false, no);
  }
});

test('LayerScan smoke passes when every zfs.ko and spl.ko is built for its kernel and reports them', () => {
  const r = scan([
    baseLayer(K1, K2),
    zfsLayer(K1, K2),
    [ko(splKoPath(K1), K1, '2.4.4-1'), ko(splKoPath(K2), K2, '2.4.4-1')],
  ]).smoke(REF);
  assert.deepEqual(r.ok ? r.modules : r.message, {
    [K1]: { zfs: zfsReport(K1), spl: { path: splKoPath(K1), vermagic: vermagic(K1), version: '2.4.4-1' } },
    [K2]: { zfs: zfsReport(K2), spl: { path: splKoPath(K2), vermagic: vermagic(K2), version: '2.4.4-1' } },
  });
});

test('LayerScan smoke passes without spl.ko and reports only zfs.ko', () => {
  const r = scan([baseLayer(K1), zfsLayer(K1)], [K1]).smoke(REF);
  assert.deepEqual(r.ok ? r.modules : r.message, { [K1]: { zfs: zfsReport(K1) } });
});

test('LayerScan smoke fails wrong-kernel naming both releases when two kernels swapped their modules', () => {
  const r = scan(
    [baseLayer(K1, K2), [f('usr/sbin/zfs'), f('usr/sbin/zpool'), ko(zfsKoPath(K1), K2), ko(zfsKoPath(K2), K1)]],
    [K1, K2],
  ).smoke(REF);
  assert.deepEqual(r, {
    ok: false,
    reason: 'wrong-kernel',
    moduleProblems: [
      { kernel: K1, path: zfsKoPath(K1), builtFor: K2 },
      { kernel: K2, path: zfsKoPath(K2), builtFor: K1 },
    ],
    message: `Candidate image ${REF}: ${zfsKoPath(K1)} was built for kernel ${K2}, not ${K1}; ${zfsKoPath(K2)} was built for kernel ${K1}, not ${K2}. ${wrongKernelNext}`,
  });
});

test('LayerScan smoke fails wrong-kernel for a Debian-style release in the vermagic', () => {
  const k = '6.1.0-47-cloud-amd64';
  const r = scan(
    [
      [
        f('usr/sbin/zfs'),
        f('usr/sbin/zpool'),
        ko(`usr/lib/modules/${k}/extra/zfs/zfs.ko`, '6.12.117+deb12-cloud-amd64'),
      ],
    ],
    [k],
  ).smoke(REF);
  assert.equal(
    r.ok ? 'passed' : r.message,
    `Candidate image ${REF}: usr/lib/modules/${k}/extra/zfs/zfs.ko was built for kernel 6.12.117+deb12-cloud-amd64, not ${k}. ${wrongKernelNext}`,
  );
});

test('LayerScan smoke fails wrong-kernel when only spl.ko is built for another kernel', () => {
  const r = scan([baseLayer(K1), zfsLayer(K1), [ko(splKoPath(K1), K2)]]).smoke(REF);
  assert.ok(!r.ok && r.reason === 'wrong-kernel', verdict(r));
  assert.deepEqual(r.moduleProblems, [{ kernel: K1, path: splKoPath(K1), builtFor: K2 }]);
});

test('LayerScan: a later layer module overrides an earlier one, in both directions', () => {
  const fixed = scan([baseLayer(K1), zfsLayer(K1), [ko(zfsKoPath(K1), K2)], [ko(zfsKoPath(K1), K1, '2.4.5-1')]]).smoke(
    REF,
  );
  assert.deepEqual(fixed.ok ? fixed.modules[K1] : fixed.message, { zfs: { ...zfsReport(K1), version: '2.4.5-1' } });
  const broken = scan([baseLayer(K1), zfsLayer(K1), [ko(zfsKoPath(K1), K2)]]).smoke(REF);
  assert.ok(!broken.ok && broken.reason === 'wrong-kernel', verdict(broken));
});

test('LayerScan: a whiteout drops a wrong module, and an opaque directory drops older ones', () => {
  const wh = scan([
    baseLayer(K1),
    zfsLayer(K1),
    [ko(splKoPath(K1), K2)],
    [f(`usr/lib/modules/${K1}/extra/zfs/.wh.spl.ko`)],
  ]).smoke(REF);
  assert.deepEqual(wh.ok ? wh.modules : wh.message, { [K1]: { zfs: zfsReport(K1) } });
  const opq = scan([
    baseLayer(K1),
    [f('usr/sbin/zfs'), f('usr/sbin/zpool'), ko(zfsKoPath(K1), K2), ko(splKoPath(K1), K2)],
    [f(`usr/lib/modules/${K1}/extra/zfs/.wh..wh..opq`), ko(zfsKoPath(K1), K1)],
  ]).smoke(REF);
  assert.deepEqual(opq.ok ? opq.modules : opq.message, { [K1]: { zfs: zfsReport(K1) } });
  // A whiteout of the whole kernel directory takes its (wrong) modules along.
  const kdir = scan([baseLayer(K1, K2), zfsLayer(K1), [ko(zfsKoPath(K2), K1)], [f(`usr/lib/modules/.wh.${K2}`)]]).smoke(
    REF,
  );
  assert.deepEqual(kdir.ok ? kdir.kernels : kdir.message, [K1]);
});

test('LayerScan ignores wrong modules of kernels that are not expected', () => {
  const r = scan([baseLayer(K1, K2), zfsLayer(K1), [ko(zfsKoPath(K2), K1)]], [K1]).smoke(REF);
  assert.deepEqual(r.ok ? r.kernels : r.message, [K1]);
});

test('LayerScan checks every visible zfs.ko form of a kernel, under lib/modules too', () => {
  const r = scan([
    [f('usr/sbin/zfs'), f('usr/sbin/zpool'), ko(zfsKoPath(K1), K1), ko(`lib/modules/${K1}/extra/zfs/zfs.ko`, K2)],
  ]).smoke(REF);
  assert.deepEqual(r.ok ? r.kernels : r.moduleProblems, [
    { kernel: K1, path: `lib/modules/${K1}/extra/zfs/zfs.ko`, builtFor: K2 },
  ]);
});

test('LayerScan smoke fails unreadable-module naming the path and the reason', () => {
  const cases: Array<[string, Item, string]> = [
    [
      'not ELF',
      {
        ...f(zfsKoPath(K1)),
        content: {
          bytes: new TextEncoder().encode('this is not a kernel module at all, it is a text file ....................'),
        },
      },
      'not an ELF file (no \\x7fELF magic)',
    ],
    [
      'too large',
      { ...f(zfsKoPath(K1)), content: { tooLarge: true, size: 111_149_056, limit: 67_108_864 } },
      'it is 111149056 bytes, over the 67108864-byte limit of what the smoke test reads into memory (is it built with debug info?)',
    ],
    ['no content', f(zfsKoPath(K1)), 'its content was not given to the scan (the layer reader was not asked for it)'],
    [
      'xz',
      f(`${zfsKoPath(K1)}.xz`),
      'cannot check the vermagic of a .xz-compressed module: not supported (only .ko and .ko.gz are read)',
    ],
    [
      'zst',
      { ...f(`${zfsKoPath(K1)}.zst`), content: { bytes: new Uint8Array(8) } },
      'cannot check the vermagic of a .zst-compressed module: not supported (only .ko and .ko.gz are read)',
    ],
    [
      'no vermagic',
      { ...f(zfsKoPath(K1)), content: { bytes: elfModule(['name=zfs', 'version=2.4.4-1']) } },
      'its .modinfo has no vermagic',
    ],
  ];
  for (const [what, item, why] of cases) {
    const r = scan([baseLayer(K1), [f('usr/sbin/zfs'), f('usr/sbin/zpool'), item]], [K1]).smoke(REF);
    assert.deepEqual(
      r,
      {
        ok: false,
        reason: 'unreadable-module',
        moduleProblems: [{ kernel: K1, path: normalizeTarPath(item.name), unreadable: why }],
        message: `Candidate image ${REF}: cannot check ${normalizeTarPath(item.name)}: ${why}. ${unreadableNext}`,
      },
      what,
    );
  }
});

test('LayerScan smoke reports wrong-kernel over unreadable and lists both problems', () => {
  const r = scan(
    [baseLayer(K1, K2), [f('usr/sbin/zfs'), f('usr/sbin/zpool'), f(`${zfsKoPath(K1)}.xz`), ko(zfsKoPath(K2), K1)]],
    [K1, K2],
  ).smoke(REF);
  assert.ok(!r.ok && r.reason === 'wrong-kernel', verdict(r));
  assert.deepEqual(
    r.moduleProblems?.map((p) => [p.kernel, p.builtFor ?? 'unreadable']),
    [
      [K1, 'unreadable'],
      [K2, K1],
    ],
  );
  assert.match(
    r.message,
    new RegExp(`cannot check ${zfsKoPath(K1)}\\.xz: .*; ${zfsKoPath(K2)} was built for kernel ${K1}, not ${K2}\\.`),
  );
});

test('LayerScan reads .ko.gz modules with the injected gunzip and fails them without it', () => {
  const gz = (path: string, builtFor: string): Item => {
    const plain = ko(path, builtFor).content as { bytes: Uint8Array };
    return { ...f(path), content: { bytes: gzipSync(plain.bytes) } };
  };
  const layers = [baseLayer(K1), [f('usr/sbin/zfs'), f('usr/sbin/zpool'), gz(`${zfsKoPath(K1)}.gz`, K1)]];
  const ok = scan(layers, [K1], { gunzip: (b) => gunzipSync(b) }).smoke(REF);
  assert.deepEqual(ok.ok ? ok.modules : ok.message, { [K1]: { zfs: zfsReport(K1, `${zfsKoPath(K1)}.gz`) } });
  const wrong = scan([baseLayer(K1), [f('usr/sbin/zfs'), f('usr/sbin/zpool'), gz(`${zfsKoPath(K1)}.gz`, K2)]], [K1], {
    gunzip: (b) => gunzipSync(b),
  }).smoke(REF);
  assert.ok(!wrong.ok && wrong.reason === 'wrong-kernel', verdict(wrong));
  // With two good forms of one module, the verdict reports the first by path.
  const both = scan([...layers, [ko(zfsKoPath(K1), K1, '2.4.4-2')]], [K1], { gunzip: (b) => gunzipSync(b) }).smoke(REF);
  assert.deepEqual(both.ok ? both.modules : both.message, { [K1]: { zfs: { ...zfsReport(K1), version: '2.4.4-2' } } });
  const noGunzip = scan(layers, [K1]).smoke(REF);
  assert.deepEqual(noGunzip.ok ? [] : noGunzip.moduleProblems?.map((p) => p.unreadable), [
    'it is gzip-compressed and this scan was given no gunzip',
  ]);
  const corrupt = scan(
    [
      baseLayer(K1),
      [
        f('usr/sbin/zfs'),
        f('usr/sbin/zpool'),
        { ...f(`${zfsKoPath(K1)}.gz`), content: { bytes: new Uint8Array([1, 2, 3]) } },
      ],
    ],
    [K1],
    { gunzip: (b) => gunzipSync(b) },
  ).smoke(REF);
  assert.match(corrupt.ok ? '' : corrupt.message, /cannot check .*zfs\.ko\.gz: it does not decompress as gzip: /);
});

test('LayerScan follows a hard link or symlink to another checked module and fails one pointing elsewhere', () => {
  const cmds = [f('usr/sbin/zfs'), f('usr/sbin/zpool')];
  const hard = scan([
    baseLayer(K1),
    [
      ...cmds,
      ko(zfsKoPath(K1), K1),
      { name: `./lib/modules/${K1}/extra/zfs/zfs.ko`, type: 'link', linkname: `./${zfsKoPath(K1)}` },
    ],
  ]).smoke(REF);
  assert.equal(hard.ok, true, hard.ok ? '' : hard.message);
  // A symlink is resolved in the final image: here K2's zfs.ko points at K1's, built for K1.
  const sym = scan(
    [
      baseLayer(K1, K2),
      [
        ...cmds,
        ko(zfsKoPath(K1), K1),
        { name: zfsKoPath(K2), type: 'symlink', linkname: `../../../${K1}/extra/zfs/zfs.ko` },
      ],
    ],
    [K1, K2],
  ).smoke(REF);
  assert.deepEqual(sym.ok ? sym.kernels : sym.moduleProblems, [{ kernel: K2, path: zfsKoPath(K2), builtFor: K1 }]);
  const same = scan([
    baseLayer(K1),
    [
      ...cmds,
      ko(`${zfsKoPath(K1)}`, K1),
      { name: `${zfsKoPath(K1)}.gz`, type: 'symlink', linkname: `/${zfsKoPath(K1)}` },
    ],
  ]).smoke(REF);
  assert.equal(same.ok, true, same.ok ? '' : same.message);
  const away = scan([
    baseLayer(K1),
    [...cmds, { name: zfsKoPath(K1), type: 'symlink', linkname: '/opt/zfs/zfs.ko' }],
  ]).smoke(REF);
  assert.deepEqual(away.ok ? [] : away.moduleProblems?.map((p) => p.unreadable), [
    'it is a symlink to /opt/zfs/zfs.ko, which is not a ZFS module file of the image; the smoke test reads only regular files',
  ]);
  const hardAway = scan([
    baseLayer(K1),
    [...cmds, { name: zfsKoPath(K1), type: 'link', linkname: 'opt/zfs.ko' }],
  ]).smoke(REF);
  assert.deepEqual(hardAway.ok ? [] : hardAway.moduleProblems?.map((p) => p.unreadable), [
    'it is a hard link to opt/zfs.ko, which is not a ZFS module file the scan read',
  ]);
  const loop = scan([
    baseLayer(K1),
    [
      ...cmds,
      { name: zfsKoPath(K1), type: 'symlink', linkname: 'spl.ko' },
      { name: splKoPath(K1), type: 'symlink', linkname: 'zfs.ko' },
    ],
  ]).smoke(REF);
  assert.match(loop.ok ? '' : loop.message, /symlink chain longer than 8 hops/);
});
