import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { canonicalJson, inputsHash, sha256Hex, sha256HexBytes, utf8Encode } from '../../core/hash.ts';
import { hashInputs, type RunInputs } from '../../core/pipeline.ts';

const nodeSha = (s: string | Uint8Array) => createHash('sha256').update(s).digest('hex');

// Known answers, written out (FIPS 180-4 examples; the others from Python's hashlib), so a change
// of implementation cannot move a hash: inputs hashes are recorded in histories and image labels.
const KNOWN: [string, string][] = [
  ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  [
    'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  ],
  ['a'.repeat(1_000_000), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0'],
  ['café', '850f7dc43910ff890f8879c0ed26fe697c93a067ad93a7d50f466a7028a9bf4e'],
  ['日本語', '77710aedc74ecfa33685e33a6c7df5cc83004da1bdcef7fb280f5c2b2e97e0a5'],
  ['👍🏽', '01a5f86b6044eee022d2ee109e38bd9d845e7a650fb9f4a413e60aeb858ecae4'],
  ['Grüße, ZFS 🐧 auf Kinoite', 'b412844e56ea4b96004a6641b27eaae49872fd0531b2d87c7ac921a434d0f4b4'],
];

test('sha256Hex gives the known answers: empty, abc, two blocks, a million a, non-ASCII', () => {
  for (const [text, hex] of KNOWN) assert.equal(sha256Hex(text), hex, JSON.stringify(text.slice(0, 20)));
});

test('sha256HexBytes gives the known answer for 768 bytes of every value', () => {
  const bytes = Uint8Array.from({ length: 768 }, (_, i) => i % 256);
  assert.equal(sha256HexBytes(bytes), 'f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363');
});

test('inputsHash of a fixed value is a known answer', () => {
  const v = { kernels: ['6.18.5-200.fc43.x86_64', '6.17.7-300.fc43.x86_64'], zfs: '2.4.4', café: true };
  assert.equal(
    canonicalJson(v),
    '{"café":true,"kernels":["6.18.5-200.fc43.x86_64","6.17.7-300.fc43.x86_64"],"zfs":"2.4.4"}',
  );
  assert.equal(inputsHash(v), nodeSha(canonicalJson(v)));
  assert.equal(inputsHash(v), 'fdebabef326172edac84c9b93066150a877e5fa0d71394547625bd74802c884b');
});

test('every inputs hash recorded in a committed history is recomputed from its inputs', async () => {
  const dir = new URL('../history/', import.meta.url);
  let checked = 0;
  for (const file of (await readdir(dir)).filter((f) => f.endsWith('.json'))) {
    const history = JSON.parse(await readFile(new URL(file, dir), 'utf8')) as {
      events: { workflowExecutionCompletedEventAttributes?: { result?: { payloads?: { data: string }[] } } }[];
    };
    for (const e of history.events) {
      const data = e.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0]?.data;
      if (!data) continue;
      const result = JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as {
        inputs?: RunInputs;
        inputsHash?: string;
      };
      if (!result.inputs || !result.inputsHash) continue;
      assert.equal(hashInputs(result.inputs), result.inputsHash, file);
      checked++;
    }
  }
  assert.ok(checked > 0, 'at least one committed history records inputs and their hash');
});

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
