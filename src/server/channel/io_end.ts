/**
 * An IO worker's end of the channel to the shards: everything between "a
 * call leaves the IO worker" and "its reply comes back". A call for a shard
 * of another thread is copied into that shard's request ring and owed a
 * reply; the replies are popped from the reply rings in the order the shard
 * sends them and matched with what was owed; a dead shard's debts are
 * settled. A call for the shard this thread hosts (inline mode) is the
 * local end: it runs right here on the shard's executor, with no ring.
 *
 * @module
 */
import { Res, type StatsBlock } from "../../stats/resources.ts";
import type { CallerFootprint } from "../../stats/resources.ts";
import type { Outcome } from "../outcome.ts";
import type { Executor } from "../shard/executor.ts";
import type { RequestBatch } from "../service.ts";
import { Fifo } from "./fifo.ts";
import { REQUEST_HEADER, writeRequest } from "./requests.ts";
import { replyFrame, replyGeneration } from "./replies.ts";
import { Ring } from "./ring.ts";
import { Wakes } from "./wakes.ts";

/** What the channel reads and keeps up to date on the connection a call came from. */
export interface Caller {
  /** Its IO-worker-local id, which the shard echoes. */
  readonly info: { readonly id: number };
  /** Its receive buffer's size, for the shard's view of the footprint. */
  readonly receiveBytes: number;
  /** Bytes of its frame still counted as `in_packet`; 0 once copied to a ring. */
  packetBytes: number;
  /** Body bytes it has waiting in rings. */
  ringBytes: number;
  /** When its last read arrived (performance.now()): where a call's latency starts. */
  readonly arrivedAt: number;
}

/** A reply a shard owes, in the order the shard will send them. */
export interface Owed<C extends Caller, S> {
  /** The connection that asked. */
  conn: C;
  /** Where its answer goes. */
  sink: S;
  /** Its request id and method code. */
  requestId: number;
  code: number;
  /** Fan-out id, or 0. */
  fanout: number;
  /** Body bytes it put in the ring, counted against the connection until answered. */
  bytes: number;
  /** When its frame arrived (performance.now()), for the latency metrics. */
  at: number;
}

/** The shard hosted in this thread (inline mode): its executor's entry points. */
export type LocalShard = Pick<Executor<unknown>, "execute" | "prefetch">;

/**
 * One call on its way to a shard. The dispatcher fills one and reuses it,
 * so it is read only during {@link IoEnd.send}.
 */
export interface Call<C extends Caller, S> {
  /** The connection that asked. */
  conn: C;
  /** Where its answer goes. */
  sink: S;
  /** Method code, request id and the frame's flags. */
  code: number;
  requestId: number;
  flags: number;
  /** Date.now() deadline, 0 for none. */
  deadline: number;
}

/** {@link IoEnd.send}: the call is in the shard's ring; its reply comes through {@link IoEnd.drain}. */
export const SENT = 0;
/** {@link IoEnd.send}: the shard's ring has no room; nothing was sent. */
export const FULL = 1;

/**
 * One IO worker's end of the channel.
 *
 * @example
 * ```ts ignore
 * const end = new IoEnd(stats, requestRings, replyRings, generation, null, -1);
 * end.send(shard, call, bytes, start, end, 0, true);
 * end.wakes.flush();
 * end.drain((owed, frame) => owed.sink.frame(owed.conn, frame));
 * ```
 */
export class IoEnd<C extends Caller, S> {
  /** Shards sent to in this batch, woken once at its end; the owner sets how. */
  readonly wakes: Wakes = new Wakes();
  readonly #stats: StatsBlock;
  /** requests[shard]: ring to that shard, null for the local one. */
  readonly #requests: (Ring | null)[];
  /** replies[shard]: ring from that shard, null for the local one. */
  readonly #replies: (Ring | null)[];
  /** See `Rep.generation`: replies for this IO worker's previous life are dropped. */
  readonly #generation: number;
  readonly #local: LocalShard | null;
  readonly #localShard: number;
  /**
   * owed[shard]: calls sent to that shard whose replies have not come
   * back. A shard answers its ring in order, so the head is always the next
   * reply; when a shard dies, what is left here is what it took.
   */
  readonly #owed: Fifo<Owed<C, S>>[];
  /** Sum of the owed queues' sizes. */
  #awaiting = 0;
  /** Reused footprint of calls run locally (they hold their in-packet). */
  readonly #footprint: CallerFootprint = {
    receiveBytes: 0,
    inPacketBytes: 0,
    taskBytes: -1,
    ringSlotBytes: -1,
  };

  /**
   * `local` is the executor of shard `localShard`, which this thread hosts
   * (its rings are null), or null (and -1) in pool mode.
   */
  constructor(
    stats: StatsBlock,
    requests: (Ring | null)[],
    replies: (Ring | null)[],
    generation: number,
    local: LocalShard | null,
    localShard: number,
  ) {
    this.#stats = stats;
    this.#requests = requests;
    this.#replies = replies;
    this.#generation = generation;
    this.#local = local;
    this.#localShard = local === null ? -1 : localShard;
    this.#owed = requests.map(() => new Fifo<Owed<C, S>>());
  }

  /** The shard hosted in this thread, or -1. */
  get localShard(): number {
    return this.#localShard;
  }

  /** Replies owed by shards of other threads. */
  get awaiting(): number {
    return this.#awaiting;
  }

  /** Runs the local shard's prefetch hook on `batch` (only with a local shard). */
  prefetch(batch: RequestBatch): void {
    this.#local!.prefetch(batch);
  }

  /**
   * Sends `call` with the body `bytes[start, end)` to shard `shard`. The local
   * shard runs it now and its outcome is returned; another shard gets it
   * through its ring ({@link SENT}, or {@link FULL} when there is no room)
   * and, with `wantReply`, owes its reply. Once in a ring, the frame stops
   * counting as the connection's `in_packet` (before the shard can see it,
   * so a snapshot never counts it twice).
   */
  send(
    shard: number,
    call: Call<C, S>,
    bytes: Uint8Array,
    start: number,
    end: number,
    fanout: number,
    wantReply: boolean,
  ): number | Outcome | Promise<Outcome> {
    const { conn, code, requestId } = call;
    const ring = this.#requests[shard];
    if (ring === null) {
      const f = this.#footprint;
      f.receiveBytes = conn.receiveBytes;
      f.inPacketBytes = conn.packetBytes > 0 ? conn.packetBytes : -1;
      return this.#local!.execute(code, bytes, start, end, call.deadline, f);
    }
    const len = end - start;
    const off = ring.reserve(REQUEST_HEADER + len);
    if (off < 0) return FULL;
    writeRequest(
      ring,
      off,
      conn.info.id,
      conn.receiveBytes,
      requestId,
      code,
      call.flags,
      bytes.subarray(start, end),
      call.deadline,
      fanout,
      this.#generation,
    );
    if (fanout === 0 && conn.packetBytes > 0) {
      this.#stats.free(Res.in_packet, conn.packetBytes);
      conn.packetBytes = 0;
    }
    this.#stats.alloc(Res.ring_slot, Ring.recordSize(REQUEST_HEADER + len));
    ring.commit();
    this.wakes.touch(shard);
    if (wantReply) {
      const at = conn.arrivedAt;
      const sink = call.sink;
      this.#owed[shard].push({ conn, sink, requestId, code, fanout, bytes: len, at });
      this.#awaiting++;
      conn.ringBytes += len;
    }
    return SENT;
  }

  /**
   * Pops every reply the shards have sent and hands each to `deliver` with
   * what was owed for it; the frame is a view into the ring, valid during
   * the call. Returns how many records were popped.
   */
  drain(deliver: (owed: Owed<C, S>, frame: Uint8Array) => void): number {
    let n = 0;
    const replies = this.#replies;
    for (let s = 0; s < replies.length; s++) {
      const ring = replies[s];
      if (ring === null) continue;
      const owed = this.#owed[s];
      let slots = 0;
      let slotBytes = 0;
      let off: number;
      while ((off = ring.next()) >= 0) {
        slots++;
        slotBytes += Ring.recordSize(ring.payloadLength);
        n++;
        // Meant for this IO worker's previous life: nobody is waiting.
        if (replyGeneration(ring, off) !== this.#generation) continue;
        const head = owed.shift()!;
        this.#awaiting--;
        head.conn.ringBytes -= head.bytes;
        deliver(head, replyFrame(ring, off));
      }
      ring.release();
      // Counted when released, as the shard's end does (see releaseRequest).
      if (slots > 0) this.#stats.freeMany(Res.ring_slot, slots, slotBytes);
    }
    return n;
  }

  /**
   * Shard `s`'s thread died: what it owed is handed to `settle`, one entry
   * at a time in order, and the records it never took are dropped, so its
   * replacement starts on an empty ring. Replies it sent before dying must
   * be drained first.
   */
  shardDied(s: number, settle: (owed: Owed<C, S>) => void): void {
    const owed = this.#owed[s];
    for (let head = owed.shift(); head; head = owed.shift()) {
      this.#awaiting--;
      head.conn.ringBytes -= head.bytes;
      settle(head);
    }
    const ring = this.#requests[s];
    if (ring) {
      const dropped = ring.discardUnconsumed();
      if (dropped.records > 0) this.#stats.freeMany(Res.ring_slot, dropped.records, dropped.bytes);
    }
  }
}
