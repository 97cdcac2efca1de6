/**
 * A connection's replies on their way to the socket: the bytes queued in
 * this batch, and the buffer being written meanwhile (two buffers, swapped
 * at each write, so replies keep gathering while a write is in flight).
 * Replies are queued here during a batch; the connection writes them once
 * at its end ({@link Connection.flush}).
 *
 * @module
 */
import { Res, type StatsBlock } from "../../stats/resources.ts";
import { type Outcome, replyFrameSize, writeReplyFrame } from "../outcome.ts";
import { SMALL_REPLY_BYTES } from "../limits.ts";

/** Output buffers larger than this are dropped once written. */
const KEEP_OUTPUT_BYTES = 256 * 1024;

/** What an output marks when its first reply of a batch is queued. */
export interface Flushable {
  /** True once queued for a flush in the current batch. */
  dirty: boolean;
}

/** One connection's queued replies. */
export class Output {
  /** Replies queued and not yet handed to the socket. */
  #buf = new Uint8Array(4096);
  #len = 0;
  /** Replies in #buf, for the `output_buffer` counts. */
  #frames = 0;
  /** The other buffer: being written while #writing, else the next one to fill. */
  #spare = new Uint8Array(4096);
  #writing = false;
  /** Bytes of the write in progress, all held until it completes. */
  #writingLen = 0;
  /** Bytes of the write in progress not yet taken by the socket. */
  #unsent = 0;
  /** Replies in the write in progress. */
  #writingFrames = 0;
  /**
   * Expected size of each reply still owed, for pausing before the output
   * cap: the largest reply seen lately (it jumps up, and decays by 1/16 of
   * the gap per smaller reply).
   */
  #replyHint = SMALL_REPLY_BYTES;
  /** Date.now() when a write last made progress or began: stall detection. */
  #wroteAt = Date.now();
  readonly #stats: StatsBlock;
  readonly #maxBytes: number;
  /** The batch's list of connections to write at its end, and this output's connection. */
  readonly #batch: Flushable[];
  readonly #owner: Flushable;
  /** Called when the buffers' capacity changes (the client-memory cap counts it). */
  readonly #resized: () => void;

  /**
   * `maxBytes` is `--max-output`; `batch` is where `owner` is listed when
   * its first reply of a batch is queued; `resized` hears of every change
   * of {@link capacity}.
   */
  constructor(
    stats: StatsBlock,
    maxBytes: number,
    batch: Flushable[],
    owner: Flushable,
    resized: () => void,
  ) {
    this.#stats = stats;
    this.#maxBytes = maxBytes;
    this.#batch = batch;
    this.#owner = owner;
    this.#resized = resized;
  }

  /** The output cap (`--max-output`), for messages. */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** Bytes of both buffers (capacity, not content). */
  get capacity(): number {
    return this.#buf.length + this.#spare.length;
  }

  /** True when nothing is queued or being written. */
  get idle(): boolean {
    return this.#len === 0 && !this.#writing;
  }

  /**
   * Bytes queued or being written, plus `owed` replies still to come at
   * their expected size: what the output may soon hold.
   */
  expected(owed: number): number {
    return this.#len + this.#writingLen + owed * this.#replyHint;
  }

  /** True when bytes wait for the socket and it took none for `timeoutMs`. */
  stalled(now: number, timeoutMs: number): boolean | null {
    if (this.#len === 0 && this.#unsent === 0) return null;
    return now - this.#wroteAt >= timeoutMs;
  }

  /**
   * Whether a reply of `size` bytes may be queued: yes when nothing is
   * queued, when it stays within the cap, or when the reply is small;
   * otherwise the caller answers OVERLOADED instead. Also learns the size
   * for {@link expected}.
   */
  admit(size: number): boolean {
    const hint = this.#replyHint;
    this.#replyHint = size >= hint ? size : hint - ((hint - size) >>> 4);
    const queued = this.#len + this.#writingLen;
    return queued === 0 || size <= SMALL_REPLY_BYTES || queued + size <= this.#maxBytes;
  }

  /** Queues a wire v1 reply frame built from `outcome`. */
  queueReply(code: number, requestId: number, outcome: Outcome): void {
    const size = replyFrameSize(outcome);
    const off = this.#reserve(size);
    writeReplyFrame(this.#buf, off, code, requestId, outcome);
    this.#queued(size);
  }

  /**
   * Queues a reply's body alone, written straight from `outcome`, for codecs
   * whose replies are their own framing (the RESP door). Returns the body's
   * first byte (-1 when empty): once written, the body can be read only here.
   */
  queueBody(outcome: Outcome): number {
    const size = outcome.size;
    const off = this.#reserve(size);
    outcome.writeBody(this.#buf, off);
    const first = size > 0 ? this.#buf[off] : -1;
    this.#queued(size);
    return first;
  }

  /** Queues reply bytes already encoded (copied), one reply's worth. */
  queueBytes(bytes: Uint8Array): void {
    const off = this.#reserve(bytes.length);
    this.#buf.set(bytes, off);
    this.#queued(bytes.length);
  }

  #reserve(n: number): number {
    const at = this.#len;
    if (at + n > this.#buf.length) {
      // Doubling up to 1 MiB, then 1 MiB at a time: a queue near the output
      // cap holds at most 1 MiB it does not use.
      const step = Math.min(this.#buf.length, 1 << 20);
      const next = new Uint8Array(Math.max(this.#buf.length + step, at + n));
      next.set(this.#buf.subarray(0, at));
      this.#buf = next;
      this.#resized();
    }
    this.#len = at + n;
    return at;
  }

  #queued(bytes: number): void {
    this.#frames++;
    this.#stats.alloc(Res.output_buffer, bytes);
    const owner = this.#owner;
    if (!owner.dirty) {
      owner.dirty = true;
      this.#batch.push(owner);
    }
  }

  /**
   * Starts writing what is queued: swaps the buffers and returns the bytes
   * to write (valid until {@link endWrite}), or null when nothing is queued
   * or a write is already in flight.
   */
  beginWrite(): Uint8Array | null {
    if (this.#writing || this.#len === 0) return null;
    const buf = this.#buf;
    const len = this.#len;
    this.#buf = this.#spare;
    this.#spare = buf;
    this.#writingFrames = this.#frames;
    this.#writingLen = this.#unsent = len;
    this.#len = 0;
    this.#frames = 0;
    this.#writing = true;
    this.#wroteAt = Date.now();
    return buf.subarray(0, len);
  }

  /** The socket took `n` more bytes of the write in flight. */
  sent(n: number): void {
    this.#unsent -= n;
    this.#wroteAt = Date.now();
  }

  /** The write in flight is over (done or failed): its bytes are released. */
  endWrite(): void {
    this.#stats.freeMany(Res.output_buffer, this.#writingFrames, this.#writingLen);
    this.#writing = false;
    this.#writingLen = this.#unsent = this.#writingFrames = 0;
    if (this.#spare.length > KEEP_OUTPUT_BYTES) {
      this.#spare = new Uint8Array(4096);
      this.#resized();
    }
  }

  /** Drops what is queued (the connection closed): its bytes are released. */
  drop(): void {
    if (this.#len > 0) this.#stats.freeMany(Res.output_buffer, this.#frames, this.#len);
    this.#len = 0;
    this.#frames = 0;
  }
}
