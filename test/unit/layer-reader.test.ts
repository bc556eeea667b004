/**
 * scanLayers on one layer stored as plain tar, tar+gzip, tar+zstd and zstd:chunked-shaped zstd
 * (one frame per piece, skippable frames at the end), served by a stub registry client: the
 * reader must choose the decompression from the media type and see the same members every time.
 * The same formats pushed by buildah to a real registry: test/integration/registry-http.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import { zstdFrame } from '../support/zstd-cli.ts';
import { pack } from 'tar-stream';
import { scanLayers } from '../../activities/layer-reader.ts';
import type { RegistryClient } from '../../activities/registry-http.ts';
import { FailureType, PermanentError } from '../../core/errors.ts';

const KERNEL = '6.18.9-200.fc43.x86_64';

/** A small layer tar: a kernel directory, a module and an incompressible file. */
async function layerTar(): Promise<Buffer> {
  const p = pack();
  p.entry({ name: 'usr/lib/modules/', type: 'directory' });
  p.entry({ name: `usr/lib/modules/${KERNEL}/`, type: 'directory' });
  p.entry({ name: `usr/lib/modules/${KERNEL}/extra/zfs/zfs.ko` }, Buffer.from('not really a module\n'));
  p.entry({ name: 'usr/share/noise' }, randomBytes(200 * 1024));
  p.entry({ name: 'lib', type: 'symlink', linkname: 'usr/lib' });
  p.finalize();
  return buffer(p);
}

/** zstd:chunked's shape: the tar cut into pieces, each its own frame, then skippable frames (TOC, footer). */
async function chunkedZstd(tar: Buffer): Promise<Buffer> {
  const cuts = [0, 512, 1536, 70_000, 150_001, tar.length];
  const frames = await Promise.all(cuts.slice(1).map((end, i) => zstdFrame(tar.subarray(cuts[i], end))));
  const toc = Buffer.from('{"version":1,"entries":[]}');
  const skip = Buffer.alloc(8);
  skip.writeUInt32LE(0x184d2a50, 0);
  skip.writeUInt32LE(toc.length, 4);
  return Buffer.concat([...frames, skip, toc]);
}

/** A registry client that serves one image of one layer, counting the blob bytes it hands out. */
function stubClient(layer: { mediaType: string; blob: Buffer }): RegistryClient {
  const digest = `sha256:${createHash('sha256').update(layer.blob).digest('hex')}`;
  return {
    getImage: async () => ({ layers: [{ mediaType: layer.mediaType, digest, size: layer.blob.length }] }),
    openBlob: async (_repo: string, d: string) => {
      assert.equal(d, digest);
      // Served in small reads, as a network stream is.
      const reads: Buffer[] = [];
      for (let at = 0; at < layer.blob.length; at += 16 * 1024) reads.push(layer.blob.subarray(at, at + 16 * 1024));
      return Readable.from(reads);
    },
  } as unknown as RegistryClient;
}

async function members(mediaType: string, blob: Buffer) {
  const seen: string[] = [];
  let module: string | undefined;
  const result = await scanLayers({
    client: stubClient({ mediaType, blob }),
    ref: '127.0.0.1:5000/kz/base:latest',
    wantContent: (_i, e) => e.name.endsWith('zfs.ko'),
    onEntry: (_i, e, content) => {
      seen.push(`${e.type} ${e.name}${e.linkname ? ` -> ${e.linkname}` : ''}`);
      if (content && 'bytes' in content) module = content.bytes.toString();
    },
  });
  return { seen, module, result };
}

test('scanLayers reads the same members from tar, tar+gzip, tar+zstd and zstd:chunked layers', async () => {
  const tar = await layerTar();
  const plain = await members('application/vnd.oci.image.layer.v1.tar', tar);
  assert.deepEqual(plain.seen, [
    'directory usr/lib/modules/',
    `directory usr/lib/modules/${KERNEL}/`,
    `file usr/lib/modules/${KERNEL}/extra/zfs/zfs.ko`,
    'file usr/share/noise',
    'symlink lib -> usr/lib',
  ]);
  assert.equal(plain.module, 'not really a module\n');
  const formats: Array<[string, Buffer]> = [
    ['application/vnd.oci.image.layer.v1.tar+gzip', gzipSync(tar)],
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', gzipSync(tar)],
    ['application/vnd.oci.image.layer.v1.tar+zstd', await zstdFrame(tar)],
    ['application/vnd.oci.image.layer.v1.tar+zstd', await chunkedZstd(tar)],
  ];
  for (const [mediaType, blob] of formats) {
    const got = await members(mediaType, blob);
    assert.deepEqual(got.seen, plain.seen, mediaType);
    assert.equal(got.module, plain.module, mediaType);
    assert.deepEqual(got.result, { layersRead: 1, bytesRead: blob.length }, mediaType);
  }
});

test('a zstd layer that is not valid zstd fails permanently, naming the layer', async () => {
  const tar = await layerTar();
  for (const blob of [gzipSync(tar), (await zstdFrame(tar)).subarray(0, 5000)]) {
    await assert.rejects(members('application/vnd.oci.image.layer.v1.tar+zstd', blob), (err: unknown) => {
      assert.ok(err instanceof PermanentError, String(err));
      assert.equal(err.type, FailureType.InvalidInput);
      assert.match(
        err.message,
        /Cannot read layer 0 \(sha256:[0-9a-f]{64}\) of 127\.0\.0\.1:5000\/kz\/base:latest: zstd: /,
      );
      return true;
    });
  }
});

test('a layer of another media type is refused before it is read, naming the type', async () => {
  await assert.rejects(members('application/vnd.oci.image.layer.v1.tar+bzip2', Buffer.from('BZh')), (err: unknown) => {
    assert.ok(err instanceof PermanentError);
    assert.equal(err.type, FailureType.InvalidInput);
    assert.match(
      err.message,
      /unsupported media type application\/vnd\.oci\.image\.layer\.v1\.tar\+bzip2; expected a tar, tar\+gzip or tar\+zstd layer/,
    );
    return true;
  });
});
