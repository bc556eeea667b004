/**
 * Streaming zstd decompression for layer blobs (`tar+zstd`, including `zstd:chunked`), since
 * Node 20's zlib has no zstd. The decoder is fzstd (pure JavaScript, no native build).
 *
 * Why the frames are split here: a zstd:chunked layer is thousands of small frames (one per chunk
 * of file content, its table of contents in skippable frames at the end), many without a content
 * size and declaring a 32 MiB window. fzstd's streaming decoder allocates each frame's whole
 * window and shifts it after every block, which made a 100 MB zstd:chunked layer take minutes
 * (a gzip one: seconds). So this module finds the frame boundaries itself (block headers are
 * plain), decodes each small frame in one call into a buffer of its own size (a frame without a
 * content size gets a window no larger than its blocks can fill: a smaller window is valid when
 * no match can reach further back than the frame's start), drops skippable frames, and hands only
 * a large frame to fzstd's streaming decoder, in small slices.
 */
import { Duplex } from 'node:stream';
import { Decompress, decompress } from 'fzstd';

/**
 * Compressed bytes handed to the streaming decoder at a time. It emits everything one push
 * decodes at once, and a zstd RLE block turns 4 bytes into 128 KiB, so the slice bounds the
 * memory a hostile blob can take between two reads of the consumer (2 KiB → at most 64 MiB).
 */
const SLICE_BYTES = 2048;
/** Largest compressed frame decoded in one call; a larger one is streamed. */
const MAX_FRAME_BYTES = 1024 * 1024;
/** Largest output of a frame decoded in one call (declared, or bounded by its blocks). */
const MAX_FRAME_OUTPUT = 64 * 1024 * 1024;
/** A block's decoded size is at most 128 KiB (RFC 8878 §3.1.1.2.4). */
const MAX_BLOCK_OUTPUT = 128 * 1024;
const ZSTD_MAGIC = 0xfd2fb528;

/** fzstd's error codes (its `ZstdErrorCode`), as names that say what is wrong with the blob. */
const FZSTD_CODES = [
  'ZSTD_INVALID_DATA',
  'ZSTD_WINDOW_TOO_LARGE',
  'ZSTD_INVALID_BLOCK_TYPE',
  'ZSTD_FSE_ACCURACY_TOO_HIGH',
  'ZSTD_MATCH_DISTANCE_TOO_FAR',
  'ZSTD_UNEXPECTED_EOF',
] as const;

/** A zstd stream that is not valid zstd; `code` starts with `ZSTD_`. */
export class ZstdFormatError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ZstdFormatError';
  }
}

/** The decoder works on bytes alone, so whatever it throws says the bytes are not valid zstd. */
function formatError(err: unknown): ZstdFormatError {
  if (err instanceof ZstdFormatError) return err;
  const code = (err as { code?: unknown }).code;
  const name = typeof code === 'number' ? FZSTD_CODES[code] : undefined;
  return new ZstdFormatError(`zstd: ${(err as Error).message}`, name ?? 'ZSTD_INVALID_DATA');
}

function invalid(what: string): ZstdFormatError {
  return new ZstdFormatError(`zstd: invalid zstd data (${what})`, 'ZSTD_INVALID_DATA');
}

/** One zstd frame being read: buffered for a one-call decode, or fed to a streaming decoder. */
interface Frame {
  /** Bytes so far, while buffered; undefined once streamed. */
  parts: Buffer[] | undefined;
  size: number;
  /** Declared content size, when the header has one. */
  contentSize: number | undefined;
  /** Offset of the window descriptor byte (undefined for a single-segment frame). */
  windowAt: number | undefined;
  /** Upper bound of the decoded size, from the block headers read so far. */
  bound: number;
  checksum: boolean;
  decoder: Decompress | undefined;
}

/**
 * Splits a zstd byte stream into frames and decodes them; `write` returns the decoded bytes that
 * became ready, `end` fails when the stream stops inside a frame.
 */
class FrameDecoder {
  private state: 'magic' | 'skippable' | 'header' | 'block' | 'body' | 'checksum' | 'skip' = 'magic';
  /** Bytes of the header being collected (magic, frame header, block header). */
  private head = Buffer.alloc(0);
  private need = 4;
  private remaining = 0;
  private lastBlock = false;
  private frame: Frame | undefined;
  private out: Buffer[] = [];

  write(chunk: Buffer): Buffer[] {
    let at = 0;
    while (at < chunk.length) {
      if (this.state === 'skip' || this.state === 'body' || this.state === 'checksum') {
        const n = Math.min(this.remaining, chunk.length - at);
        if (this.state !== 'skip') this.append(chunk.subarray(at, at + n));
        at += n;
        this.remaining -= n;
        if (this.remaining === 0) this.afterBytes();
        continue;
      }
      const n = Math.min(this.need - this.head.length, chunk.length - at);
      this.head = Buffer.concat([this.head, chunk.subarray(at, at + n)]);
      at += n;
      if (this.head.length === this.need) this.afterHead();
    }
    return this.take();
  }

  end(): Buffer[] {
    if (this.state !== 'magic' || this.head.length > 0)
      throw new ZstdFormatError('zstd: unexpected EOF', 'ZSTD_UNEXPECTED_EOF');
    return this.take();
  }

  private take(): Buffer[] {
    const ready = this.out;
    this.out = [];
    return ready;
  }

  /** A complete header (magic, frame header or block header) is in `head`. */
  private afterHead(): void {
    const h = this.head;
    switch (this.state) {
      case 'magic': {
        const magic = h.readUInt32LE(0);
        if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) {
          this.state = 'skippable';
          this.need = 8;
        } else if (magic === ZSTD_MAGIC) {
          this.state = 'header';
          this.need = 5;
        } else throw invalid('no frame magic number');
        return;
      }
      case 'skippable':
        this.remaining = h.readUInt32LE(4);
        this.head = Buffer.alloc(0);
        this.state = this.remaining > 0 ? 'skip' : 'magic';
        this.need = 4;
        return;
      case 'header': {
        const fhd = h[4]!;
        if (fhd & 8) throw invalid('reserved bit set in a frame header');
        const single = (fhd >> 5) & 1;
        const fcf = fhd >> 6;
        const fcsBytes = fcf === 0 ? single : 1 << fcf;
        const length = 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]! + fcsBytes;
        if (h.length < length) {
          this.need = length;
          return;
        }
        const fcsAt = length - fcsBytes;
        let contentSize: number | undefined;
        if (fcsBytes === 1) contentSize = h[fcsAt]!;
        else if (fcsBytes === 2) contentSize = h.readUInt16LE(fcsAt) + 256;
        else if (fcsBytes === 4) contentSize = h.readUInt32LE(fcsAt);
        else if (fcsBytes === 8) contentSize = Number(h.readBigUInt64LE(fcsAt));
        this.frame = {
          parts: [],
          size: 0,
          contentSize,
          windowAt: single ? undefined : 5,
          bound: 0,
          checksum: ((fhd >> 2) & 1) === 1,
          decoder: undefined,
        };
        if (contentSize !== undefined && contentSize > MAX_FRAME_OUTPUT) this.stream();
        this.append(h);
        this.startBlock();
        return;
      }
      case 'block': {
        const bits = h[0]! | (h[1]! << 8) | (h[2]! << 16);
        const type = (bits >> 1) & 3;
        const size = bits >>> 3;
        if (type === 3) throw invalid('reserved block type');
        const frame = this.frame!;
        this.lastBlock = (bits & 1) === 1;
        this.remaining = type === 1 ? 1 : size;
        frame.bound += type === 2 ? MAX_BLOCK_OUTPUT : size;
        if (
          frame.parts &&
          (frame.size + 3 + this.remaining > MAX_FRAME_BYTES ||
            (frame.contentSize === undefined && frame.bound > MAX_FRAME_OUTPUT))
        )
          this.stream();
        this.append(h);
        this.head = Buffer.alloc(0);
        this.state = 'body';
        if (this.remaining === 0) this.afterBytes();
        return;
      }
      default:
        return;
    }
  }

  /** The body of a block, a checksum or a skippable frame was read to its end. */
  private afterBytes(): void {
    if (this.state === 'skip') {
      this.state = 'magic';
      this.need = 4;
    } else if (this.state === 'body' && !this.lastBlock) {
      this.startBlock();
    } else if (this.state === 'body' && this.frame!.checksum) {
      this.state = 'checksum';
      this.remaining = 4;
    } else {
      this.finishFrame();
    }
  }

  private startBlock(): void {
    this.head = Buffer.alloc(0);
    this.state = 'block';
    this.need = 3;
  }

  private append(bytes: Buffer): void {
    const frame = this.frame!;
    if (frame.parts) {
      frame.parts.push(Buffer.from(bytes));
      frame.size += bytes.length;
    } else {
      for (let at = 0; at < bytes.length; at += SLICE_BYTES)
        frame.decoder!.push(bytes.subarray(at, at + SLICE_BYTES), false);
    }
  }

  /** Turns the current frame into a streamed one: its bytes so far go to a streaming decoder. */
  private stream(): void {
    const frame = this.frame!;
    frame.decoder = new Decompress((data) => {
      if (data.length > 0) this.out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
    const parts = frame.parts ?? [];
    frame.parts = undefined;
    for (const p of parts) this.append(p);
  }

  private finishFrame(): void {
    const frame = this.frame!;
    if (frame.parts) {
      const bytes = Buffer.concat(frame.parts, frame.size);
      if (frame.contentSize === undefined && frame.windowAt !== undefined) {
        // The smallest power-of-two window (at least 1 KiB) that holds every byte the frame can decode.
        let exponent = 10;
        while (2 ** exponent < frame.bound) exponent++;
        const declared = bytes[frame.windowAt]!;
        const declaredSize = 2 ** (10 + (declared >> 3)) * (1 + (declared & 7) / 8);
        if (2 ** exponent < declaredSize) bytes[frame.windowAt] = (exponent - 10) << 3;
      }
      const data = decompress(bytes);
      if (data.length > 0) this.out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    } else {
      frame.decoder!.push(new Uint8Array(0), true);
    }
    this.frame = undefined;
    this.state = 'magic';
    this.head = Buffer.alloc(0);
    this.need = 4;
  }
}

/**
 * A duplex stream that decompresses zstd: any number of frames, skippable frames skipped. It
 * follows backpressure (output is produced only as fast as it is read) and fails with a
 * {@link ZstdFormatError} on bytes that are not zstd or end inside a frame.
 */
export function createZstdDecompress(): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const frames = new FrameDecoder();
    const run = (fn: () => Buffer[]): Buffer[] => {
      try {
        return fn();
      } catch (err) {
        throw formatError(err);
      }
    };
    for await (const chunk of source) {
      for (let at = 0; at < chunk.length; at += SLICE_BYTES) {
        const slice = chunk.subarray(at, at + SLICE_BYTES);
        yield* run(() => frames.write(slice));
      }
    }
    yield* run(() => frames.end());
  });
}
