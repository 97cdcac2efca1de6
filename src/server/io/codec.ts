/**
 * The framing layer's interface. A codec cuts a byte stream into frames,
 * turns each frame into calls on the service, and turns the replies back
 * into bytes. wire v1 and RESP2 are two codecs of this one interface; the
 * IO worker knows neither.
 *
 * @module
 */
import type { Connection } from "./connection.ts";
import type { Outcome } from "../shard/executor.ts";
import type { RequestBatch, Service } from "../service.ts";
import type { StatsBlock } from "../../stats/resources.ts";

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
