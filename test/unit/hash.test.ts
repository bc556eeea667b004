import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { canonicalJson, inputsHash, sha256Hex, sha256HexBytes, utf8Encode } from '../../core/hash.ts';

const nodeSha = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex');

test('sha256Hex matches node:crypto for the empty string and abc', () => {
  assert.equal(sha256Hex(''), nodeSha(''));
  assert.equal(sha256Hex('abc'), nodeSha('abc'));
});

test('sha256Hex matches the FIPS 180-4 two-block vector', () => {
  const s = 'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq';
  assert.equal(sha256Hex(s), nodeSha(s));
});

test('sha256Hex matches node:crypto for a 1000-character string', () => {
  const s = Array.from({ length: 1000 }, (_, i) => String.fromCharCode(32 + ((i * 7) % 95))).join('');
  assert.equal(s.length, 1000);
  assert.equal(sha256Hex(s), nodeSha(s));
});

test('sha256Hex matches node:crypto at every padding boundary length 0..200', () => {
  for (let n = 0; n <= 200; n++) {
    const s = 'x'.repeat(n);
    assert.equal(sha256Hex(s), nodeSha(s), `length ${n}`);
  }
});

test('sha256Hex matches node:crypto for non-ASCII text', () => {
  for (const s of ['Ä', 'café', '日本語', '👍🏽', 'mixed ascii and ß and 😀 and \u0000 nul', '\u07ff\u0800\uffff']) {
    assert.equal(sha256Hex(s), nodeSha(s), JSON.stringify(s));
  }
});

test('utf8Encode matches Buffer for lone surrogates (replaced by U+FFFD)', () => {
  for (const s of ['\ud800', 'a\udc00b', '\ud83d', '\ud83d\ud83d\ude00']) {
    assert.deepEqual(Array.from(utf8Encode(s)), Array.from(Buffer.from(s, 'utf8')), JSON.stringify(s));
    assert.equal(sha256Hex(s), nodeSha(Buffer.from(s, 'utf8')));
  }
});

test('sha256HexBytes matches node:crypto for all byte values', () => {
  const bytes = Uint8Array.from({ length: 256 * 3 }, (_, i) => i % 256);
  assert.equal(sha256HexBytes(bytes), nodeSha(bytes));
});

test('canonicalJson sorts object keys recursively and keeps array order', () => {
  const v = { b: 1, a: { d: [3, 1, { z: 1, y: 2 }], c: 'x' } };
  assert.equal(canonicalJson(v), '{"a":{"c":"x","d":[3,1,{"y":2,"z":1}]},"b":1}');
});

test('canonicalJson is the same for objects that differ only in key order', () => {
  assert.equal(canonicalJson({ x: 1, y: [1, 2], z: { q: true } }), canonicalJson({ z: { q: true }, y: [1, 2], x: 1 }));
});

test('canonicalJson drops undefined fields and writes null array holes', () => {
  assert.equal(canonicalJson({ a: undefined, b: null, c: [undefined, 1] }), '{"b":null,"c":[null,1]}');
});

test('canonicalJson writes scalars like JSON.stringify', () => {
  for (const v of ['x"y\\z\n', 0, -0, 1.5, 1e21, true, false, null, 'é', '\u2028']) {
    assert.equal(canonicalJson(v), JSON.stringify(v));
  }
});

test('canonicalJson sorts keys by code unit, not locale', () => {
  assert.equal(canonicalJson({ b: 1, B: 2, a: 3, _: 4, '10': 5, '9': 6 }), '{"10":5,"9":6,"B":2,"_":4,"a":3,"b":1}');
});

test('canonicalJson throws on non-finite numbers naming the path', () => {
  assert.throws(() => canonicalJson({ a: { b: NaN } }), /\$\.a\.b is NaN/);
  assert.throws(() => canonicalJson([Infinity]), /Infinity/);
  assert.throws(() => canonicalJson(-Infinity), /-Infinity/);
});

test('canonicalJson throws on values without a JSON form', () => {
  assert.throws(() => canonicalJson({ a: 1n }), /bigint/);
  assert.throws(() => canonicalJson({ a: () => 1 }), /function/);
  assert.throws(() => canonicalJson(Symbol('x')), /symbol/);
});

test('canonicalJson throws on cycles but allows shared references', () => {
  const a: Record<string, unknown> = {};
  a.self = a;
  assert.throws(() => canonicalJson(a), /circular/);
  const shared = { x: 1 };
  assert.equal(canonicalJson({ p: shared, q: shared }), '{"p":{"x":1},"q":{"x":1}}');
});

test('canonicalJson uses toJSON when present', () => {
  assert.equal(canonicalJson({ d: new Date(0) }), '{"d":"1970-01-01T00:00:00.000Z"}');
});

test('canonicalJson output parses back to an equal value', () => {
  const v = { kernels: ['6.18.9', '6.18.10'], base: { digest: 'sha256:00', tag: 'latest' }, n: 3, ok: false };
  assert.deepEqual(JSON.parse(canonicalJson(v)), v);
});

test('inputsHash is sha256 of the canonical JSON', () => {
  const v = { b: 2, a: 1 };
  assert.equal(inputsHash(v), nodeSha('{"a":1,"b":2}'));
});

test('inputsHash ignores key order and undefined fields but not array order', () => {
  assert.equal(inputsHash({ a: 1, b: [1, 2], c: undefined }), inputsHash({ b: [1, 2], a: 1 }));
  assert.notEqual(inputsHash({ b: [1, 2] }), inputsHash({ b: [2, 1] }));
  assert.notEqual(inputsHash({ a: '1' }), inputsHash({ a: 1 }));
});
