/**
 * One client connection inside an IO worker: its receive buffer, the
 * replies queued for it, and its life cycle (open, draining, closed). Its
 * codec cuts the bytes into frames and turns each into calls; the
 * connection only decides when to read, parse, pause and write.
 *
 * The codec interface lives here too ({@link Codec}, {@link CallSite},
 * {@link ReplySink}): a codec cuts a byte stream into frames, turns each
 * frame into calls on the service, and turns the replies back into bytes.
 * wire v1 and RESP2 are two codecs of this one interface; the IO worker
 * knows neither.
 *
 * @module
 */
import { Counter, Res, type StatsBlock } from "../../stats/resources.ts";
import { type Outcome, replyFrameSize, writeReplyFrame } from "../outcome.ts";
import type { ConnectionInfo, RequestBatch, Service } from "../service.ts";
import { type Limits, receiveBytesFor, SMALL_REPLY_BYTES } from "../limits.ts";
import type { Transport } from "./transport.ts";
import type { ConnAuth } from "../../auth/guard.ts";
import { setImmediate } from "node:timers";

/** Where the answer to one call goes. */
export interface ReplySink {
  /**
   * A reply built by a shard, as a whole wire v1 frame (its header carries
   * the status). The bytes are only valid during the call.
   */
  frame(conn: Connection, frame: Uint8Array): void;
  /** A reply made in the IO worker itself. */
  outcome(conn: Connection, code: number, requestId: number, outcome: Outcome): void;
}

/** What a codec may ask of its IO worker. */
export interface CallSite {
  /** The service being served. */
  readonly service: Service<unknown>;
  /** The IO worker's counters. */
  readonly stats: StatsBlock;
  /** Number of shards, for codecs that route keys themselves (RESP's multi-key commands). */
  readonly shards: number;
  /**
   * Runs method `code` on the body in `bytes[start, end)` (valid during this
   * call) wherever its route says, and answers through `sink` with
   * `requestId`. Internal methods are refused with UNKNOWN_METHOD unless
   * `internal` is true. The body comes as a range, not a view, because most
   * calls never need a view of their own.
   */
  call(
    conn: Connection,
    sink: ReplySink,
    code: number,
    requestId: number,
    flags: number,
    bytes: Uint8Array,
    start: number,
    end: number,
    deadline: number,
    internal: boolean,
  ): void;
  /**
   * A batch for the codec to fill ({@link Codec.collect}) with the
   * requests of a read before dispatching them, when the shard they run on
   * is hosted here and its service has a {@link Service.prefetch} hook;
   * else null.
   */
  readonly prefetchBatch: RequestBatch | null;
  /** Gives {@link prefetchBatch} to the service's prefetch hook. */
  prefetch(): void;
  /** Answers a request the codec itself rejected (a bad CRC, say). */
  reject(
    conn: Connection,
    sink: ReplySink,
    code: number,
    requestId: number,
    flags: number,
    outcome: Outcome,
  ): void;
}

/** {@link Codec.check}: the stream is unusable; close now, with no reply. */
export const CLOSE_NOW = -1;
/** {@link Codec.check}: the codec queued a last reply; close once it is written. */
export const CLOSE_AFTER_REPLY = -2;

/** A wire protocol. */
export interface Codec {
  /** Name for logs. */
  readonly name: string;
  /** Per-connection state (RESP keeps its reply order here); called once per connection. */
  open(conn: Connection): void;
  /**
   * Looks at `buf[start, end)` without dispatching: the length of the whole
   * frame at `start`, 0 when more bytes are needed, or {@link CLOSE_NOW} /
   * {@link CLOSE_AFTER_REPLY} when the stream cannot go on (the codec may
   * queue a last reply on `conn` before returning the latter).
   */
  check(conn: Connection, buf: Uint8Array, start: number, end: number, maxBody: number): number;
  /** Total bytes the frame at `start` needs, when known, for buffer sizing; else 0. */
  sizeHint(buf: Uint8Array, start: number, end: number): number;
  /**
   * Optional: puts the requests of the whole frames at the start of
   * `buf[start, end)` into `batch` (after resetting it), as many as fit,
   * without dispatching them or checking their CRCs. Only for
   * {@link Service.prefetch}, so it may stop early.
   */
  collect?(buf: Uint8Array, start: number, end: number, maxBody: number, batch: RequestBatch): void;
  /** Handles one whole frame `buf[off, off + total)`. */
  dispatch(conn: Connection, buf: Uint8Array, off: number, total: number, site: CallSite): void;
}

/** Receive buffer size a connection starts with and shrinks back to. */
export const INITIAL_RECEIVE_BYTES = 16 * 1024;
/** Receive buffers up to this size are kept once grown. */
const KEEP_RECEIVE_BYTES = 256 * 1024;
/** Output buffers larger than this are dropped once written. */
const KEEP_OUTPUT_BYTES = 256 * 1024;

/** What a connection needs from its IO worker. */
export interface ConnectionOwner {
  /** The worker's stats block. */
  readonly stats: StatsBlock;
  /** The body limit. */
  readonly maxBody: number;
  /** Backpressure and fairness limits. */
  readonly limits: Limits;
  /** True while the worker as a whole owes too many replies to parse more. */
  overloaded(): boolean;
  /** Registers `conn` as waiting for the worker to fall below its cap. */
  waitForWorker(conn: Connection): void;
  /** Where the codec's calls go. */
  readonly site: CallSite;
  /** Called once a read's frames are dispatched: a batch boundary. */
  endOfBatch(): void;
  /** Marks `conn` as having replies to write at the end of this batch. */
  markDirty(conn: Connection): void;
  /** Called once when the connection is closed. */
  closed(conn: Connection): void;
  /** The connection's buffers changed size by `delta` bytes (see {@link Connection.memoryBytes}). */
  memoryChanged(conn: Connection, delta: number): void;
}

/** A client connection. */
export class Connection {
  /** Identity for replies that come back through rings. */
  readonly info: ConnectionInfo;
  /** Requests parsed and not yet answered (or dropped, for ONEWAY). */
  inflight = 0;
  /** Request body bytes this connection has waiting in task rings. */
  ringBytes = 0;
  /** True once queued for a flush in the current batch. */
  dirty = false;
  /** Set when nothing more will be read: close once replies are out. */
  closeWhenDone = false;
  /** True after close(); replies for it are dropped. */
  closed = false;
  /** Date.now() of the last read: deadlines count from arrival, not dispatch. */
  readAt = Date.now();
  /** performance.now() of the last read: where request latency starts (src/ops). */
  arrivedAt = performance.now();
  /** The wire protocol spoken on this connection. */
  readonly codec: Codec;
  /** The codec's per-connection state (RESP keeps its reply order here). */
  codecState: unknown = null;
  /** Its user and auth failures (src/auth); null when the server has no guard. */
  auth: ConnAuth | null = null;
  /** Set while nothing more may be parsed (the delay after a failed auth); wake() after clearing. */
  held = false;
  /** Bytes of the frame being dispatched, while counted as `in_packet`. */
  #packetBytes = 0;
  /** Date.now() when a write last completed or began after a pause: stall detection. */
  #wroteAt = Date.now();
  /** Set while the read loop waits for backpressure to ease; wake() resolves it. */
  #resume: (() => void) | null = null;
  /** Bytes handed to the socket and not yet acknowledged by the write. */
  #writingBytes = 0;
  /** Bytes of the write in progress, all held until it completes. */
  #writingLen = 0;
  /**
   * Expected size of each reply still owed, for pausing before the output
   * cap: the largest reply seen lately (it jumps up, and decays by 1/16 of
   * the gap per smaller reply).
   */
  #replyHint = SMALL_REPLY_BYTES;
  /** Capacity of the buffer being written, while #writing. */
  #writingCapacity = 0;
  /** Bytes of buffers this connection holds, as last reported to the owner. */
  #memory = 0;

  readonly #owner: ConnectionOwner;
  readonly #transport: Transport;
  /** Receive buffer; unparsed bytes are [#start, #end). */
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  /** Replies queued and not yet handed to the socket. */
  #out: Uint8Array;
  #outLen = 0;
  #outFrames = 0;
  /** The other output buffer, written while #out fills. */
  #spare: Uint8Array;
  #writing = false;

  /** Wraps an accepted transport; call {@link run} to start reading. */
  constructor(owner: ConnectionOwner, transport: Transport, info: ConnectionInfo, codec: Codec) {
    this.#owner = owner;
    this.#transport = transport;
    this.info = info;
    this.codec = codec;
    this.#buf = new Uint8Array(INITIAL_RECEIVE_BYTES);
    this.#out = new Uint8Array(4096);
    this.#spare = new Uint8Array(4096);
    owner.stats.alloc(Res.connection, 0);
    owner.stats.alloc(Res.receive_buffer, this.#buf.length);
    this.#memoryChanged();
  }

  /** Bytes its receive and output buffers hold now (capacity, not content). */
  get memoryBytes(): number {
    return this.#memory;
  }

  #memoryChanged(): void {
    const now = this.closed ? 0 : this.#buf.length + this.#out.length +
      (this.#writing ? this.#writingCapacity : this.#spare.length);
    const delta = now - this.#memory;
    if (delta !== 0) {
      this.#memory = now;
      this.#owner.memoryChanged(this, delta);
    }
  }

  /**
   * Reads and dispatches frames until the peer closes or an error. Frames
   * already buffered are handled before reading more, in turns of at most
   * `framesPerTurn`, and nothing more is parsed or read while the
   * connection or its worker is over a backpressure limit.
   */
  async run(): Promise<void> {
    const stats = this.#owner.stats;
    try {
      // Frames already read are handled before deciding to stop, so a
      // drain still answers (SHUTTING_DOWN) what arrived with the last read.
      for (;;) {
        while (this.#cutFrames()) {
          this.#owner.endOfBatch();
          if (this.#mustWait()) await this.#waitForRoom();
          else await new Promise((r) => setImmediate(r));
          if (this.closed) return;
        }
        this.#owner.endOfBatch();
        if (this.closed || this.closeWhenDone) break;
        if (this.#mustWait()) {
          await this.#waitForRoom();
          continue;
        }
        this.#makeRoom();
        const n = await this.#transport.read(this.#buf.subarray(this.#end));
        if (n === null || this.closed) break;
        this.#end += n;
        this.readAt = Date.now();
        this.arrivedAt = performance.now();
        stats.count(Counter.bytes_in, n);
        stats.count(Counter.socket_reads);
      }
    } catch (e) {
      // A reset or a read on a closed socket ends the connection; the
      // peer gets nothing more, other connections are not affected.
      // Anything else is a bug in a codec or the dispatch path: said once,
      // with its stack, so that it cannot pass for a stalled client.
      if (!socketGone(e)) {
        console.error(
          `evkv: connection ${this.info.remote} ended by an error: ${
            e instanceof Error ? e.stack ?? e.message : String(e)
          }`,
        );
      }
    }
    this.closeWhenDone = true;
    this.settle();
  }

  /**
   * Over a limit: too many replies unwritten or owed (counted at their
   * expected size, so parsing pauses before the output cap), here or in
   * the worker.
   */
  #mustWait(): boolean {
    const l = this.#owner.limits;
    return this.#outLen + this.#writingLen + this.inflight * this.#replyHint >=
        l.maxOutputBytes ||
      this.inflight >= l.maxInflightPerConnection ||
      this.ringBytes >= l.maxRingBytesPerConnection || this.#owner.overloaded() || this.held;
  }

  async #waitForRoom(): Promise<void> {
    this.#owner.stats.count(Counter.reads_paused);
    while (!this.closed && this.#mustWait()) {
      const p = new Promise<void>((r) => this.#resume = r);
      if (this.#owner.overloaded()) this.#owner.waitForWorker(this);
      await p;
    }
  }

  /** Lets a paused read loop re-check its limits (cheap when not paused). */
  wake(): void {
    const r = this.#resume;
    if (r) {
      this.#resume = null;
      r();
    }
  }

  /**
   * True when the peer sent nothing for `timeoutMs` and the connection is
   * not just waiting for its handlers, or its replies made no progress for
   * that long (a peer that stopped reading).
   */
  idleFor(now: number, timeoutMs: number): boolean {
    if (now - this.readAt < timeoutMs) return false;
    const output = this.#outLen > 0 || this.#writingBytes > 0;
    if (output) return now - this.#wroteAt >= timeoutMs;
    return this.inflight === 0;
  }

  /**
   * Cuts and dispatches whole frames. Returns true when whole frames are
   * left for a later turn (the turn's budget ran out, or a limit was hit).
   */
  #cutFrames(): boolean {
    const owner = this.#owner;
    const codec = this.codec;
    const buf = this.#buf;
    const limits = owner.limits;
    let budget = limits.framesPerTurn;
    const batch = owner.site.prefetchBatch;
    if (batch !== null && codec.collect !== undefined) {
      codec.collect(buf, this.#start, this.#end, owner.maxBody, batch);
      if (batch.length > 0) owner.site.prefetch();
    }
    while (!this.closed) {
      const total = codec.check(this, buf, this.#start, this.#end, owner.maxBody);
      if (total > 0) {
        if (budget-- === 0) {
          owner.stats.count(Counter.turns_yielded);
          return true;
        }
        if (this.#mustWait()) return true;
        const off = this.#start;
        this.#start += total;
        this.#packetBytes = total;
        owner.stats.alloc(Res.in_packet, total);
        codec.dispatch(this, buf, off, total, owner.site);
        this.releasePacket();
        continue;
      }
      if (total === 0) break;
      this.#start = this.#end;
      if (total === CLOSE_AFTER_REPLY) this.closeWhenDone = true;
      else this.close();
      return false;
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return false;
  }

  /** Bytes of the frame being dispatched that still count as `in_packet`, or 0. */
  get packetBytes(): number {
    return this.#packetBytes;
  }

  /** Stops counting the frame being dispatched as held (once its bytes are copied). */
  releasePacket(): void {
    if (this.#packetBytes > 0) {
      this.#owner.stats.free(Res.in_packet, this.#packetBytes);
      this.#packetBytes = 0;
    }
  }

  /** The IO worker's counters, for the codec. */
  get stats(): StatsBlock {
    return this.#owner.stats;
  }

  /** Makes room to read: compacts, grows for a large frame, or shrinks back. */
  #makeRoom(): void {
    const stats = this.#owner.stats;
    let buf = this.#buf;
    const pending = this.#end - this.#start;
    let need = INITIAL_RECEIVE_BYTES;
    const hint = this.codec.sizeHint(buf, this.#start, this.#end);
    // Sized by the bytes that arrived, not by the length the peer claims.
    if (hint > 0) need = Math.max(need, receiveBytesFor(hint, pending));
    // Length unknown (RESP): double while a frame keeps growing; the codec
    // refuses frames over its limits, which bounds this.
    else if (pending * 2 > need) need = pending * 2;
    // Buffers up to KEEP_RECEIVE_BYTES stay once grown (a client that sends
    // one big value tends to send more); larger ones shrink back when the
    // big frame is done, so one huge Put does not pin megabytes.
    const keep = buf.length <= KEEP_RECEIVE_BYTES || buf.length <= 4 * need;
    if (buf.length - this.#end >= 1024 && buf.length >= need && keep) return;
    const size = need <= buf.length && keep ? buf.length : Math.max(need, INITIAL_RECEIVE_BYTES);
    if (size !== buf.length) {
      const next = new Uint8Array(size);
      next.set(buf.subarray(this.#start, this.#end));
      stats.free(Res.receive_buffer, buf.length);
      stats.alloc(Res.receive_buffer, size);
      this.#buf = buf = next;
      this.#memoryChanged();
    } else if (this.#start > 0) {
      buf.copyWithin(0, this.#start, this.#end);
    }
    this.#start = 0;
    this.#end = pending;
  }

  /**
   * Whether a reply of `size` bytes may be queued: yes when the queue is
   * empty, when it stays within `maxOutputBytes`, or when the reply is
   * small; otherwise the caller answers OVERLOADED instead. Also learns the
   * size for {@link #mustWait}'s estimate of replies still owed.
   */
  admitReply(size: number): boolean {
    const hint = this.#replyHint;
    this.#replyHint = size >= hint ? size : hint - ((hint - size) >>> 4);
    const queued = this.#outLen + this.#writingLen;
    return queued === 0 || size <= SMALL_REPLY_BYTES ||
      queued + size <= this.#owner.limits.maxOutputBytes;
  }

  /** The output cap, for messages. */
  get maxOutputBytes(): number {
    return this.#owner.limits.maxOutputBytes;
  }

  /** Queues a reply frame built from `outcome`. */
  queueReply(code: number, requestId: number, outcome: Outcome): void {
    const size = replyFrameSize(outcome);
    const off = this.#reserve(size);
    writeReplyFrame(this.#out, off, code, requestId, outcome);
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
    outcome.writeBody(this.#out, off);
    const first = size > 0 ? this.#out[off] : -1;
    this.#queued(size);
    return first;
  }

  /** Queues reply bytes already encoded (copied), one reply's worth. */
  queueBytes(frame: Uint8Array): void {
    const off = this.#reserve(frame.length);
    this.#out.set(frame, off);
    this.#queued(frame.length);
  }

  /** Size of the receive buffer now. */
  get receiveBytes(): number {
    return this.#buf.length;
  }

  /** Bytes queued and not yet taken by the socket. */
  get queuedBytes(): number {
    return this.#outLen;
  }

  #reserve(n: number): number {
    const at = this.#outLen;
    if (at + n > this.#out.length) {
      // Doubling up to 1 MiB, then 1 MiB at a time: a queue near the output
      // cap holds at most 1 MiB it does not use.
      const step = Math.min(this.#out.length, 1 << 20);
      const next = new Uint8Array(Math.max(this.#out.length + step, at + n));
      next.set(this.#out.subarray(0, at));
      this.#out = next;
      this.#memoryChanged();
    }
    this.#outLen = at + n;
    return at;
  }

  #queued(bytes: number): void {
    this.#outFrames++;
    this.#owner.stats.alloc(Res.output_buffer, bytes);
    if (!this.dirty) {
      this.dirty = true;
      this.#owner.markDirty(this);
    }
  }

  /**
   * Writes everything queued, in as few writes as the socket allows; while
   * a write is in progress, new replies gather in the other buffer.
   */
  async flush(): Promise<void> {
    this.dirty = false;
    if (this.#writing || this.closed) return;
    this.#writing = true;
    this.#wroteAt = Date.now();
    const stats = this.#owner.stats;
    while (this.#outLen > 0 && !this.closed) {
      const buf = this.#out;
      const len = this.#outLen;
      const frames = this.#outFrames;
      this.#out = this.#spare;
      this.#outLen = 0;
      this.#outFrames = 0;
      this.#writingBytes = len;
      this.#writingLen = len;
      this.#writingCapacity = buf.length;
      try {
        let off = 0;
        while (off < len) {
          off += await this.#transport.write(buf.subarray(off, len));
          stats.count(Counter.socket_writes);
          this.#writingBytes = len - off;
          this.#wroteAt = Date.now();
        }
        stats.count(Counter.bytes_out, len);
      } catch {
        this.close();
      } finally {
        this.#writingBytes = 0;
        this.#writingLen = 0;
        stats.freeMany(Res.output_buffer, frames, len);
      }
      this.#spare = buf.length > KEEP_OUTPUT_BYTES ? new Uint8Array(4096) : buf;
      this.#writingCapacity = this.#spare.length;
      this.#memoryChanged();
      this.wake();
    }
    this.#writing = false;
    this.#memoryChanged();
    this.settle();
  }

  /** Closes the connection if it is done: nothing in flight or queued. */
  settle(): void {
    if (
      this.closeWhenDone && !this.closed && this.inflight === 0 && this.#outLen === 0 &&
      !this.#writing
    ) {
      this.close();
    }
  }

  /** Closes now; queued replies are dropped, replies still to come are discarded. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.#transport.close();
    } catch {
      // Already closed by the peer.
    }
    const stats = this.#owner.stats;
    if (this.#outLen > 0) stats.freeMany(Res.output_buffer, this.#outFrames, this.#outLen);
    this.#outLen = 0;
    this.#outFrames = 0;
    stats.free(Res.receive_buffer, this.#buf.length);
    stats.free(Res.connection, 0);
    this.#memoryChanged();
    stats.count(Counter.connections_closed);
    this.#owner.closed(this);
    this.wake();
  }
}

/** True for the errors a socket ends with: the peer went away or the TLS handshake failed. */
function socketGone(e: unknown): boolean {
  const E = Deno.errors;
  return e instanceof E.ConnectionReset || e instanceof E.ConnectionAborted ||
    e instanceof E.BrokenPipe || e instanceof E.BadResource || e instanceof E.Interrupted ||
    e instanceof E.NotConnected || e instanceof E.UnexpectedEof || e instanceof E.InvalidData ||
    e instanceof E.TimedOut;
}
