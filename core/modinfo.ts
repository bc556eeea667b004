/**
 * Reader of a Linux kernel module's `.modinfo` section: the `key=value` strings `modinfo` prints
 * (`vermagic`, `version`, `name`, `alias`, …), taken straight from the module's bytes.
 *
 * Why here and not `modinfo -F`: the smoke test streams layers from the registry and never
 * extracts files, and this code must stay pure (no I/O, no Node imports) so the layer scan that
 * uses it remains unit-testable. Only what a module needs is read: an ELF64 little-endian
 * relocatable object, its section header table, the section-name string table and `.modinfo`.
 * Compressed modules (`.ko.gz`, `.ko.xz`, `.ko.zst`) must be decompressed by the caller.
 */

/** A `.modinfo` that could not be read: not an ELF64 LE relocatable object, truncated, or no `.modinfo`. */
export class ModinfoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModinfoError';
  }
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46] as const;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_REL = 1;
const ELF64_EHDR_SIZE = 64;
const ELF64_SHDR_SIZE = 64;
const SHT_NOBITS = 8;
/** `e_shstrndx` value meaning "the real index is in section 0's sh_link" (extended numbering). */
const SHN_XINDEX = 0xffff;

/**
 * The fields of a module's `.modinfo` section, in file order, e.g.
 * `[['license', 'CDDL'], ['alias', 'devname:zfs'], ['alias', 'char-major-10-249'], …]`.
 * Keys repeat (`alias`, `depends` for some builds, `parm`), so this keeps every pair.
 * Throws {@link ModinfoError} naming the problem when `bytes` is not an ELF64 little-endian
 * relocatable object, is truncated, or has no `.modinfo` section.
 */
export function readModinfoEntries(bytes: Uint8Array): Array<[key: string, value: string]> {
  const section = modinfoSection(bytes);
  const out: Array<[string, string]> = [];
  // Strings are NUL-terminated and may be separated by NUL padding (alignment of each entry).
  const decoder = new TextDecoder('utf-8');
  let start = 0;
  for (let i = 0; i <= section.length; i++) {
    if (i < section.length && section[i] !== 0) continue;
    if (i > start) {
      const s = decoder.decode(section.subarray(start, i));
      const eq = s.indexOf('=');
      // The kernel itself only matches `key=` prefixes, so a string without `=` carries nothing.
      if (eq > 0) out.push([s.slice(0, eq), s.slice(eq + 1)]);
    }
    start = i + 1;
  }
  return out;
}

/**
 * The fields of a module's `.modinfo` section as an object; for a repeated key the first value
 * wins (use {@link readModinfoEntries} for all of them). Throws {@link ModinfoError} like it.
 */
export function readModinfo(bytes: Uint8Array): Record<string, string> {
  const first = new Map<string, string>();
  for (const [k, v] of readModinfoEntries(bytes)) if (!first.has(k)) first.set(k, v);
  // fromEntries defines own properties, so a key such as `__proto__` stays plain data.
  return Object.fromEntries(first);
}

/**
 * The kernel release a `vermagic` string names: its first space-separated word
 * (`6.12.117+deb12-cloud-amd64 SMP preempt mod_unload modversions` → `6.12.117+deb12-cloud-amd64`).
 * Returns `''` for a blank string, which never equals a kernel release.
 */
export function vermagicRelease(vermagic: string): string {
  return vermagic.trim().split(/\s+/)[0] ?? '';
}

/** The bytes of the `.modinfo` section, found through the section header table. */
function modinfoSection(bytes: Uint8Array): Uint8Array {
  if (bytes.length < ELF_MAGIC.length || ELF_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new ModinfoError(
      `not an ELF file (${bytes.length < ELF_MAGIC.length ? `only ${bytes.length} bytes` : 'no \\x7fELF magic'})`,
    );
  }
  if (bytes.length < ELF64_EHDR_SIZE)
    throw new ModinfoError(`the ELF header is truncated (${bytes.length} of ${ELF64_EHDR_SIZE} bytes)`);
  if (bytes[4] !== ELFCLASS64 || bytes[5] !== ELFDATA2LSB) {
    throw new ModinfoError(
      `ELF class ${bytes[4]} data ${bytes[5]} is not 64-bit little-endian; only x86_64/aarch64-style modules are read`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint16(16, true);
  if (type !== ET_REL)
    throw new ModinfoError(`ELF type ${type} is not a relocatable object (ET_REL), so not a kernel module`);
  const shoff = u64(view, 0x28, 'e_shoff');
  const shentsize = view.getUint16(0x3a, true);
  let shnum = view.getUint16(0x3c, true);
  let shstrndx = view.getUint16(0x3e, true);
  if (shoff === 0) throw new ModinfoError('the ELF file has no section header table (e_shoff is 0)');
  if (shentsize < ELF64_SHDR_SIZE)
    throw new ModinfoError(`e_shentsize ${shentsize} is smaller than an ELF64 section header (64)`);
  const header = (index: number) => {
    const at = shoff + index * shentsize;
    if (at + ELF64_SHDR_SIZE > bytes.length) {
      throw new ModinfoError(
        `section header ${index} at offset ${at} lies past the end of the file (${bytes.length} bytes); the file is truncated`,
      );
    }
    return {
      name: view.getUint32(at, true),
      type: view.getUint32(at + 4, true),
      offset: u64(view, at + 24, `sh_offset of section ${index}`),
      size: u64(view, at + 32, `sh_size of section ${index}`),
      link: view.getUint32(at + 40, true),
    };
  };
  // Extended numbering (ELF gABI): with 0xff00 or more sections the real count and string-table
  // index live in section 0. Large objects built with -ffunction-sections can get there.
  if (shnum === 0) shnum = header(0).size;
  if (shstrndx === SHN_XINDEX) shstrndx = header(0).link;
  if (shstrndx === 0 || shstrndx >= shnum)
    throw new ModinfoError(`e_shstrndx ${shstrndx} does not name one of the ${shnum} sections`);
  const names = sectionBytes(bytes, header(shstrndx), 'section name table');
  for (let i = 1; i < shnum; i++) {
    const h = header(i);
    if (cString(names, h.name) !== '.modinfo') continue;
    if (h.type === SHT_NOBITS) throw new ModinfoError('the .modinfo section has no data in the file (SHT_NOBITS)');
    return sectionBytes(bytes, h, '.modinfo section');
  }
  throw new ModinfoError(`no .modinfo section among the ${shnum} sections; the file is not a kernel module`);
}

function sectionBytes(bytes: Uint8Array, h: { offset: number; size: number }, what: string): Uint8Array {
  if (h.offset + h.size > bytes.length) {
    throw new ModinfoError(
      `the ${what} (offset ${h.offset}, ${h.size} bytes) lies past the end of the file (${bytes.length} bytes); the file is truncated`,
    );
  }
  return bytes.subarray(h.offset, h.offset + h.size);
}

/** The NUL-terminated string at `offset` of a string table ('' when out of range). */
function cString(table: Uint8Array, offset: number): string {
  if (offset >= table.length) return '';
  let end = table.indexOf(0, offset);
  if (end < 0) end = table.length;
  let s = '';
  for (let i = offset; i < end; i++) s += String.fromCharCode(table[i]!);
  return s;
}

/** A 64-bit offset or size as a number; anything beyond 2^53 cannot fit in a buffer anyway. */
function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new ModinfoError(`${what} (${v}) is implausibly large; the file is corrupt`);
  return Number(v);
}
