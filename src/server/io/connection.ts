/**
 * One client connection inside an IO worker: its receive buffer, its
 * {@link Output}, and its life cycle as one state ({@link ConnState}). Its
 * codec cuts the bytes into frames and turns each into calls; the
 * connection decides when to read, parse, pause and write.
 *
 * The interfaces a protocol plugs into live here too ({@link Codec},
 * {@link Dispatcher}, {@link ReplySink}): a codec takes whole frames off
 * the receive buffer and turns each into calls on the dispatcher, and the
 * sink turns the replies back into bytes. wire v1 and RESP2 are two codecs
 * of this one interface; the IO worker knows neither.
 *
 * @module
 */
import { Counter, Res, type StatsBlock } from "../../stats/resources.ts";
import type { Outcome } from "../outcome.ts";
import type { ConnectionInfo, RequestBatch, Service } from "../service.ts";
import type { Limits } from "../limits.ts";
import { FrameReader } from "../../protocol/frame_reader.ts";
import type { Transport } from "./transport.ts";
import type { ConnAuth } from "../../auth/guard.ts";
import { type Flushable, Output } from "./output.ts";
import { setImmediate } from "node:timers";

/** Where the answer to one call goes. */
export interface ReplySink {
  /**
   * A reply built by a shard, as a whole wire v1 frame (its header carries
   * the status). The bytes are only valid during the call. Returns false,
   * queuing nothing, when the connection's output has no room for it
   * ({@link Output.admit}).
   */
  frame(conn: Connection, frame: Uint8Array): boolean;
  /** A reply made in the IO worker itself (admitted already). */
  outcome(conn: Connection, code: number, requestId: number, outcome: Outcome): void;
}

/**
 * What a codec may ask of its IO worker: calls on the service, wherever
 * their shard lives. The IO worker's `Dispatcher` class is the one
 * implementation.
 */
export interface Dispatcher {
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

/** {@link Codec.take}: the stream is unusable; close now, with no reply. */
export const CLOSE_NOW = -1;
/** {@link Codec.take}: the codec queued a last reply; close once it is written. */
export const CLOSE_AFTER_REPLY = -2;

/** A wire protocol. */
export interface Codec {
  /** Name for logs. */
  readonly name: string;
  /** Per-connection state (RESP keeps its reply order here); called once per connection. */
  open(conn: Connection): void;
  /**
   * Takes the frame at `buf[start]` if all of it is in `buf[start, end)`:
   * a cheap check that it is whole first, then the real parse, then its
   * calls on `dispatcher`. Returns the frame's length, 0 when more bytes
   * are needed (nothing is taken), or {@link CLOSE_NOW} /
   * {@link CLOSE_AFTER_REPLY} when the stream cannot go on (the codec may
   * queue a last reply before returning the latter).
   */
  take(
    conn: Connection,
    buf: Uint8Array,
    start: number,
    end: number,
    maxBody: number,
    dispatcher: Dispatcher,
  ): number;
  /** Total bytes the frame at `start` needs, when known, for buffer sizing; else 0. */
  sizeHint(buf: Uint8Array, start: number, end: number): number;
  /**
   * Optional: puts the requests of the whole frames at the start of
   * `buf[start, end)` into `batch` (after resetting it), as many as fit,
   * without dispatching them or checking their CRCs. Only for
   * {@link Service.prefetch}, so it may stop early.
   */
  collect?(buf: Uint8Array, start: number, end: number, maxBody: number, batch: RequestBatch): void;
}

/**
 * A connection's life cycle: `open` reads and answers; `finishing` reads
 * nothing more and closes once every reply owed is written (QUIT, a last
 * error, a drain, the peer's end of stream); `closed` drops whatever still
 * comes back for it.
 */
export const ConnState = { open: 0, finishing: 1, closed: 2 } as const;
/** One of {@link ConnState}'s values. */
export type ConnState = typeof ConnState[keyof typeof ConnState];

/** Receive buffer size a connection starts with and shrinks back to. */
export const INITIAL_RECEIVE_BYTES = 16 * 1024;
/** Receive buffers up to this size are kept once grown. */
const KEEP_RECEIVE_BYTES = 256 * 1024;

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
  readonly dispatcher: Dispatcher;
  /** Connections with replies to write at the end of this batch. */
  readonly dirty: Flushable[];
  /** Called once a read's frames are dispatched: a batch boundary. */
  endOfBatch(): void;
  /** Called once when the connection is closed. */
  closed(conn: Connection): void;
  /** The connection's buffers changed size by `delta` bytes (see {@link Connection.memoryBytes}). */
  memoryChanged(conn: Connection, delta: number): void;
}

/** A client connection. */
export class Connection implements Flushable {
  /** Identity for replies that come back through rings. */
  readonly info: ConnectionInfo;
  /** Where it is in its life cycle. */
  state: ConnState = ConnState.open;
  /** Requests parsed and not yet answered (or dropped, for ONEWAY). */
  inflight = 0;
  /** Request body bytes this connection has waiting in task rings. */
  ringBytes = 0;
  /**
   * Bytes of the frame being taken, counted as `in_packet` from the codec's
   * check until the channel has copied them to a ring (it sets 0 then) or
   * the codec is done with them.
   */
  packetBytes = 0;
  /** True once listed for a flush in the current batch. */
  dirty = false;
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
  /** Replies on their way to the socket. */
  readonly output: Output;
  /** Set while the read loop waits for backpressure to ease; wake() resolves it. */
  #resume: (() => void) | null = null;
  /** Bytes of buffers this connection holds, as last reported to the owner. */
  #memory = 0;

  readonly #owner: ConnectionOwner;
  readonly #transport: Transport;
  /** Receive buffer; unparsed bytes are its [start, end). */
  readonly #reader: FrameReader;

  /** Wraps an accepted transport; call {@link run} to start reading. */
  constructor(owner: ConnectionOwner, transport: Transport, info: ConnectionInfo, codec: Codec) {
    this.#owner = owner;
    this.#transport = transport;
    this.info = info;
    this.codec = codec;
    this.#reader = new FrameReader({
      initialBytes: INITIAL_RECEIVE_BYTES,
      keepBytes: KEEP_RECEIVE_BYTES,
      resized: (from, to) => {
        owner.stats.free(Res.receive_buffer, from);
        owner.stats.alloc(Res.receive_buffer, to);
        this.#memoryChanged();
      },
    });
    this.output = new Output(
      owner.stats,
      owner.limits.maxOutputBytes,
      owner.dirty,
      this,
      () => this.#memoryChanged(),
    );
    owner.stats.alloc(Res.connection, 0);
    owner.stats.alloc(Res.receive_buffer, this.#reader.capacity);
    this.#memoryChanged();
  }

  /** True once closed: replies for it are dropped. */
  get closed(): boolean {
    return this.state === ConnState.closed;
  }

  /** Reads nothing more; the connection closes once every reply owed is written. */
  finish(): void {
    if (this.state === ConnState.open) this.state = ConnState.finishing;
  }

  /** Bytes its receive and output buffers hold now (capacity, not content). */
  get memoryBytes(): number {
    return this.#memory;
  }

  #memoryChanged(): void {
    const now = this.closed ? 0 : this.#reader.capacity + this.output.capacity;
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
        if (this.state !== ConnState.open) break;
        if (this.#mustWait()) {
          await this.#waitForRoom();
          continue;
        }
        const reader = this.#reader;
        // The codec knows a frame's length (wire v1), or not (RESP: 0, grow by doubling).
        const hint = this.codec.sizeHint(reader.bytes, reader.start, reader.end);
        const n = await this.#transport.read(reader.space(hint));
        if (n === null || this.closed) break;
        reader.filled(n);
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
    this.finish();
    this.settle();
  }

  /**
   * Over a limit: too many replies unwritten or owed (counted at their
   * expected size, so parsing pauses before the output cap), here or in
   * the worker.
   */
  #mustWait(): boolean {
    const l = this.#owner.limits;
    return this.output.expected(this.inflight) >= l.maxOutputBytes ||
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
    return this.output.stalled(now, timeoutMs) ?? this.inflight === 0;
  }

  /**
   * Hands whole frames to the codec, one call each. Returns true when
   * bytes are left for a later turn (the turn's budget ran out, or a limit
   * was hit).
   */
  #cutFrames(): boolean {
    const owner = this.#owner;
    const codec = this.codec;
    const reader = this.#reader;
    const buf = reader.bytes;
    const dispatcher = owner.dispatcher;
    const stats = owner.stats;
    const maxBody = owner.maxBody;
    let budget = owner.limits.framesPerTurn;
    const batch = dispatcher.prefetchBatch;
    if (batch !== null && codec.collect !== undefined) {
      codec.collect(buf, reader.start, reader.end, maxBody, batch);
      if (batch.length > 0) dispatcher.prefetch();
    }
    while (reader.pending > 0 && this.state !== ConnState.closed) {
      if (budget-- === 0) {
        stats.count(Counter.turns_yielded);
        return true;
      }
      if (this.#mustWait()) return true;
      const total = codec.take(this, buf, reader.start, reader.end, maxBody, dispatcher);
      // Whatever of the frame the channel did not take over (see packetBytes).
      if (this.packetBytes > 0) {
        stats.free(Res.in_packet, this.packetBytes);
        this.packetBytes = 0;
      }
      if (total > 0) {
        reader.consume(total);
        continue;
      }
      if (total === 0) break;
      reader.skipAll();
      if (total === CLOSE_AFTER_REPLY) this.finish();
      else this.close();
      return false;
    }
    return false;
  }

  /** The IO worker's counters, for the codec. */
  get stats(): StatsBlock {
    return this.#owner.stats;
  }

  /** Size of the receive buffer now. */
  get receiveBytes(): number {
    return this.#reader.capacity;
  }

  /**
   * Writes everything queued, in as few writes as the socket allows; while
   * a write is in progress, new replies gather in the other buffer.
   */
  async flush(): Promise<void> {
    this.dirty = false;
    const out = this.output;
    const stats = this.#owner.stats;
    let bytes: Uint8Array | null;
    while (!this.closed && (bytes = out.beginWrite()) !== null) {
      try {
        let off = 0;
        while (off < bytes.length) {
          const n = await this.#transport.write(bytes.subarray(off));
          off += n;
          out.sent(n);
          stats.count(Counter.socket_writes);
        }
        stats.count(Counter.bytes_out, bytes.length);
      } catch {
        this.close();
      } finally {
        out.endWrite();
      }
      this.wake();
    }
    // Replies owed fewer now, whether or not a write could start.
    this.wake();
    this.settle();
  }

  /** Closes a finishing connection once nothing is owed, queued or being written. */
  settle(): void {
    if (
      this.state === ConnState.finishing && this.inflight === 0 && this.output.idle
    ) {
      this.close();
    }
  }

  /** Closes now; queued replies are dropped, replies still to come are discarded. */
  close(): void {
    if (this.closed) return;
    this.state = ConnState.closed;
    try {
      this.#transport.close();
    } catch {
      // Already closed by the peer.
    }
    const stats = this.#owner.stats;
    this.output.drop();
    stats.free(Res.receive_buffer, this.#reader.capacity);
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
