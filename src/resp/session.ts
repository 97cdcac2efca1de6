/**
 * One RESP connection's state: its replies in request order, and its SCAN
 * cursors. Shards finish out of order; a reply is written only once every
 * reply before it is out.
 *
 * @module
 */
import { HEADER_SIZE } from "../protocol/constants.ts";
import { HeaderOffset, readU32 } from "../protocol/frame.ts";
import { pb } from "../protocol/messages.ts";
import type { CallSite, ReplySink } from "../server/codec.ts";
import type { Connection } from "../server/connection.ts";
import type { Outcome } from "../server/executor.ts";
import { Fifo } from "../server/fifo.ts";
import type { MessageType } from "../server/service.ts";
import { ArgSpans } from "./frame.ts";
import { RespTrack } from "../ops/resp_track.ts";

/** The answer to one call of a command. */
export type Result =
  | { ok: true; value: unknown }
  | { ok: false; status: number; message: string };

/** One call a command makes: method, encoded request, reply type. */
export interface Call {
  /** Method code. */
  code: number;
  /** Encoded request body. */
  body: Uint8Array;
  /** How to decode the reply. */
  reply: MessageType<unknown>;
}

/** A command's place in the reply order; a sink for its calls' answers. */
class PendingReply implements ReplySink {
  bytes: Uint8Array | null = null;
  readonly #session: Session;
  readonly #types: MessageType<unknown>[];
  readonly #results: Result[];
  readonly #render: (results: Result[]) => Uint8Array;
  #remaining: number;

  constructor(session: Session, calls: Call[], render: (results: Result[]) => Uint8Array) {
    this.#session = session;
    this.#types = calls.map((c) => c.reply);
    this.#results = new Array(calls.length);
    this.#render = render;
    this.#remaining = calls.length;
  }

  frame(conn: Connection, frame: Uint8Array): void {
    const part = readU32(frame, HeaderOffset.requestId);
    const status = readU32(frame, HeaderOffset.status);
    this.#settle(conn, part, status, frame.subarray(HEADER_SIZE, frame.length - 4));
  }

  outcome(conn: Connection, _code: number, requestId: number, outcome: Outcome): void {
    this.#settle(conn, requestId, outcome.status, outcome.body);
  }

  #settle(conn: Connection, part: number, status: number, body: Uint8Array): void {
    // The body may be a view into a ring: decode from a copy.
    const bytes = body.slice();
    if (status === 0) {
      this.#results[part] = { ok: true, value: this.#types[part].decode(bytes) };
    } else {
      let message = `status ${status}`;
      try {
        message = pb.Error.decode(bytes).message;
      } catch {
        // Keep the status alone.
      }
      this.#results[part] = { ok: false, status, message };
    }
    if (--this.#remaining === 0) {
      this.bytes = this.#render(this.#results);
      this.#session.flush(conn);
    }
  }
}

/** Cursors kept per connection, like a small LRU: enough for `redis-cli --scan`. */
const MAX_CURSORS = 64;

/** Per-connection RESP state. */
export class Session {
  /** Argument spans of the command last checked. */
  readonly args: ArgSpans = new ArgSpans();
  /** Replies not yet written, in request order. */
  readonly #order = new Fifo<PendingReply>();
  /** SCAN cursor id -> the last key returned. */
  readonly #cursors = new Map<number, Uint8Array>();
  #nextCursor = 1;
  /** After QUIT: nothing more is read. */
  quitting = false;
  /** Commands awaiting replies, for the metrics (src/ops). */
  readonly track: RespTrack = new RespTrack();

  /** Queues a reply that needs no call (in order behind earlier ones). */
  reply(conn: Connection, bytes: Uint8Array): void {
    const p = new PendingReply(this, [], () => bytes);
    p.bytes = bytes;
    this.#order.push(p);
    this.flush(conn);
  }

  /**
   * Makes `calls` (in parallel, on whatever shards they route to) and
   * queues the reply that `render` makes of their answers.
   */
  call(
    conn: Connection,
    site: CallSite,
    calls: Call[],
    render: (results: Result[]) => Uint8Array,
  ): void {
    const p = new PendingReply(this, calls, render);
    this.#order.push(p);
    calls.forEach((c, part) =>
      site.call(conn, p, c.code, part, 0, c.body, 0, c.body.length, 0, true)
    );
  }

  /** Writes every finished reply at the head of the order. */
  flush(conn: Connection): void {
    const order = this.#order;
    for (let head = order.peek(); head && head.bytes; head = order.peek()) {
      order.shift();
      if (!conn.closed) {
        conn.queueBytes(head.bytes);
        this.track.written(head.bytes, conn.info.remote, conn.arrivedAt);
      }
    }
  }

  /** Remembers where a SCAN stopped; returns the cursor to give out. */
  saveCursor(lastKey: Uint8Array): number {
    const id = this.#nextCursor++;
    this.#cursors.set(id, lastKey.slice());
    if (this.#cursors.size > MAX_CURSORS) {
      this.#cursors.delete(this.#cursors.keys().next().value!);
    }
    return id;
  }

  /** The key a cursor stands for; null for an unknown cursor. */
  cursor(id: number): Uint8Array | null {
    return this.#cursors.get(id) ?? null;
  }
}
