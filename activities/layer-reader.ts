/**
 * Streaming layer reader: walks the tar members of an image's layers straight from the registry.
 *
 * Why streaming: the cache check and the smoke test need only member names and types, plus the
 * content of a few small files the caller selects (the ZFS modules, for their vermagic), so
 * nothing is written to disk and memory stays flat whatever the layer size: only a selected
 * member under the size limit is held in memory, one at a time. What the entries mean (kernels,
 * whiteouts, payloads) is decided by the pure `LayerScan` in `core/layers.ts`.
 */
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { FailureType, PermanentError } from '../core/errors.ts';
import { parseImageRef } from '../core/refs.ts';
import type { RegistryClient } from './registry-http.ts';
import { ZstdFormatError, createZstdDecompress } from './zstd-stream.ts';

/** Kind of a tar member, reduced to what the layer scan distinguishes. */
export type LayerEntryType = 'file' | 'link' | 'symlink' | 'directory' | 'other';

/** One tar member as seen by `onEntry`: its name exactly as stored in the tar, and its kind. */
export interface LayerEntry {
  /** Member name as stored (may start with `./`; normalising is the consumer's job). */
  name: string;
  /** Member kind. */
  type: LayerEntryType;
  /** Target of a hard link (a member of the same tar) or symlink, as stored; absent for other kinds. */
  linkname?: string;
}

/**
 * Content of a member selected by `wantContent`: all its bytes, or only the fact that it is over
 * the limit (its bytes were drained, not kept).
 */
export type EntryContent = { bytes: Buffer } | { tooLarge: true; size: number; limit: number };

/** Default for {@link ScanLayersInput.maxContentBytes}: a stripped zfs.ko is ~12 MB, one with debug info ~106 MB. */
export const DEFAULT_MAX_CONTENT_BYTES = 64 * 1024 * 1024;

/** Input of {@link scanLayers}. */
export interface ScanLayersInput {
  /** Registry client (its `stats` count the requests and bytes of the scan). */
  client: RegistryClient;
  /** Image reference (`host/path:tag` or `host/path@sha256:…`; an index resolves to linux/amd64). */
  ref: string;
  /** Layer digests not to read (already scanned elsewhere, e.g. the base image's layers). */
  skipLayerDigests?: Iterable<string>;
  /**
   * Called for every member of every read layer, in order; `layerIndex` is the manifest index.
   * `content` is given exactly for the members `wantContent` selected; the buffer is the
   * consumer's to keep or drop (drop it, to keep memory flat).
   */
  onEntry: (layerIndex: number, entry: LayerEntry, content?: EntryContent) => void;
  /**
   * Selects the regular files (type `file`) whose content `onEntry` receives; it is not asked
   * about other kinds. Every other member is drained unread.
   * @default undefined (no content is read)
   */
  wantContent?: (layerIndex: number, entry: LayerEntry) => boolean;
  /**
   * Largest selected member kept in memory, in bytes; a larger one is drained and reported as
   * `{ tooLarge: true, size, limit }` instead.
   * @default DEFAULT_MAX_CONTENT_BYTES (64 MiB)
   */
  maxContentBytes?: number;
  /** Called before each layer is read. */
  onLayer?: (layerIndex: number, digest: string) => void;
  /** Aborts the scan (the current download is cancelled). */
  signal?: AbortSignal;
}

/** Result of {@link scanLayers}. */
export interface ScanLayersResult {
  /** Layers actually read (skipped layers excluded). */
  layersRead: number;
  /** Compressed blob bytes read for those layers. */
  bytesRead: number;
}

const GZIP_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);
const ZSTD_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);
const TAR_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.docker.image.rootfs.diff.tar',
]);

/**
 * Reads the layers of an image in manifest order and reports each tar member to `onEntry`
 * (with its content when `wantContent` selects it), skipping layers whose digest is in
 * `skipLayerDigests`. Gzip, zstd (zstd:chunked too: it is zstd with skippable frames) and plain
 * tar layers are read; another media type is refused with a permanent InvalidInput error.
 */
export async function scanLayers(input: ScanLayersInput): Promise<ScanLayersResult> {
  const { client, ref, onEntry, onLayer, signal, wantContent } = input;
  const limit = input.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES;
  if (!Number.isSafeInteger(limit) || limit < 0)
    throw new RangeError(`maxContentBytes must be a non-negative integer, got ${limit}`);
  const skip = new Set(input.skipLayerDigests ?? []);
  signal?.throwIfAborted();
  const image = await client.getImage(ref, signal);
  const repo = parseImageRef(ref).name;
  let layersRead = 0;
  let bytesRead = 0;
  for (const [index, layer] of image.layers.entries()) {
    if (skip.has(layer.digest)) continue;
    signal?.throwIfAborted();
    const decompress = decompressorFor(layer.mediaType, layer.digest, ref);
    onLayer?.(index, layer.digest);
    const blob = await client.openBlob(repo, layer.digest, signal);
    bytesRead += await readTar({
      blob,
      decompress,
      signal,
      onEntry: (e, content) => onEntry(index, e, content),
      wantContent: wantContent && ((e) => wantContent(index, e)),
      limit,
      where: `layer ${index} (${layer.digest}) of ${ref}`,
    });
    layersRead += 1;
  }
  return { layersRead, bytesRead };
}

/** Chooses the decompression for a layer media type; undefined = plain tar. */
function decompressorFor(mediaType: string, digest: string, ref: string): (() => NodeJS.ReadWriteStream) | undefined {
  if (GZIP_TYPES.has(mediaType) || mediaType.endsWith('+gzip') || mediaType.endsWith('.gzip'))
    return () => createGunzip();
  if (ZSTD_TYPES.has(mediaType) || mediaType.endsWith('+zstd')) return createZstdDecompress;
  if (TAR_TYPES.has(mediaType) || mediaType.endsWith('.tar')) return undefined;
  throw new PermanentError(
    FailureType.InvalidInput,
    `Layer ${digest} of ${ref} has unsupported media type ${mediaType}; expected a tar, tar+gzip or tar+zstd layer`,
  );
}

async function readTar(args: {
  blob: Readable;
  decompress: (() => NodeJS.ReadWriteStream) | undefined;
  signal?: AbortSignal;
  onEntry: (entry: LayerEntry, content?: EntryContent) => void;
  wantContent: ((entry: LayerEntry) => boolean) | undefined;
  limit: number;
  where: string;
}): Promise<number> {
  const ex = extract();
  // An error thrown by the consumer is passed through untouched, never reclassified as a bad layer.
  let consumerError: { err: unknown } | undefined;
  /** Runs a consumer callback; on a throw, records it and fails the parse. */
  const guard = <T>(
    fn: () => T,
    stream: { resume(): unknown; on(event: 'error', fn: () => void): unknown },
    next: (err?: Error) => void,
  ): { ok: true; value: T } | { ok: false } => {
    try {
      return { ok: true, value: fn() };
    } catch (err) {
      consumerError = { err };
      // Failing the parse destroys the member's stream with this error; without a listener that
      // would crash the process. The error still reaches the caller through the pipeline.
      stream.on('error', () => {});
      stream.resume();
      next(err as Error);
      return { ok: false };
    }
  };
  ex.on('entry', (header, stream, next) => {
    const type = entryType(header.type);
    const entry: LayerEntry = { name: header.name, type };
    if ((type === 'link' || type === 'symlink') && header.linkname != null) entry.linkname = header.linkname;
    const want =
      type === 'file' && args.wantContent
        ? guard(() => args.wantContent!(entry), stream, next)
        : { ok: true as const, value: false };
    if (!want.ok) return;
    const size = header.size ?? 0;
    if (!want.value || size > args.limit) {
      const content: EntryContent | undefined = want.value ? { tooLarge: true, size, limit: args.limit } : undefined;
      if (!guard(() => args.onEntry(entry, content), stream, next).ok) return;
      // Contents not selected (or over the limit) are drained so the parser moves on.
      stream.on('end', () => next());
      stream.resume();
      return;
    }
    // The header size is authoritative for tar-stream, so the buffer never grows past the limit;
    // the running count only guards against a parser that disagrees.
    const chunks: Buffer[] = [];
    let got = 0;
    stream.on('data', (data) => {
      const chunk = data as Buffer;
      got += chunk.length;
      if (got <= args.limit) chunks.push(chunk);
    });
    stream.on('end', () => {
      const content: EntryContent =
        got <= args.limit ? { bytes: Buffer.concat(chunks, got) } : { tooLarge: true, size: got, limit: args.limit };
      chunks.length = 0;
      if (guard(() => args.onEntry(entry, content), stream, next).ok) next();
    });
  });
  // Counted here rather than from the client's stats, which other scans may share.
  let bytes = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const stages: NodeJS.ReadWriteStream[] = args.decompress ? [count, args.decompress()] : [count];
  try {
    await pipeline([args.blob, ...stages, ex], { signal: args.signal });
    return bytes;
  } catch (err) {
    if (args.signal?.aborted) throw args.signal.reason ?? err;
    if (consumerError) throw consumerError.err;
    if (err instanceof PermanentError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    // zlib, zstd and tar parse errors are corrupt or mislabelled layers: retrying gives the same bytes.
    if (
      err instanceof ZstdFormatError ||
      (typeof code === 'string' && code.startsWith('Z_')) ||
      /tar|header|checksum/i.test((err as Error).message)
    ) {
      throw new PermanentError(
        FailureType.InvalidInput,
        `Cannot read ${args.where}: ${(err as Error).message}; the layer is corrupt or not the format its media type says`,
      );
    }
    throw err;
  }
}

function entryType(t: string | null | undefined): LayerEntryType {
  switch (t) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'link':
      return 'link';
    case 'symlink':
      return 'symlink';
    case 'directory':
      return 'directory';
    default:
      return 'other';
  }
}
