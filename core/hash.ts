/**
 * Deterministic hashing for workflow code: SHA-256 and canonical JSON, with no platform crypto,
 * so the same inputs give the same hash inside the Temporal sandbox (no node:crypto there), in
 * activities and in tests. SHA-256 is @noble/hashes (maintained, pure JavaScript, no dependencies).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

/**
 * UTF-8 bytes of a string. Lone surrogates become U+FFFD, as `TextEncoder` does, so the result
 * matches Node's `Buffer.from(text, 'utf8')` for every input.
 */
export function utf8Encode(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else {
        c = 0xfffd;
      }
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      c = 0xfffd;
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return Uint8Array.from(out);
}

/** SHA-256 of some bytes, as 64 lowercase hex digits (FIPS 180-4). */
export function sha256HexBytes(bytes: Uint8Array): string {
  return bytesToHex(sha256(bytes));
}

/** SHA-256 of the UTF-8 encoding of `text`, as 64 lowercase hex digits. */
export function sha256Hex(text: string): string {
  return sha256HexBytes(utf8Encode(text));
}

/**
 * Canonical JSON: object keys sorted (by UTF-16 code unit, recursively), arrays kept in order,
 * no whitespace, `undefined` object fields dropped (and `undefined` array items written as `null`,
 * as `JSON.stringify` does).
 *
 * @throws Error for non-finite numbers, bigints, functions, symbols and cycles, which have no
 * stable JSON form.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, new Set<object>(), '$');
}

function encode(value: unknown, seen: Set<object>, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) {
        throw new Error(`canonicalJson: ${path} is ${String(value)}, which has no JSON form; pass a finite number`);
      }
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new Error(`canonicalJson: ${path} is a ${typeof value}, which has no JSON form`);
  }
  const obj = value as object;
  if (seen.has(obj)) throw new Error(`canonicalJson: ${path} is a circular reference`);
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      return `[${obj.map((v, i) => (v === undefined ? 'null' : encode(v, seen, `${path}[${i}]`))).join(',')}]`;
    }
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return encode(toJSON.call(obj), seen, path);
    const rec = obj as Record<string, unknown>;
    const keys = Object.keys(rec)
      .filter((k) => rec[k] !== undefined)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${keys.map((k) => `${JSON.stringify(k)}:${encode(rec[k], seen, `${path}.${k}`)}`).join(',')}}`;
  } finally {
    seen.delete(obj);
  }
}

/** Hash of a run's inputs: `sha256Hex(canonicalJson(inputs))`; equal inputs give equal hashes regardless of key order. */
export function inputsHash(inputs: object): string {
  return sha256Hex(canonicalJson(inputs));
}
