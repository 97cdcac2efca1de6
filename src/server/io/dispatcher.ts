/**
 * Where calls go, inside an IO worker: each call is routed to a shard and
 * runs right here (the shard this thread hosts in inline mode) or crosses a
 * ring to the shard's thread. The dispatcher keeps what each shard owes
 * (in order), joins fan-out parts, answers through the caller's
 * {@link ReplySink}, and settles what a dead shard took.
 *
 * @module
 */
import { Flags, FRAME_OVERHEAD, HEADER_SIZE, Status } from "../../protocol/constants.ts";
import { HeaderOffset, readU32 } from "../../protocol/frame.ts";
import { type CallerFootprint, Counter, Res, type StatsBlock } from "../../stats/resources.ts";
import type { CallSite, ReplySink } from "./connection.ts";
import type { Connection } from "./connection.ts";
import { countError, errorOutcome, Outcome } from "../outcome.ts";
import { Fifo } from "../channel/fifo.ts";
import { replyFrame, replyGeneration, REQUEST_HEADER, writeRequest } from "../channel/records.ts";
import { Ring } from "../channel/ring.ts";
import { Wakes } from "../channel/wakes.ts";
import { type Method, RequestBatch, type Service } from "../service.ts";
import type { ShardHost } from "../shard/shard_host.ts";
import { wireSink } from "./wire_codec.ts";
import { recorder } from "../../ops/recorder.ts";

/** A reply a shard owes, in the order the shard will send them. */
interface Owed {
  conn: Connection;
  sink: ReplySink;
  requestId: number;
  code: number;
  /** Fan-out id, or 0. */
  fanout: number;
  /** Body bytes it put in the ring, counted against the connection until answered. */
  bytes: number;
  /** When its frame arrived (performance.now()), for the latency metrics. */
  at: number;
}

/** A call routed to every shard, waiting for each shard's part. */
interface Fanout {
  conn: Connection;
  sink: ReplySink;
  code: number;
  requestId: number;
  method: Method<unknown>;
  request: unknown;
  parts: unknown[];
  remaining: number;
  failure: Outcome | null;
  /** The failure came from a shard, which already counted it in errors.*. */
  failureCounted: boolean;
  /** When its frame arrived (performance.now()). */
  at: number;
}

/** What the dispatcher needs from its IO worker. */
export interface DispatcherOptions {
  /** The service being served. */
  service: Service<unknown>;
  /** The IO worker's counters. */
  stats: StatsBlock;
  /** This IO worker's index; its own shard in inline mode. */
  index: number;
  /** Number of shards. */
  shards: number;
  /** requests[shard]: ring to that shard, null for the shard hosted here. */
  requests: (Ring | null)[];
  /** replies[shard]: ring from that shard, null for the shard hosted here. */
  replies: (Ring | null)[];
  /** The shard hosted in this thread (inline mode), or null. */
  host: ShardHost<unknown> | null;
  /** See {@link Rep.generation}. */
  generation: number;
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

/** Routes calls to shards and brings their answers back. */
export class Dispatcher implements CallSite {
  readonly service: Service<unknown>;
  readonly stats: StatsBlock;
  /** True once the server drains: new calls get SHUTTING_DOWN. */
  draining = false;
  /** See {@link CallSite.prefetchBatch}: only for a shard hosted here. */
  readonly prefetchBatch: RequestBatch | null;
  readonly #o: DispatcherOptions;
  /** Calls made here and not yet answered, across all connections. */
  #inflight = 0;
  /** Connections waiting for #inflight to fall below the cap. */
  readonly #waiting = new Set<Connection>();
  /** Shards pushed to in this batch, woken once at its end; the owner sets how. */
  readonly wakes: Wakes = new Wakes();
  /**
   * owed[shard]: calls pushed to that shard whose replies have not come
   * back. A shard answers its ring in order, so the head is always the next
   * reply; when a shard dies, what is left here is what it took.
   */
  readonly #owed: Fifo<Owed>[];
  /** Sum of the owed queues' sizes. */
  #awaiting = 0;
  readonly #fanouts = new Map<number, Fanout>();
  #nextFanout = 1;
  /** Reused footprint of calls run inline (they hold their in-packet). */
  readonly #inlineCaller: CallerFootprint = {
    receiveBytes: 0,
    inPacketBytes: 0,
    taskBytes: -1,
    ringSlotBytes: -1,
  };

  /** Binds the dispatcher to an IO worker's rings. */
  constructor(options: DispatcherOptions) {
    this.#o = options;
    this.service = options.service;
    this.stats = options.stats;
    this.#owed = options.requests.map(() => new Fifo<Owed>());
    const hook = options.host !== null && options.service.prefetch !== undefined;
    this.prefetchBatch = hook ? new RequestBatch(options.framesPerTurn) : null;
  }

  /** Number of shards (see {@link CallSite.shards}). */
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
    return this.#awaiting > 0 || this.#fanouts.size > 0;
  }

  // --- CallSite ------------------------------------------------------------

  prefetch(): void {
    this.#o.host!.executor.prefetch(this.prefetchBatch!);
  }

  reject(
    conn: Connection,
    sink: ReplySink,
    code: number,
    requestId: number,
    flags: number,
    outcome: Outcome,
  ): void {
    this.#begin(conn, flags);
    this.#finish(conn, sink, code, requestId, (flags & Flags.ONEWAY) !== 0, outcome);
  }

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
  ): void {
    this.#begin(conn, flags);
    const oneway = (flags & Flags.ONEWAY) !== 0;
    if (this.draining) {
      conn.closeWhenDone = true;
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
    const route = m.route;
    if (route === "all") {
      const body = bytes.subarray(start, end);
      this.#fanOut(conn, sink, m, code, requestId, flags, body, deadline);
      return;
    }
    const shards = this.#o.shards;
    let shard = 0;
    if (route === "local") shard = this.#o.host ? this.#o.index : conn.info.id % shards;
    else if (shards > 1) shard = (route(bytes.subarray(start, end), shards) >>> 0) % shards;
    if (this.#o.requests[shard] === null) {
      const outcome = this.#o.host!.executor.execute(
        code,
        bytes,
        start,
        end,
        deadline,
        this.#caller(conn),
      );
      if (outcome instanceof Promise) {
        const at = conn.arrivedAt;
        outcome.then((o) => {
          this.#finish(conn, sink, code, requestId, oneway, o, false, at);
          this.#o.endOfBatch();
        });
      } else {
        this.#finish(conn, sink, code, requestId, oneway, outcome);
      }
      return;
    }
    const body = bytes.subarray(start, end);
    if (!this.#push(shard, conn, sink, requestId, code, flags, body, deadline, 0, !oneway)) {
      this.#finish(conn, sink, code, requestId, oneway, this.#overloaded(m, shard));
      return;
    }
    if (oneway) this.#release(conn);
  }

  // --- internals -----------------------------------------------------------

  #begin(conn: Connection, flags: number): void {
    this.stats.count(Counter.requests);
    if (flags & Flags.ONEWAY) this.stats.count(Counter.oneway_requests);
    this.stats.alloc(Res.request, 0);
    conn.inflight++;
    this.#inflight++;
  }

  #caller(conn: Connection): CallerFootprint {
    const c = this.#inlineCaller;
    c.receiveBytes = conn.receiveBytes;
    c.inPacketBytes = conn.packetBytes > 0 ? conn.packetBytes : -1;
    return c;
  }

  #overloaded(m: Method<unknown>, shard: number): Outcome {
    return errorOutcome(
      Status.OVERLOADED,
      `Queue ${m.name}: the ring to shard ${shard} is full; retry later`,
    );
  }

  /**
   * Copies a call into shard `shard`'s ring; false when the ring is full.
   * A single-shard call stops holding its in-packet once copied, before the
   * shard can see it, so a snapshot never counts it twice.
   */
  #push(
    shard: number,
    conn: Connection,
    sink: ReplySink,
    requestId: number,
    code: number,
    flags: number,
    body: Uint8Array,
    deadline: number,
    fanout: number,
    wantReply: boolean,
  ): boolean {
    const ring = this.#o.requests[shard]!;
    const off = ring.reserve(REQUEST_HEADER + body.length);
    if (off < 0) return false;
    const generation = this.#o.generation;
    const connId = conn.info.id;
    writeRequest(
      ring,
      off,
      connId,
      conn.receiveBytes,
      requestId,
      code,
      flags,
      body,
      deadline,
      fanout,
      generation,
    );
    if (fanout === 0) conn.releasePacket();
    this.stats.alloc(Res.ring_slot, Ring.recordSize(REQUEST_HEADER + body.length));
    ring.commit();
    this.wakes.touch(shard);
    if (wantReply) {
      const at = conn.arrivedAt;
      this.#owed[shard].push({ conn, sink, requestId, code, fanout, bytes: body.length, at });
      this.#awaiting++;
      conn.ringBytes += body.length;
    }
    return true;
  }

  #fanOut(
    conn: Connection,
    sink: ReplySink,
    m: Method<unknown>,
    code: number,
    requestId: number,
    flags: number,
    body: Uint8Array,
    deadline: number,
  ): void {
    const oneway = (flags & Flags.ONEWAY) !== 0;
    let request: unknown;
    try {
      request = m.request.decode(body.slice());
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const o = errorOutcome(Status.BAD_REQUEST, `Decode ${m.name} request: ${msg}`);
      this.#finish(conn, sink, code, requestId, oneway, o);
      return;
    }
    const id = oneway ? 0 : this.#nextFanout++;
    if (this.#nextFanout > 0x7fffffff) this.#nextFanout = 1;
    const f: Fanout = {
      conn,
      sink,
      code,
      requestId,
      method: m,
      request,
      parts: [],
      remaining: 0,
      failure: null,
      failureCounted: false,
      at: conn.arrivedAt,
    };
    if (!oneway) {
      this.#fanouts.set(id, f);
      this.stats.alloc(Res.fanout, 0);
    }
    let local = -1;
    for (let s = 0; s < this.#o.shards; s++) {
      if (this.#o.requests[s] === null) {
        local = s;
        continue;
      }
      if (this.#push(s, conn, sink, requestId, code, flags, body, deadline, id, !oneway)) {
        if (!oneway) f.remaining++;
      } else if (!f.failure) {
        f.failure = this.#overloaded(m, s);
      }
    }
    if (local >= 0) {
      const outcome = this.#o.host!.executor.execute(
        code,
        body,
        0,
        body.length,
        deadline,
        this.#caller(conn),
      );
      if (!oneway) {
        f.remaining++;
        if (outcome instanceof Promise) {
          outcome.then((o) => this.#part(id, o.status, o.body, false));
        } else this.#part(id, outcome.status, outcome.body, false);
      }
    }
    if (oneway) this.#release(conn);
    // No part was taken (every ring full); unless the local part, run just
    // now, was the only one and already completed it.
    else if (f.remaining === 0 && this.#fanouts.get(id) === f) this.#completeFanout(id, f);
  }

  /** One shard's part of fan-out `id`; `body` may be a view into a ring. */
  #part(id: number, status: number, body: Uint8Array, counted: boolean): void {
    const f = this.#fanouts.get(id);
    if (!f) return;
    f.remaining--;
    if (status !== 0) {
      if (!f.failure) {
        f.failure = new Outcome(status, body.slice());
        f.failureCounted = counted;
      }
    } else if (!f.failure) {
      try {
        f.parts.push(f.method.reply.decode(body.slice()));
      } catch (e) {
        f.failure = errorOutcome(Status.INTERNAL, `Decode ${f.method.name} part: ${String(e)}`);
      }
    }
    if (f.remaining === 0) this.#completeFanout(id, f);
  }

  #completeFanout(id: number, f: Fanout): void {
    this.#fanouts.delete(id);
    this.stats.free(Res.fanout, 0);
    let outcome = f.failure;
    if (!outcome) {
      try {
        const merged = f.method.merge!(f.parts, f.request, this.#o.maxBody);
        outcome = Outcome.encoded(0, f.method.reply.encode(merged));
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        outcome = errorOutcome(Status.INTERNAL, `Merge ${f.method.name}: ${msg}`);
      }
    }
    const counted = f.failure !== null && f.failureCounted;
    this.#finish(f.conn, f.sink, f.code, f.requestId, false, outcome, counted, f.at);
    this.#o.endOfBatch();
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
    if (!oneway && !conn.closed && !conn.admitReply(o.size + FRAME_OVERHEAD)) {
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
   * past the cap (see {@link Connection.admitReply}); the reply is dropped.
   */
  #overflow(conn: Connection, size: number): Outcome {
    this.stats.count(Counter.output_overflows);
    return errorOutcome(
      Status.OVERLOADED,
      `Queue reply: its ${size} bytes would take the unread replies of this connection past ${conn.maxOutputBytes} bytes; read replies before sending more`,
    );
  }

  #release(conn: Connection): void {
    conn.inflight--;
    this.#inflight--;
    this.stats.free(Res.request, 0);
    if (conn.inflight === 0) conn.settle();
    conn.wake();
    if (this.#waiting.size > 0 && !this.overloaded()) {
      for (const c of this.#waiting) c.wake();
      this.#waiting.clear();
    }
  }

  /** Delivers every reply that shards have pushed; returns how many. */
  drainReplies(): number {
    let n = 0;
    const replies = this.#o.replies;
    for (let s = 0; s < replies.length; s++) {
      const ring = replies[s];
      if (!ring) continue;
      const owed = this.#owed[s];
      let slots = 0;
      let slotBytes = 0;
      let off: number;
      while ((off = ring.next()) >= 0) {
        slots++;
        slotBytes += Ring.recordSize(ring.payloadLength);
        n++;
        // Meant for this IO worker's previous life: nobody is waiting.
        if (replyGeneration(ring, off) !== this.#o.generation) continue;
        const frame = replyFrame(ring, off);
        const frameLen = frame.length;
        const head = owed.shift()!;
        this.#awaiting--;
        head.conn.ringBytes -= head.bytes;
        if (head.fanout !== 0) {
          const status = readU32(frame, HeaderOffset.status);
          this.#part(head.fanout, status, frame.subarray(HEADER_SIZE, frameLen - 4), true);
          continue;
        }
        // The shard counted the error; only the reply's delivery is ours.
        if (head.conn.closed) {
          // Dropped with its connection.
        } else if (head.conn.admitReply(frameLen)) {
          head.sink.frame(head.conn, frame);
          this.stats.count(Counter.replies);
          if (head.sink === wireSink) {
            const status = readU32(frame, HeaderOffset.status);
            recorder.wire(head.code, status, head.at, head.conn.info.remote);
          }
        } else {
          const o = this.#overflow(head.conn, frameLen);
          countError(this.stats, o.status);
          head.sink.outcome(head.conn, head.code, head.requestId, o);
          this.stats.count(Counter.replies);
          if (head.sink === wireSink) {
            recorder.wire(head.code, o.status, head.at, head.conn.info.remote);
          }
        }
        this.#release(head.conn);
      }
      ring.release();
      // Counted when released, as the shard host does (see there).
      if (slots > 0) this.stats.freeMany(Res.ring_slot, slots, slotBytes);
    }
    return n;
  }

  /**
   * Shard `s`'s thread died (or was stuck and replaced: `cause` says which,
   * for the INTERNAL messages). Its replies already in the ring are delivered;
   * every call it still owed gets INTERNAL; the records it never took are
   * dropped, so its replacement starts on an empty ring.
   */
  shardDied(s: number, cause = "died"): void {
    this.drainReplies();
    const owed = this.#owed[s];
    for (let head = owed.shift(); head; head = owed.shift()) {
      this.#awaiting--;
      head.conn.ringBytes -= head.bytes;
      const name = this.service.methods[head.code]?.name ?? `method ${head.code}`;
      const outcome = errorOutcome(
        Status.INTERNAL,
        `Run ${name}: the thread of shard ${s} ${cause} before replying; the request may or may not have taken effect`,
      );
      if (head.fanout !== 0) this.#part(head.fanout, outcome.status, outcome.body, false);
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
    }
    const ring = this.#o.requests[s];
    if (ring) {
      const dropped = ring.discardUnconsumed();
      if (dropped.records > 0) this.stats.freeMany(Res.ring_slot, dropped.records, dropped.bytes);
    }
  }
}
