/**
 * Where calls go, inside an IO worker: each call is routed to a shard and
 * handed to the channel (`channel/io_end.ts`), which runs it right here
 * when this thread hosts the shard or sends it through the shard's ring.
 * The answers (made here, or popped from the reply rings) leave through the
 * caller's {@link ReplySink}; calls routed to every shard are
 * {@link Fanouts}.
 *
 * @module
 */
import { Flags, FRAME_OVERHEAD, HEADER_SIZE, Status } from "../../protocol/constants.ts";
import { HeaderOffset, readU32 } from "../../protocol/frame.ts";
import { Counter, Res, type StatsBlock } from "../../stats/resources.ts";
import type * as io from "./connection.ts";
import type { Connection, ReplySink } from "./connection.ts";
import { countError, errorOutcome, type Outcome } from "../outcome.ts";
import { type Call, FULL, type IoEnd, type Owed, SENT } from "../channel/io_end.ts";
import { RequestBatch, type Service } from "../service.ts";
import { Fanouts, overloaded } from "./fanout.ts";
import { wireSink } from "./wire_codec.ts";
import { recorder } from "../../ops/recorder.ts";

/** What the dispatcher needs from its IO worker. */
export interface DispatcherOptions {
  /** The service being served. */
  service: Service<unknown>;
  /** The IO worker's counters. */
  stats: StatsBlock;
  /** Number of shards. */
  shards: number;
  /** The IO worker's end of the channel to the shards. */
  channel: IoEnd<Connection, ReplySink>;
  /** Requests in flight per IO worker before parsing pauses. */
  maxInflight: number;
  /** Body limit, for merged fan-out replies. */
  maxBody: number;
  /** Called after answers that arrive outside a batch (async handlers). */
  endOfBatch: () => void;
  /** Most frames one turn of a connection runs: the prefetch batch's size. */
  framesPerTurn: number;
  /** Answers a call no method takes (wire v1 `Auth` on an open server), or null: UNKNOWN_METHOD. */
  fallback?: (
    conn: Connection,
    code: number,
    bytes: Uint8Array,
    start: number,
    end: number,
  ) => Outcome | null;
}

/** Routes calls to shards and sends their answers back. */
export class Dispatcher implements io.Dispatcher {
  readonly service: Service<unknown>;
  readonly stats: StatsBlock;
  /** True once the server drains: new calls get SHUTTING_DOWN. */
  draining = false;
  /** See {@link io.Dispatcher.prefetchBatch}: only for a shard hosted here. */
  readonly prefetchBatch: RequestBatch | null;
  readonly #o: DispatcherOptions;
  readonly #channel: IoEnd<Connection, ReplySink>;
  readonly #fanouts: Fanouts;
  /** Calls made here and not yet answered, across all connections. */
  #inflight = 0;
  /** Connections waiting for #inflight to fall below the cap. */
  readonly #waiting = new Set<Connection>();
  /** The call being routed, reused: the channel reads it only while sending. */
  readonly #call: Call<Connection, ReplySink> = {
    conn: null as unknown as Connection,
    sink: null as unknown as ReplySink,
    code: 0,
    requestId: 0,
    flags: 0,
    deadline: 0,
  };

  /** Binds the dispatcher to an IO worker's end of the channel. */
  constructor(options: DispatcherOptions) {
    this.#o = options;
    this.service = options.service;
    this.stats = options.stats;
    this.#channel = options.channel;
    const hook = options.channel.localShard >= 0 && options.service.prefetch !== undefined;
    this.prefetchBatch = hook ? new RequestBatch(options.framesPerTurn) : null;
    this.#fanouts = new Fanouts(
      options.stats,
      options.channel,
      options.shards,
      options.maxBody,
      (conn, sink, code, requestId, oneway, outcome, counted, at) =>
        this.#finish(conn, sink, code, requestId, oneway, outcome, counted, at),
      (conn) => this.#release(conn),
      options.endOfBatch,
    );
  }

  /** Number of shards (see {@link io.Dispatcher.shards}). */
  get shards(): number {
    return this.#o.shards;
  }

  /** True while this worker owes too many replies to parse more. */
  overloaded(): boolean {
    return this.#inflight >= this.#o.maxInflight;
  }

  /** Registers `conn` as waiting for {@link overloaded} to clear. */
  waitForRoom(conn: Connection): void {
    this.#waiting.add(conn);
  }

  /** Forgets a closed connection. */
  forget(conn: Connection): void {
    this.#waiting.delete(conn);
  }

  /** True while shards still owe replies or fan-outs are open. */
  get busy(): boolean {
    return this.#channel.awaiting > 0 || this.#fanouts.size > 0;
  }

  /** See {@link io.Dispatcher.prefetch}. */
  prefetch(): void {
    this.#channel.prefetch(this.prefetchBatch!);
  }

  /** See {@link io.Dispatcher.reject}. */
  readonly reject: io.Dispatcher["reject"] = (conn, sink, code, requestId, flags, outcome) => {
    this.#begin(conn, flags);
    this.#finish(conn, sink, code, requestId, (flags & Flags.ONEWAY) !== 0, outcome);
  };

  /** See {@link io.Dispatcher.call}. */
  readonly call: io.Dispatcher["call"] = (
    conn,
    sink,
    code,
    requestId,
    flags,
    bytes,
    start,
    end,
    deadline,
    internal,
  ) => {
    this.#begin(conn, flags);
    const oneway = (flags & Flags.ONEWAY) !== 0;
    if (this.draining) {
      conn.finish();
      const o = errorOutcome(Status.SHUTTING_DOWN, "Accept request: the server is shutting down");
      this.#finish(conn, sink, code, requestId, oneway, o);
      return;
    }
    const m = this.service.methods[code];
    if (!m || (m.internal && !internal)) {
      const o = (!m ? this.#o.fallback?.(conn, code, bytes, start, end) : null) ??
        errorOutcome(Status.UNKNOWN_METHOD, `Find method: no method has code ${code}`);
      this.#finish(conn, sink, code, requestId, oneway, o);
      return;
    }
    const call = this.#call;
    call.conn = conn;
    call.sink = sink;
    call.code = code;
    call.requestId = requestId;
    call.flags = flags;
    call.deadline = deadline;
    const route = m.route;
    if (route === "all") {
      this.#fanouts.start(call, m, bytes, start, end);
      return;
    }
    const shards = this.#o.shards;
    let shard = 0;
    if (route === "local") {
      const local = this.#channel.localShard;
      shard = local >= 0 ? local : conn.info.id % shards;
    } else if (shards > 1) shard = (route(bytes.subarray(start, end), shards) >>> 0) % shards;
    const r = this.#channel.send(shard, call, bytes, start, end, 0, !oneway);
    if (r === SENT) {
      if (oneway) this.#release(conn);
    } else if (r === FULL) {
      this.#finish(conn, sink, code, requestId, oneway, overloaded(m, shard));
    } else if (r instanceof Promise) {
      const at = conn.arrivedAt;
      r.then((o) => {
        this.#finish(conn, sink, code, requestId, oneway, o, false, at);
        this.#o.endOfBatch();
      });
    } else {
      this.#finish(conn, sink, code, requestId, oneway, r as Outcome);
    }
  };

  #begin(conn: Connection, flags: number): void {
    this.stats.count(Counter.requests);
    if (flags & Flags.ONEWAY) this.stats.count(Counter.oneway_requests);
    this.stats.alloc(Res.request, 0);
    conn.inflight++;
    this.#inflight++;
  }

  /** Answers a call made here (or drops the answer of a ONEWAY call). */
  #finish(
    conn: Connection,
    sink: ReplySink,
    code: number,
    requestId: number,
    oneway: boolean,
    o: Outcome,
    counted = false,
    at = conn.arrivedAt,
  ): void {
    if (!oneway && !conn.closed && !conn.output.admit(o.size + FRAME_OVERHEAD)) {
      o = this.#overflow(conn, o.size + FRAME_OVERHEAD);
      counted = false;
    }
    if (!counted) countError(this.stats, o.status);
    if (!oneway && !conn.closed) {
      const size = o.size + FRAME_OVERHEAD;
      this.stats.alloc(Res.out_packet, size);
      sink.outcome(conn, code, requestId, o);
      this.stats.free(Res.out_packet, size);
      this.stats.count(Counter.replies);
      if (sink === wireSink) recorder.wire(code, o.status, at, conn.info.remote);
    }
    this.#release(conn);
  }

  /**
   * The answer to a reply that would take its connection's unread output
   * past the cap (see {@link Output.admit}); the reply is dropped.
   */
  #overflow(conn: Connection, size: number): Outcome {
    this.stats.count(Counter.output_overflows);
    return errorOutcome(
      Status.OVERLOADED,
      `Queue reply: its ${size} bytes would take the unread replies of this connection past ${conn.output.maxBytes} bytes; read replies before sending more`,
    );
  }

  /**
   * A call is over. A connection with replies to write is settled and
   * woken by its flush at the end of the batch; one without is done here.
   */
  #release(conn: Connection): void {
    conn.inflight--;
    this.#inflight--;
    this.stats.free(Res.request, 0);
    if (!conn.dirty) {
      if (conn.inflight === 0) conn.settle();
      conn.wake();
    }
    if (this.#waiting.size > 0 && !this.overloaded()) {
      for (const c of this.#waiting) c.wake();
      this.#waiting.clear();
    }
  }

  /**
   * Delivers one reply popped from a ring: the IO worker drains its end of
   * the channel into this (see {@link IoEnd.drain}).
   */
  readonly deliver = (head: Owed<Connection, ReplySink>, frame: Uint8Array): void => {
    if (head.fanout !== 0) {
      const status = readU32(frame, HeaderOffset.status);
      this.#fanouts.part(head.fanout, status, frame.subarray(HEADER_SIZE, frame.length - 4), true);
      return;
    }
    const conn = head.conn;
    // The shard counted the error; only the reply's delivery is ours.
    if (conn.closed) {
      // Dropped with its connection.
    } else if (head.sink.frame(conn, frame)) {
      this.stats.count(Counter.replies);
      if (head.sink === wireSink) {
        recorder.wire(head.code, readU32(frame, HeaderOffset.status), head.at, conn.info.remote);
      }
    } else {
      const o = this.#overflow(conn, frame.length);
      countError(this.stats, o.status);
      head.sink.outcome(conn, head.code, head.requestId, o);
      this.stats.count(Counter.replies);
      if (head.sink === wireSink) recorder.wire(head.code, o.status, head.at, conn.info.remote);
    }
    this.#release(conn);
  };

  /**
   * Shard `s`'s thread died (or was stuck and replaced: `cause` says which,
   * for the INTERNAL messages). Its replies already in the ring are
   * delivered; every call it still owed gets INTERNAL.
   */
  shardDied(s: number, cause = "died"): void {
    this.#channel.drain(this.deliver);
    this.#channel.shardDied(s, (head) => {
      const name = this.service.methods[head.code]?.name ?? `method ${head.code}`;
      const outcome = errorOutcome(
        Status.INTERNAL,
        `Run ${name}: the thread of shard ${s} ${cause} before replying; the request may or may not have taken effect`,
      );
      if (head.fanout !== 0) this.#fanouts.part(head.fanout, outcome.status, outcome.body, false);
      else {
        this.#finish(
          head.conn,
          head.sink,
          head.code,
          head.requestId,
          false,
          outcome,
          false,
          head.at,
        );
      }
    });
  }
}
