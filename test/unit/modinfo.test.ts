import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModinfoError, readModinfo, readModinfoEntries, vermagicRelease } from '../../core/modinfo.ts';

/** One section of a synthetic ELF: its name, type and content. */
interface Section {
  name: string;
  /** sh_type; 1 = PROGBITS, 3 = STRTAB, 8 = NOBITS. */
  type?: number;
  data?: Uint8Array;
}

/** Knobs to build a broken or unusual ELF. */
interface ElfOptions {
  elfClass?: number;
  elfData?: number;
  elfType?: number;
  /** Store the section count and string-table index in section 0 (extended numbering). */
  extended?: boolean;
  /** Cut the file to this many bytes. */
  truncateTo?: number;
  /** Override e_shoff. */
  shoff?: number;
}

const enc = new TextEncoder();

/** `.modinfo` content as the kernel's MODULE_INFO lays it out: NUL-terminated `key=value` strings. */
function modinfoBytes(...fields: string[]): Uint8Array {
  return enc.encode(fields.map((f) => `${f}\0`).join(''));
}

/**
 * A minimal ELF64 little-endian relocatable object: header, section contents, `.shstrtab`, then
 * the section header table (section 0 is the null section, `.shstrtab` the last one).
 */
function buildElf(sections: Section[], opts: ElfOptions = {}): Uint8Array {
  const all: Section[] = [...sections, { name: '.shstrtab', type: 3 }];
  let names = '\0';
  const nameOff = all.map((s) => {
    const off = names.length;
    names += `${s.name}\0`;
    return off;
  });
  all[all.length - 1]!.data = enc.encode(names);
  let at = 64;
  const offsets = all.map((s) => {
    const off = at;
    if (s.type !== 8) at += s.data?.length ?? 0;
    return off;
  });
  const shoff = Math.ceil(at / 8) * 8;
  const shnum = all.length + 1;
  const size = shoff + shnum * 64;
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, opts.elfClass ?? 2, opts.elfData ?? 1, 1, 0]);
  v.setUint16(16, opts.elfType ?? 1, true); // e_type ET_REL
  v.setUint16(18, 62, true); // e_machine x86_64
  v.setUint32(20, 1, true); // e_version
  v.setBigUint64(0x28, BigInt(opts.shoff ?? shoff), true);
  v.setUint16(0x34, 64, true); // e_ehsize
  v.setUint16(0x3a, 64, true); // e_shentsize
  v.setUint16(0x3c, opts.extended ? 0 : shnum, true);
  v.setUint16(0x3e, opts.extended ? 0xffff : shnum - 1, true);
  all.forEach((s, i) => {
    if (s.type !== 8 && s.data) buf.set(s.data, offsets[i]!);
    const h = shoff + (i + 1) * 64;
    v.setUint32(h, nameOff[i]!, true);
    v.setUint32(h + 4, s.type ?? 1, true);
    v.setBigUint64(h + 24, BigInt(offsets[i]!), true);
    v.setBigUint64(h + 32, BigInt(s.data?.length ?? 0), true);
    v.setBigUint64(h + 48, 1n, true);
  });
  if (opts.extended) {
    v.setBigUint64(shoff + 32, BigInt(shnum), true); // section 0 sh_size: the real count
    v.setUint32(shoff + 40, shnum - 1, true); // section 0 sh_link: the real shstrndx
  }
  return opts.truncateTo === undefined ? buf : buf.slice(0, opts.truncateTo);
}

const ZFS_MODINFO = modinfoBytes(
  'version=2.2.7-1',
  'license=CDDL',
  'alias=devname:zfs',
  'alias=char-major-10-249',
  'depends=spl',
  'name=zfs',
  'vermagic=6.12.117+deb12-cloud-amd64 SMP preempt mod_unload modversions ',
);

/** A module-like object with `.modinfo` among the usual other sections. */
function zfsKo(opts?: ElfOptions): Uint8Array {
  return buildElf(
    [
      { name: '.text', data: new Uint8Array([0xc3, 0x90, 0x90, 0x90]) },
      { name: '.modinfox', data: modinfoBytes('vermagic=decoy') },
      { name: '.bss', type: 8, data: new Uint8Array(4096) },
      { name: '.modinfo', data: ZFS_MODINFO },
      { name: '.gnu.linkonce.this_module', data: new Uint8Array(16) },
    ],
    opts,
  );
}

test('readModinfo returns vermagic, version and name of a module', () => {
  const info = readModinfo(zfsKo());
  assert.equal(info.vermagic, '6.12.117+deb12-cloud-amd64 SMP preempt mod_unload modversions ');
  assert.equal(info.version, '2.2.7-1');
  assert.equal(info.name, 'zfs');
  assert.equal(info.depends, 'spl');
});

test('readModinfo keeps the first value of a repeated key; readModinfoEntries keeps every pair in order', () => {
  assert.equal(readModinfo(zfsKo()).alias, 'devname:zfs');
  assert.deepEqual(
    readModinfoEntries(zfsKo()).filter(([k]) => k === 'alias'),
    [
      ['alias', 'devname:zfs'],
      ['alias', 'char-major-10-249'],
    ],
  );
  assert.equal(readModinfoEntries(zfsKo()).length, 7);
});

test('readModinfo skips NUL padding and strings without =, and keeps = inside values', () => {
  const data = enc.encode('\0\0license=GPL\0\0\0garbage\0parm=zfs_arc_max:Max arc size (u64)=0\0=novalue\0\0');
  const info = readModinfo(buildElf([{ name: '.modinfo', data }]));
  assert.deepEqual(info, { license: 'GPL', parm: 'zfs_arc_max:Max arc size (u64)=0' });
});

test('readModinfo treats a __proto__ key as plain data', () => {
  const info = readModinfo(buildElf([{ name: '.modinfo', data: modinfoBytes('__proto__=x', 'name=zfs') }]));
  assert.equal(Object.getPrototypeOf(info), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(info, '__proto__')?.value, 'x');
  assert.equal(info.name, 'zfs');
});

test('readModinfo reads an object that uses ELF extended section numbering', () => {
  assert.equal(readModinfo(zfsKo({ extended: true })).name, 'zfs');
});

test('readModinfo accepts an empty .modinfo and a Uint8Array view at an offset', () => {
  assert.deepEqual(readModinfo(buildElf([{ name: '.modinfo', data: new Uint8Array(0) }])), {});
  const ko = zfsKo();
  const padded = new Uint8Array(ko.length + 13);
  padded.set(ko, 13);
  assert.equal(readModinfo(padded.subarray(13)).name, 'zfs');
});

test('readModinfo throws ModinfoError naming the problem for input that is not a module', () => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['text', enc.encode('#!/bin/sh\necho not a module\n'.repeat(4)), /^not an ELF file \(no \\x7fELF magic\)$/],
    ['empty', new Uint8Array(0), /^not an ELF file \(only 0 bytes\)$/],
    ['short header', zfsKo().slice(0, 20), /ELF header is truncated \(20 of 64 bytes\)/],
    ['32-bit', zfsKo({ elfClass: 1 }), /ELF class 1 data 1 is not 64-bit little-endian/],
    ['big-endian', zfsKo({ elfData: 2 }), /ELF class 2 data 2 is not 64-bit little-endian/],
    ['executable', zfsKo({ elfType: 2 }), /ELF type 2 is not a relocatable object/],
    ['no section table', zfsKo({ shoff: 0 }), /no section header table/],
    [
      'no .modinfo',
      buildElf([
        { name: '.text', data: new Uint8Array(8) },
        { name: '.modinfox', data: modinfoBytes('vermagic=x') },
      ]),
      /no \.modinfo section among the 4 sections/,
    ],
    [
      'NOBITS .modinfo',
      buildElf([{ name: '.modinfo', type: 8, data: new Uint8Array(8) }]),
      /\.modinfo section has no data in the file/,
    ],
    [
      'truncated section table',
      zfsKo({ truncateTo: zfsKo().length - 10 }),
      /section header \d+ at offset \d+ lies past the end of the file .* truncated/,
    ],
  ];
  for (const [what, bytes, message] of cases) {
    assert.throws(
      () => readModinfo(bytes),
      (err: unknown) => err instanceof ModinfoError && message.test(err.message),
      what,
    );
  }
});

test('readModinfo throws when .modinfo points past the end of the file', () => {
  const ko = zfsKo();
  const v = new DataView(ko.buffer);
  const shoff = Number(v.getBigUint64(0x28, true));
  // Section 4 is .modinfo: make its size run past the end.
  v.setBigUint64(shoff + 4 * 64 + 32, BigInt(ko.length), true);
  assert.throws(() => readModinfo(ko), /the \.modinfo section \(offset \d+, \d+ bytes\) lies past the end of the file/);
});

test('vermagicRelease is the first space-separated word of a vermagic', () => {
  assert.equal(
    vermagicRelease('6.12.117+deb12-cloud-amd64 SMP preempt mod_unload modversions'),
    '6.12.117+deb12-cloud-amd64',
  );
  assert.equal(vermagicRelease('6.18.9-200.fc43.x86_64 SMP preempt mod_unload '), '6.18.9-200.fc43.x86_64');
  assert.equal(vermagicRelease('  6.1.0-47-cloud-amd64\tSMP'), '6.1.0-47-cloud-amd64');
  assert.equal(vermagicRelease('6.1.0-47-cloud-amd64'), '6.1.0-47-cloud-amd64');
  assert.equal(vermagicRelease('   '), '');
});

test('readModinfo agrees with the world fixture module and with modinfo(8) when installed', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'modinfo-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ko = join(dir, 'zfs.ko');
  const script = join(import.meta.dirname, '../../world/fixtures/zfs-source/module/fixture-ko.sh');
  // The fixture takes <out> <kernel> <version>, and the module name as a 4th argument in newer versions.
  try {
    execFileSync('sh', [script, ko, '6.1.0-47-cloud-amd64', '2.2.7', 'zfs'], { stdio: 'pipe' });
  } catch {
    execFileSync('sh', [script, ko, '6.1.0-47-cloud-amd64', '2.2.7'], { stdio: 'pipe' });
  }
  const info = readModinfo(readFileSync(ko));
  assert.equal(vermagicRelease(info.vermagic ?? ''), '6.1.0-47-cloud-amd64');
  assert.equal(info.version, '2.2.7');
  assert.equal(info.name, 'zfs');
  let modinfo: (field: string) => string;
  try {
    execFileSync('modinfo', ['--version'], { stdio: 'pipe' });
    modinfo = (field) => execFileSync('modinfo', ['-F', field, ko], { encoding: 'utf8' }).replace(/\n$/, '');
  } catch {
    t.diagnostic('modinfo(8) not installed (Debian package kmod): compared with the fixture only');
    return;
  }
  assert.equal(info.vermagic, modinfo('vermagic'));
  assert.equal(info.version, modinfo('version'));
  assert.equal(info.license, modinfo('license'));
});
