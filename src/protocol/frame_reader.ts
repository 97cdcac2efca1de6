/**
 * The receive side of a byte stream of frames, written once for the
 * client, the load generator and the server's connections: a buffer whose
 * unread bytes are `[start, end)`, one read at a time into its free space,
 * whole frames cut from the front, and room made for a partial one by
 * compacting in place, growing, or shrinking back after a big one.
 *
 * Growth follows the bytes that arrived, not the length a peer claims
 * ({@link receiveBytesFor}), so a header that claims 4 MiB and is followed
 * by 10 bytes costs no more than the bytes sent.
 *
 * @module
 */
import { checkFrame, claimedFrameSize } from "./frame.ts";

/**
 * Where a {@link FrameReader} reads from: `Deno.Conn`, a TLS connection, or
 * the server's transports.
 *
 * @example
 * ```ts
 * import type { ByteSource } from "./frame_reader.ts";
 * const empty: ByteSource = { read: () => Promise.resolve(null) };
 * ```
 */
export interface ByteSource {
  /** Reads into `p`; the number of bytes read, or null at the end of the stream. */
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * Receive buffer bytes for a frame that claims `claimed` bytes in all when
 * `arrived` of them are here: the buffer doubles with what arrived and is
 * sized to the whole frame only once half of it is in, so a peer that
 * claims a large body and sends little holds little.
 *
 * @example
 * ```ts
 * import { receiveBytesFor } from "@evkv/evkv";
 * receiveBytesFor(4 << 20, 24); // 48: grows with the bytes, not the claim
 * receiveBytesFor(4 << 20, 3 << 20); // 4194304
 * ```
 */
export function receiveBytesFor(claimed: number, arrived: number): number {
  return arrived * 2 >= claimed ? claimed : arrived * 2;
}

/** How a {@link FrameReader} sizes its buffer. */
export interface FrameReaderOptions {
  /** Size it starts with and shrinks back to (default 16 KiB). */
  initialBytes?: number;
  /**
   * Buffers up to this size stay once grown (default 256 KiB): a peer that
   * sends one big frame tends to send more. Larger ones shrink back once
   * the big frame is done, so one huge frame does not pin megabytes.
   */
  keepBytes?: number;
  /**
   * Called after each change of {@link FrameReader.capacity}, with the old
   * and the new size (the server keeps its resource counters with it). The
   * first buffer is not reported: its owner counts `capacity` when it makes
   * the reader and again when it drops it.
   */
  resized?: (from: number, to: number) => void;
}

/** {@link FrameReaderOptions.initialBytes} when none is given. */
const DEFAULT_INITIAL_BYTES = 16 * 1024;
/** {@link FrameReaderOptions.keepBytes} when none is given. */
const DEFAULT_KEEP_BYTES = 256 * 1024;
/** Free bytes below which a read is not worth making without compacting first. */
const MIN_READ_BYTES = 1024;

/**
 * A receive buffer for one stream of frames. Each turn: {@link read} once,
 * then take whole frames from {@link start} while {@link frame} (wire v1,
 * or the caller's own check on {@link bytes}) says one is there, handing
 * each to {@link consume}. Cutting and consuming allocate nothing; a read
 * makes no view of an empty buffer (the usual case when frames arrive
 * whole), and a new buffer only to grow or shrink.
 *
 * @example
 * ```ts
 * import { FrameReader } from "./frame_reader.ts";
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 7379 });
 * const reader = new FrameReader({ initialBytes: 64 * 1024 });
 * while ((await reader.read(conn)) !== null) {
 *   for (let len; (len = reader.frame(4 << 20)) > 0;) {
 *     console.log(`a frame of ${len} bytes at ${reader.start}`);
 *     reader.consume(len);
 *   }
 *   if (reader.frame(4 << 20) < 0) break; // not wire v1, or over the limit
 * }
 * conn.close();
 * ```
 */
export class FrameReader {
  #bytes: Uint8Array;
  #start = 0;
  #end = 0;
  readonly #initial: number;
  readonly #keep: number;
  readonly #resized: ((from: number, to: number) => void) | undefined;

  /**
   * An empty reader with a buffer of `initialBytes`.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * let held = 0;
   * const reader = new FrameReader({ resized: (from, to) => held += to - from });
   * held += reader.capacity; // the first buffer is counted by its owner
   * ```
   */
  constructor(options: FrameReaderOptions = {}) {
    this.#initial = options.initialBytes ?? DEFAULT_INITIAL_BYTES;
    this.#keep = options.keepBytes ?? DEFAULT_KEEP_BYTES;
    this.#resized = options.resized;
    this.#bytes = new Uint8Array(this.#initial);
  }

  /**
   * The buffer; unread bytes are `[start, end)`. A new one after growing or
   * shrinking, so take it again after each {@link read}.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * const reader = new FrameReader();
   * const unread = reader.bytes.subarray(reader.start, reader.end);
   * ```
   */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /**
   * Offset of the first unread byte.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * new FrameReader().start; // 0
   * ```
   */
  get start(): number {
    return this.#start;
  }

  /**
   * Offset just past the last byte read.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * new FrameReader().end; // 0
   * ```
   */
  get end(): number {
    return this.#end;
  }

  /**
   * Bytes read and not yet consumed: `end - start`.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * new FrameReader().pending; // 0
   * ```
   */
  get pending(): number {
    return this.#end - this.#start;
  }

  /**
   * Size of the buffer now.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * new FrameReader({ initialBytes: 4096 }).capacity; // 4096
   * ```
   */
  get capacity(): number {
    return this.#bytes.length;
  }

  /**
   * Makes room, then reads once from `source` into the free space. Returns
   * the bytes read, or null at the end of the stream. `hint` is the total
   * length of the frame at {@link start} when the caller knows it, 0 when
   * nobody does (the buffer then doubles while a frame keeps growing); when
   * omitted it is read from the wire v1 header once the header is in.
   * Only one read at a time.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * const reader = new FrameReader();
   * const source = { read: (p: Uint8Array) => Promise.resolve((p[0] = 42, 1)) };
   * await reader.read(source); // 1
   * reader.bytes[reader.start]; // 42
   * ```
   */
  async read(source: ByteSource, hint?: number): Promise<number | null> {
    const n = await source.read(this.space(hint));
    if (n !== null) this.filled(n);
    return n;
  }

  /**
   * The first half of {@link read}, for a caller that reads by itself (one
   * promise fewer per read on a hot loop): makes room as {@link read} does
   * and returns the free space to read into; {@link filled} then says how
   * much arrived.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * const reader = new FrameReader();
   * const free = reader.space();
   * free[0] = 42;
   * reader.filled(1);
   * reader.pending; // 1
   * ```
   */
  space(hint?: number): Uint8Array {
    this.#makeRoom(hint ?? claimedFrameSize(this.#bytes, this.#start, this.#end));
    // An empty buffer is read from offset 0, the usual case when replies
    // arrive whole: no view to make.
    return this.#end === 0 ? this.#bytes : this.#bytes.subarray(this.#end);
  }

  /**
   * `n` bytes were read into the {@link space} given last.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * const reader = new FrameReader();
   * reader.space()[0] = 1;
   * reader.filled(1);
   * ```
   */
  filled(n: number): void {
    this.#end += n;
  }

  /**
   * Length of the whole wire v1 frame at {@link start} ({@link checkFrame}):
   * above 0 when all of it is here, 0 when more bytes are needed, or
   * `BAD_PREAMBLE` / `BODY_TOO_LARGE` (below 0) when the stream cannot go on.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * new FrameReader().frame(1024); // 0: nothing read yet
   * ```
   */
  frame(maxBody: number): number {
    return checkFrame(this.#bytes, this.#start, this.#end, maxBody);
  }

  /**
   * Marks the `n` bytes at {@link start} as handled. Their bytes stay as
   * they are until the next {@link read}, so a frame may be consumed
   * before it is dispatched.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * const reader = new FrameReader();
   * const len = reader.frame(1024);
   * if (len > 0) reader.consume(len);
   * ```
   */
  consume(n: number): void {
    const start = this.#start + n;
    if (start === this.#end) this.#start = this.#end = 0;
    else this.#start = start;
  }

  /**
   * Drops everything buffered: the stream was given up on.
   *
   * @example
   * ```ts
   * import { FrameReader } from "./frame_reader.ts";
   * const reader = new FrameReader();
   * if (reader.frame(1024) < 0) reader.skipAll();
   * ```
   */
  skipAll(): void {
    this.#start = this.#end = 0;
  }

  /** Makes room to read: compacts, grows for a large frame, or shrinks back. */
  #makeRoom(claimed: number): void {
    const bytes = this.#bytes;
    const pending = this.#end - this.#start;
    let need = this.#initial;
    // Sized by the bytes that arrived, not by the length the peer claims.
    if (claimed > 0) need = Math.max(need, receiveBytesFor(claimed, pending));
    // Length unknown (RESP): double while a frame keeps growing; the
    // caller refuses frames over its limits, which bounds this.
    else if (pending * 2 > need) need = pending * 2;
    const keep = bytes.length <= this.#keep || bytes.length <= 4 * need;
    if (bytes.length - this.#end >= MIN_READ_BYTES && bytes.length >= need && keep) return;
    const size = need <= bytes.length && keep ? bytes.length : need;
    if (size !== bytes.length) {
      const next = new Uint8Array(size);
      next.set(bytes.subarray(this.#start, this.#end));
      this.#bytes = next;
    } else if (this.#start > 0) {
      bytes.copyWithin(0, this.#start, this.#end);
    }
    this.#start = 0;
    this.#end = pending;
    if (size !== bytes.length) this.#resized?.(bytes.length, size);
  }
}
