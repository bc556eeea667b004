/**
 * The zstd layer decompressor on real zstd bytes made by the zstd CLI: one frame, many frames,
 * skippable frames between and after them (the shape of a zstd:chunked layer), any chunking of
 * the input, and corrupt or truncated input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ZstdFormatError, createZstdDecompress } from '../../activities/zstd-stream.ts';
import { zstdFrame } from '../support/zstd-cli.ts';

/** A skippable frame (RFC 8878 §3.1.2): magic 0x184D2A5n, little-endian size, payload. */
function skippable(n: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x184d2a50 + n, 0);
  head.writeUInt32LE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

/** Decompresses `input` fed in chunks of `chunkBytes`. */
async function decompress(input: Buffer, chunkBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < input.length; at += chunkBytes) chunks.push(input.subarray(at, at + chunkBytes));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    createZstdDecompress(),
    new Writable({
      write(chunk: Buffer, _enc, done) {
        out.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(out);
}

/** Text-like content (compresses well, so frames hold compressed blocks) and incompressible content (raw blocks). */
const TEXT = Buffer.from(Array.from({ length: 40000 }, (_, i) => `usr/lib/modules/6.18.${i}/extra/zfs.ko\n`).join(''));
const NOISE = randomBytes(300 * 1024);

test('decodes a single frame made by the zstd CLI, whatever the chunking of the input', async () => {
  const frame = await zstdFrame(TEXT, '-19', '--check');
  for (const size of [7, 2048, 65536, frame.length]) {
    assert.ok((await decompress(frame, size)).equals(TEXT), `chunks of ${size} bytes`);
  }
  const small = TEXT.subarray(0, 5000);
  assert.ok((await decompress(await zstdFrame(small), 1)).equals(small), 'chunks of 1 byte');
});

test('decodes concatenated frames with skippable frames between and after them, as zstd:chunked has', async () => {
  const parts = [TEXT, NOISE, Buffer.from('a small file\n'), Buffer.alloc(0)];
  const frames = await Promise.all(parts.map((p, i) => zstdFrame(p, i % 2 ? '--no-check' : '--check')));
  const stream = Buffer.concat([
    frames[0]!,
    skippable(0, Buffer.from('{"toc":"between frames"}')),
    frames[1]!,
    frames[2]!,
    frames[3]!,
    // zstd:chunked ends with its table of contents and a footer in skippable frames.
    skippable(8, randomBytes(5000)),
    skippable(15, Buffer.alloc(0)),
  ]);
  for (const size of [13, 4096, 65536]) {
    assert.ok((await decompress(stream, size)).equals(Buffer.concat(parts)), `chunks of ${size} bytes`);
  }
});

test('an empty input decodes to nothing', async () => {
  assert.equal((await decompress(Buffer.alloc(0), 1)).length, 0);
});

test('bytes that are not zstd fail with ZSTD_INVALID_DATA', async () => {
  await assert.rejects(decompress(Buffer.from('\x1f\x8b\x08\x00 this is gzip, not zstd'), 1024), (err: unknown) => {
    assert.ok(err instanceof ZstdFormatError);
    assert.equal(err.code, 'ZSTD_INVALID_DATA');
    return true;
  });
});

test('a stream that ends inside a frame fails with ZSTD_UNEXPECTED_EOF, however it is chunked', async () => {
  const frame = await zstdFrame(TEXT);
  for (const size of [100, 65536]) {
    await assert.rejects(decompress(frame.subarray(0, frame.length - 100), size), (err: unknown) => {
      assert.ok(err instanceof ZstdFormatError, String(err));
      assert.equal(err.code, 'ZSTD_UNEXPECTED_EOF');
      return true;
    });
  }
});

test('output follows the reader: 1 GiB of zeros (16 frames) is decoded without holding it in memory', async () => {
  // 1 GiB of zeros compresses to a few dozen KiB; decoded in one go it would take 1 GiB at once.
  const zeros = await zstdFrame(Buffer.alloc(64 * 1024 * 1024), '--no-check');
  const frame = Buffer.concat(Array.from({ length: 16 }, () => zeros));
  let total = 0;
  let peak = 0;
  await pipeline(
    Readable.from([frame]),
    createZstdDecompress(),
    new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, done) {
        total += chunk.length;
        peak = Math.max(peak, process.memoryUsage().arrayBuffers);
        done();
      },
    }),
  );
  assert.equal(total, 1024 * 1024 * 1024);
  assert.ok(peak < 512 * 1024 * 1024, `peak arrayBuffers ${peak} bytes`);
});

test('small frames without a content size and with a 32 MiB window (as zstd:chunked writes them) decode exactly', async () => {
  // Decoded one call each with a window cut to what the frame can hold; wrong cuts break matches.
  const parts = Array.from({ length: 40 }, (_, i) =>
    Buffer.concat([TEXT.subarray(i * 1000, i * 1000 + 300_000), NOISE.subarray(0, i * 100)]),
  );
  const frames = await Promise.all(parts.map((p) => zstdFrame(p, '--no-content-size', '--long=25', '-19')));
  assert.equal(frames[1]![4]! >> 6, 0, 'no content size in the frame header');
  for (const size of [4096, 1 << 20]) {
    assert.ok((await decompress(Buffer.concat(frames), size)).equals(Buffer.concat(parts)), `chunks of ${size} bytes`);
  }
});
