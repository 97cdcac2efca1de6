/**
 * IO worker entry: accepts connections (its own SO_REUSEPORT listener, or
 * streams handed over by the main thread), cuts frames, checks them, and
 * routes each request to a shard: run here when the shard lives in this
 * thread (inline mode), else pushed into that shard's request ring. Replies
 * from rings are copied to their connections, and every connection with
 * new replies is written once per batch.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { Flags, FRAME_OVERHEAD, HEADER_SIZE, Status } from "../protocol/constants.ts";
import { crcMatches, HeaderOffset, readU32 } from "../protocol/frame.ts";
import { Counter, Res, snapshot, StatsBlock } from "../stats/resources.ts";
import { Connection, type ConnectionOwner } from "./connection.ts";
import { countError, errorOutcome, Executor, type Outcome } from "./executor.ts";
import { Rep, REPLY_HEADER, Req, REQUEST_HEADER } from "./records.ts";
import { Ring } from "./ring.ts";
import type { Method, Service } from "./service.ts";
import { ShardHost } from "./shard_host.ts";
import {
  Control,
  openRing,
  shardCount,
  shardThread,
  type SharedPlan,
  threadIndex,
  wake,
  wakeWord,
} from "./topology.ts";
import { StreamTransport, type Transport } from "./transport.ts";
import type { Limits } from "./limits.ts";
import { Fifo } from "./fifo.ts";
import { encodeFrame } from "../protocol/frame.ts";
import { encodeError } from "../protocol/messages.ts";

/** The worker global, typed here rather than through a lib directive (JSR bans those). */
const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

/** The message that starts an IO worker. */
export interface IoWorkerInit {
  /** Shared memory and layout. */
  plan: SharedPlan;
  /** This worker's index. */
  index: number;
  /** URL of the service module (default export). */
  serviceUrl: string;
  /** Body limit. */
  maxBody: number;
  /** Backpressure, fairness and timeout limits. */
  limits: Limits;
  /** Bumped each time this IO worker is restarted; see {@link Rep.generation}. */
  generation: number;
  /** Listen here with SO_REUSEPORT; absent when the main thread accepts. */
  listen?: { hostname: string; port: number };
}

/** Messages the main thread sends after start. */
export type IoWorkerCommand =
  | {
    type: "conn";
    /** The main thread's id for it, reported back when it closes. */
    id: number;
    readable: ReadableStream<Uint8Array>;
    writable: WritableStream<Uint8Array>;
    remote: string;
  }
  | { type: "drain"; timeoutMs: number }
  | { type: "shard-died"; shard: number }
  | { type: "stop" };

/** A reply a shard owes this IO worker, in the order the shard will send them. */
interface Owed {
  conn: Connection;
  requestId: number;
  code: number;
  /** Fan-out id, or 0. */
  fanout: number;
}

/** A Scan-like request waiting for every shard's part. */
interface Fanout {
  conn: Connection;
  code: number;
  requestId: number;
  method: Method<unknown>;
  request: unknown;
  parts: unknown[];
  remaining: number;
  failure: Outcome | null;
  /** The failure came from a shard, which already counted it in errors.*. */
  failureCounted: boolean;
}

class IoWorker implements ConnectionOwner {
  readonly stats: StatsBlock;
  readonly maxBody: number;
  readonly limits: Limits;
  /** Requests parsed here and not yet answered, across all connections. */
  #inflight = 0;
  /** Connections waiting for #inflight to fall below the worker's cap. */
  readonly #waitingForWorker = new Set<Connection>();
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  readonly #plan: SharedPlan;
  readonly #index: number;
  readonly #me: number;
  readonly #service: Service<unknown>;
  readonly #shards: number;
  readonly #control: Int32Array;
  /** requests[shard]: ring to that shard, null for the shard hosted here. */
  readonly #requests: (Ring | null)[];
  /** replies[shard]: ring from that shard, null for the shard hosted here. */
  readonly #replies: (Ring | null)[];
  /** The shard this thread hosts in inline mode. */
  readonly #host: ShardHost<unknown> | null;
  readonly #conns = new Map<number, Connection>();
  #nextConnId = 1;
  readonly #dirty: Connection[] = [];
  /** Shards pushed to in this batch, woken once at its end. */
  readonly #touched = new Set<number>();
  readonly #fanouts = new Map<number, Fanout>();
  #nextFanout = 1;
  /**
   * owed[shard]: requests pushed to that shard whose replies have not come
   * back. A shard answers its ring in order, so the head is always the
   * next reply; when a shard dies, what is left here is what it took.
   */
  readonly #owed: Fifo<Owed>[];
  /** Sum of the owed queues' sizes. */
  #awaiting = 0;
  readonly #generation: number;
  #listener: Deno.Listener | null = null;
  #draining = false;
  #stopped = false;
  #drainReported = false;

  constructor(init: IoWorkerInit, service: Service<unknown>) {
    const plan = init.plan;
    this.#plan = plan;
    this.#index = init.index;
    this.#service = service;
    this.maxBody = init.maxBody;
    this.limits = init.limits;
    this.#generation = init.generation;
    this.#shards = shardCount(plan.layout);
    this.#me = threadIndex(plan.layout, "io", init.index);
    this.#control = new Int32Array(plan.control);
    this.stats = new StatsBlock(plan.stats, this.#me);
    this.stats.reset();
    this.#requests = plan.requestRings[init.index].map(openRing);
    this.#owed = this.#requests.map(() => new Fifo<Owed>());
    this.#replies = plan.replyRings.map((row) => openRing(row[init.index]));
    if (plan.layout.mode === "inline") {
      const exec = new Executor(
        service,
        init.index,
        this.#shards,
        init.maxBody,
        () => snapshot(plan.stats),
        plan.startedAt,
      );
      this.#host = new ShardHost(
        exec,
        this.stats,
        plan.requestRings.map((row) => openRing(row[init.index])),
        plan.replyRings[init.index].map(openRing),
        "queue",
      );
      this.#host.wakeNow = (io) => wake(this.#control, threadIndex(plan.layout, "io", io));
    } else {
      this.#host = null;
    }
  }

  // --- accepting -----------------------------------------------------------

  listen(hostname: string, port: number): number {
    const listener = Deno.listen({ hostname, port, reusePort: true });
    this.#listener = listener;
    this.#acceptLoop(listener);
    return listener.addr.port;
  }

  async #acceptLoop(listener: Deno.Listener): Promise<void> {
    try {
      for await (const conn of listener) {
        try {
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch {
          // Not fatal: only latency suffers.
        }
        const addr = conn.remoteAddr as Deno.NetAddr;
        this.adopt(conn, `${addr.hostname}:${addr.port}`);
      }
    } catch {
      // The listener was closed for draining.
    }
  }

  adopt(transport: Transport, remote: string): void {
    this.stats.count(Counter.connections_accepted);
    if (this.#draining) {
      this.stats.count(Counter.connections_rejected);
      transport.close();
      return;
    }
    const open = Atomics.add(this.#control, Control.openConnections, 1);
    if (open >= this.limits.maxConnections) {
      Atomics.sub(this.#control, Control.openConnections, 1);
      this.stats.count(Counter.connections_rejected);
      this.#refuse(transport);
      return;
    }
    const id = this.#nextConnId++;
    const conn = new Connection(this, transport, { id, ioWorker: this.#index, remote });
    this.#conns.set(id, conn);
    this.#service.onConnect?.(conn.info);
    conn.run();
  }

  /**
   * Tells a connection over the limit why before closing it: one error
   * frame (request id 0, code 0, OVERLOADED), as Redis answers "max number
   * of clients reached".
   */
  #refuse(transport: Transport): void {
    const message =
      `Accept connection: the server is at its limit of ${this.limits.maxConnections} connections; retry later`;
    const frame = encodeFrame(
      {
        flags: Flags.REPLY | Flags.ERROR,
        code: 0,
        requestId: 0,
        status: Status.OVERLOADED,
        timeoutMs: 0,
      },
      encodeError(Status.OVERLOADED, message),
    );
    transport.write(frame).catch(() => 0).finally(() => transport.close());
  }

  overloaded(): boolean {
    return this.#inflight >= this.limits.maxInflightPerWorker;
  }

  waitForWorker(conn: Connection): void {
    this.#waitingForWorker.add(conn);
  }

  /** Closes connections idle past the idle timeout; runs on an interval. */
  #closeIdle(): void {
    const now = Date.now();
    const limit = this.limits.idleTimeoutMs;
    for (const conn of [...this.#conns.values()]) {
      if (conn.idleFor(now, limit)) {
        this.stats.count(Counter.connections_timed_out);
        conn.close();
      }
    }
  }

  startIdleTimer(): void {
    const limit = this.limits.idleTimeoutMs;
    if (limit <= 0) return;
    this.stats.alloc(Res.sweeper, 0);
    this.#idleTimer = setInterval(() => this.#closeIdle(), Math.min(1000, Math.max(10, limit / 4)));
  }

  closed(conn: Connection): void {
    Atomics.sub(this.#control, Control.openConnections, 1);
    this.#waitingForWorker.delete(conn);
    this.#conns.delete(conn.info.id);
    this.#service.onDisconnect?.(conn.info);
    this.#maybeDrained();
  }

  // --- requests ------------------------------------------------------------

  /** Bytes of the frame being dispatched, while counted as `in_packet`. */
  #packetBytes = 0;
  /** Reused footprint of requests run inline (they hold their in-packet). */
  readonly #inlineCaller = { receiveBytes: 0, inPacketBytes: 0, taskBytes: -1, ringSlotBytes: -1 };

  /** Stops counting the frame being dispatched as held (idempotent). */
  #releasePacket(): void {
    if (this.#packetBytes > 0) {
      this.stats.free(Res.in_packet, this.#packetBytes);
      this.#packetBytes = 0;
    }
  }

  dispatch(conn: Connection, buf: Uint8Array, off: number, total: number): void {
    const stats = this.stats;
    stats.count(Counter.requests);
    stats.alloc(Res.request, 0);
    stats.alloc(Res.in_packet, total);
    this.#packetBytes = total;
    conn.inflight++;
    this.#inflight++;
    const flags = buf[off + HeaderOffset.flags];
    const code = buf[off + HeaderOffset.code] | (buf[off + HeaderOffset.code + 1] << 8);
    const requestId = readU32(buf, off + HeaderOffset.requestId);
    const oneway = (flags & Flags.ONEWAY) !== 0;
    if (oneway) stats.count(Counter.oneway_requests);
    try {
      if (!crcMatches(buf, off, total)) {
        this.#finish(
          conn,
          code,
          requestId,
          oneway,
          errorOutcome(
            Status.CRC_MISMATCH,
            "Check frame: the body's CRC-32 does not match the trailer",
          ),
        );
        return;
      }
      if (this.#draining) {
        conn.closeWhenDone = true;
        this.#finish(
          conn,
          code,
          requestId,
          oneway,
          errorOutcome(Status.SHUTTING_DOWN, "Accept request: the server is shutting down"),
        );
        return;
      }
      const m = this.#service.methods[code];
      if (!m) {
        this.#finish(
          conn,
          code,
          requestId,
          oneway,
          errorOutcome(Status.UNKNOWN_METHOD, `Find method: no method has code ${code}`),
        );
        return;
      }
      const timeoutMs = readU32(buf, off + HeaderOffset.timeoutMs);
      const deadline = timeoutMs === 0 ? 0 : conn.readAt + timeoutMs;
      const body = buf.subarray(off + HEADER_SIZE, off + total - 4);
      const route = m.route;
      if (route === "all") {
        this.#fanOut(conn, m, code, requestId, flags, body, deadline);
        return;
      }
      let shard: number;
      if (route === "local") {
        shard = this.#host ? this.#index : conn.info.id % this.#shards;
      } else {
        shard = (route(body, this.#shards) >>> 0) % this.#shards;
      }
      if (this.#requests[shard] === null) {
        const outcome = this.#host!.executor.execute(
          code,
          body,
          deadline,
          this.#caller(conn, total),
        );
        if (outcome instanceof Promise) {
          outcome.then((o) => this.#finishLocal(conn, code, requestId, oneway, o));
        } else {
          this.#finish(conn, code, requestId, oneway, outcome);
        }
        return;
      }
      if (!this.#push(shard, conn, requestId, code, flags, body, deadline, 0, !oneway)) {
        this.#finish(conn, code, requestId, oneway, this.#overloaded(m, shard));
        return;
      }
      if (oneway) this.#release(conn);
    } finally {
      this.#releasePacket();
    }
  }

  #caller(conn: Connection, total: number) {
    const c = this.#inlineCaller;
    c.receiveBytes = conn.receiveBytes;
    c.inPacketBytes = total;
    return c;
  }

  #overloaded(m: Method<unknown>, shard: number): Outcome {
    return errorOutcome(
      Status.OVERLOADED,
      `Queue ${m.name}: the ring to shard ${shard} is full; retry later`,
    );
  }

  /**
   * Copies a request into shard `shard`'s ring; false when the ring is full.
   * A single-shard request stops holding its in-packet once copied, before
   * the shard can see it, so a snapshot never counts it twice.
   */
  #push(
    shard: number,
    conn: Connection,
    requestId: number,
    code: number,
    flags: number,
    body: Uint8Array,
    deadline: number,
    fanout: number,
    wantReply: boolean,
  ): boolean {
    const ring = this.#requests[shard]!;
    const off = ring.reserve(REQUEST_HEADER + body.length);
    if (off < 0) return false;
    const w = off >>> 2;
    const u32 = ring.u32;
    u32[w + Req.conn] = conn.info.id;
    u32[w + Req.receiveBytes] = conn.receiveBytes;
    u32[w + Req.requestId] = requestId;
    u32[w + Req.codeFlags] = code | (flags << 16);
    u32[w + Req.bodyLen] = body.length;
    u32[w + Req.fanout] = fanout;
    u32[w + Req.generation] = this.#generation;
    ring.f64[(off + Req.deadlineByte) >>> 3] = deadline;
    ring.u8.set(body, off + REQUEST_HEADER);
    if (fanout === 0) this.#releasePacket();
    this.stats.alloc(Res.ring_slot, Ring.recordSize(REQUEST_HEADER + body.length));
    ring.commit();
    this.#touched.add(shard);
    if (wantReply) {
      this.#owed[shard].push({ conn, requestId, code, fanout });
      this.#awaiting++;
    }
    return true;
  }

  #fanOut(
    conn: Connection,
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
      this.#finish(
        conn,
        code,
        requestId,
        oneway,
        errorOutcome(Status.BAD_REQUEST, `Decode ${m.name} request: ${msg}`),
      );
      return;
    }
    const id = oneway ? 0 : this.#nextFanout++;
    if (this.#nextFanout > 0x7fffffff) this.#nextFanout = 1;
    const f: Fanout = {
      conn,
      code,
      requestId,
      method: m,
      request,
      parts: [],
      remaining: 0,
      failure: null,
      failureCounted: false,
    };
    if (!oneway) {
      this.#fanouts.set(id, f);
      this.stats.alloc(Res.fanout, 0);
    }
    let local = -1;
    for (let s = 0; s < this.#shards; s++) {
      if (this.#requests[s] === null) {
        local = s;
        continue;
      }
      if (this.#push(s, conn, requestId, code, flags, body, deadline, id, !oneway)) {
        if (!oneway) f.remaining++;
      } else if (!f.failure) {
        f.failure = this.#overloaded(m, s);
      }
    }
    if (local >= 0) {
      const outcome = this.#host!.executor.execute(
        code,
        body,
        deadline,
        this.#caller(conn, body.length + FRAME_OVERHEAD),
      );
      if (!oneway) {
        f.remaining++;
        if (outcome instanceof Promise) {
          outcome.then((o) => this.#part(id, o.status, o.body, false));
        } else this.#part(id, outcome.status, outcome.body, false);
      }
    }
    if (oneway) this.#release(conn);
    else if (f.remaining === 0) this.#completeFanout(id, f);
  }

  /** One shard's part of fan-out `id`; `body` may be a view into a ring. */
  #part(id: number, status: number, body: Uint8Array, counted: boolean): void {
    const f = this.#fanouts.get(id);
    if (!f) return;
    f.remaining--;
    if (status !== 0) {
      if (!f.failure) {
        f.failure = { status, body: body.slice() };
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
        const merged = f.method.merge!(f.parts, f.request, this.maxBody);
        outcome = { status: 0, body: f.method.reply.encode(merged).finish() };
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        outcome = errorOutcome(Status.INTERNAL, `Merge ${f.method.name}: ${msg}`);
      }
    }
    this.#finish(
      f.conn,
      f.code,
      f.requestId,
      false,
      outcome,
      f.failure !== null && f.failureCounted,
    );
    this.endOfBatch();
  }

  #finishLocal(conn: Connection, code: number, requestId: number, oneway: boolean, o: Outcome) {
    this.#finish(conn, code, requestId, oneway, o);
    this.endOfBatch();
  }

  /** Answers a request that was parsed on `conn` (or drops the answer for ONEWAY). */
  #finish(
    conn: Connection,
    code: number,
    requestId: number,
    oneway: boolean,
    o: Outcome,
    counted = false,
  ): void {
    if (!counted) countError(this.stats, o.status);
    if (!oneway && !conn.closed) {
      this.stats.alloc(Res.out_packet, o.body.length);
      conn.queueReply(code, requestId, o);
      this.stats.free(Res.out_packet, o.body.length);
      this.stats.count(Counter.replies);
    }
    this.#release(conn);
  }

  #release(conn: Connection): void {
    conn.inflight--;
    this.#inflight--;
    this.stats.free(Res.request, 0);
    if (conn.inflight === 0) conn.settle();
    conn.wake();
    if (this.#waitingForWorker.size > 0 && !this.overloaded()) {
      for (const c of this.#waitingForWorker) c.wake();
      this.#waitingForWorker.clear();
    }
  }

  // --- batches -------------------------------------------------------------

  markDirty(conn: Connection): void {
    this.#dirty.push(conn);
  }

  /** Ends a batch: wakes the shards that got requests, writes the replies. */
  endOfBatch(): void {
    if (this.#touched.size > 0) {
      const layout = this.#plan.layout;
      for (const s of this.#touched) wake(this.#control, shardThread(layout, s));
      this.#touched.clear();
    }
    const dirty = this.#dirty;
    for (let i = 0; i < dirty.length; i++) {
      if (dirty[i].dirty) dirty[i].flush();
    }
    dirty.length = 0;
    this.#maybeDrained();
  }

  /** Copies every reply that shards have pushed; returns how many. */
  #drainReplies(): number {
    let n = 0;
    for (let s = 0; s < this.#replies.length; s++) {
      const ring = this.#replies[s];
      if (!ring) continue;
      const owed = this.#owed[s];
      let slots = 0;
      let slotBytes = 0;
      let off: number;
      while ((off = ring.next()) >= 0) {
        const w = off >>> 2;
        slots++;
        slotBytes += Ring.recordSize(ring.payloadLength);
        n++;
        // Meant for this IO worker's previous life: nobody is waiting.
        if (ring.u32[w + Rep.generation] !== this.#generation) continue;
        const frameLen = ring.u32[w + Rep.frameLen];
        const frame = ring.u8.subarray(off + REPLY_HEADER, off + REPLY_HEADER + frameLen);
        const head = owed.shift()!;
        this.#awaiting--;
        const status = readU32(frame, HeaderOffset.status);
        if (head.fanout !== 0) {
          this.#part(head.fanout, status, frame.subarray(HEADER_SIZE, frameLen - 4), true);
          continue;
        }
        // The shard counted the error; only the reply's delivery is ours.
        if (!head.conn.closed) {
          head.conn.queueFrame(frame);
          this.stats.count(Counter.replies);
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
   * Shard `s`'s thread died. Its replies already in the ring are delivered;
   * every request it still owed gets INTERNAL; the records it never took
   * are dropped, so its replacement starts on an empty ring.
   */
  shardDied(s: number): void {
    this.#drainReplies();
    const owed = this.#owed[s];
    for (let head = owed.shift(); head; head = owed.shift()) {
      this.#awaiting--;
      const name = this.#service.methods[head.code]?.name ?? `method ${head.code}`;
      const outcome = errorOutcome(
        Status.INTERNAL,
        `Run ${name}: the thread of shard ${s} died before replying; the request may or may not have taken effect`,
      );
      if (head.fanout !== 0) this.#part(head.fanout, outcome.status, outcome.body, false);
      else this.#finish(head.conn, head.code, head.requestId, false, outcome);
    }
    const ring = this.#requests[s];
    if (ring) {
      const dropped = ring.discardUnconsumed();
      if (dropped.records > 0) this.stats.freeMany(Res.ring_slot, dropped.records, dropped.bytes);
    }
    this.endOfBatch();
  }

  /** Waits for wake-ups and serves rings until stopped. */
  async pump(): Promise<void> {
    const control = this.#control;
    const word = wakeWord(this.#me);
    let idleAt = 0;
    while (!this.#stopped) {
      const seen = Atomics.load(control, word);
      let done = this.#drainReplies();
      if (this.#host) {
        done += await this.#host.drain();
        const touched = this.#host.takeTouched();
        for (const io of touched) wake(control, threadIndex(this.#plan.layout, "io", io));
        touched.clear();
      }
      this.endOfBatch();
      if (done > 0 || Atomics.load(control, word) !== seen) {
        // More may be coming; let socket reads run first.
        await new Promise((r) => setImmediate(r));
        continue;
      }
      let timeout = 1000;
      if (this.#host) {
        const now = Date.now();
        if (now >= idleAt) idleAt = now + Math.min(this.#host.executor.idle(), 1000);
        if (this.#host.parked > 0) idleAt = now + 1;
        timeout = Math.max(1, idleAt - now);
      }
      const r = Atomics.waitAsync(control, word, seen, timeout);
      if (r.async) await r.value;
    }
  }

  // --- shutdown ------------------------------------------------------------

  /** Stops accepting, lets requests in flight finish, then closes. */
  drain(timeoutMs: number): void {
    this.#draining = true;
    this.#listener?.close();
    this.#listener = null;
    // Armed before anything can finish the drain, so that finishing clears it.
    this.stats.alloc(Res.timer, 0);
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = undefined;
      this.stats.free(Res.timer, 0);
      for (const conn of [...this.#conns.values()]) conn.close();
      this.#reportDrained(true);
    }, timeoutMs);
    for (const conn of [...this.#conns.values()]) {
      conn.closeWhenDone = true;
      conn.settle();
      if (conn.inflight === 0 && conn.queuedBytes === 0) conn.close();
    }
    this.#maybeDrained();
  }
  #drainTimer: ReturnType<typeof setTimeout> | undefined;

  #maybeDrained(): void {
    if (!this.#draining || this.#drainReported) return;
    if (this.#conns.size === 0 && this.#awaiting === 0 && this.#fanouts.size === 0) {
      this.#reportDrained(false);
    }
  }

  #reportDrained(forced: boolean): void {
    if (this.#drainReported) return;
    this.#drainReported = true;
    if (this.#drainTimer !== undefined) {
      clearTimeout(this.#drainTimer);
      this.#drainTimer = undefined;
      this.stats.free(Res.timer, 0);
    }
    scope.postMessage({ type: "drained", forced, awaiting: this.#awaiting });
  }

  /** Final stop: the main thread knows every shard is idle. */
  async stop(): Promise<void> {
    if (this.#idleTimer !== undefined) {
      clearInterval(this.#idleTimer);
      this.#idleTimer = undefined;
      this.stats.free(Res.sweeper, 0);
    }
    // Replies that were still in rings (a forced drain) are accounted for.
    this.#drainReplies();
    if (this.#host) await this.#host.drain();
    this.#stopped = true;
    wake(this.#control, this.#me);
  }
}

let worker: IoWorker | null = null;

scope.onmessage = async (e: MessageEvent<IoWorkerInit | IoWorkerCommand>) => {
  const msg = e.data;
  if (!("type" in msg)) {
    const service = (await import(msg.serviceUrl)).default as Service<unknown>;
    worker = new IoWorker(msg, service);
    const port = msg.listen ? worker.listen(msg.listen.hostname, msg.listen.port) : 0;
    worker.pump();
    worker.startIdleTimer();
    scope.postMessage({ type: "ready", port });
    return;
  }
  if (!worker) return;
  switch (msg.type) {
    case "conn": {
      const id = msg.id;
      // The main thread owns the socket and closes it if this worker dies:
      // tell it when this one is done.
      const transport = new StreamTransport(
        msg.readable,
        msg.writable,
        () => scope.postMessage({ type: "conn-closed", id }),
      );
      worker.adopt(transport, msg.remote);
      break;
    }
    case "drain":
      worker.drain(msg.timeoutMs);
      break;
    case "shard-died":
      worker.shardDied(msg.shard);
      scope.postMessage({ type: "shard-reset", shard: msg.shard });
      break;
    case "stop":
      await worker.stop();
      scope.postMessage({ type: "stopped" });
      break;
  }
};
