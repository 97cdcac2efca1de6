/**
 * The consumer side of the request rings for one shard: pops request
 * records from every IO worker's ring, runs them on the shard's
 * {@link Executor}, and pushes each reply frame to the ring of the IO worker
 * that sent the request. A task worker hosts one; in inline mode each IO
 * worker hosts one for its own shard.
 *
 * @module
 */
import { Flags, FRAME_OVERHEAD } from "../../protocol/constants.ts";
import { Res, type StatsBlock } from "../../stats/resources.ts";
import { Status } from "../../protocol/constants.ts";
import type { Executor } from "./executor.ts";
import { countError, errorOutcome, type Outcome } from "../outcome.ts";
import { readRequest, REPLY_HEADER, RequestRecord, writeReply } from "../channel/records.ts";
import { Ring } from "../channel/ring.ts";
import { Wakes } from "../channel/wakes.ts";

/** What to do when an IO worker's reply ring is full. */
export type FullPolicy = "block" | "queue";

interface Parked {
  io: number;
  conn: number;
  fanout: number;
  generation: number;
  code: number;
  requestId: number;
  outcome: Outcome;
  /** With a durability gate: the change sequence this reply waits for, or NaN for none. */
  seq: number;
}

/**
 * How far a shard's changes have got to disk, for holding replies until
 * their writes are committed (`--persist always`); see `src/persist/`.
 */
export interface ReplyGate {
  /** Sequence number of the last change the shard pushed. */
  pushed(): number;
  /** Changes dealt with: committed, or failed to commit. */
  settled(): number;
  /** Changes committed. */
  committed(): number;
}

/** Serves one shard's request rings. */
export class ShardHost<State> {
  readonly #exec: Executor<State>;
  readonly #stats: StatsBlock;
  readonly #requests: (Ring | null)[];
  readonly #replies: (Ring | null)[];
  readonly #policy: FullPolicy;
  /** IO workers that got replies since the last wake-up, to wake once per batch; the owner sets how. */
  readonly wakes: Wakes = new Wakes();
  /** Replies waiting for room in a full ring (policy "queue" only). */
  #parked: Parked[] = [];
  /** The request record being run, reused (see readRequest). */
  readonly #record = new RequestRecord();
  /** Reused footprint of ring-delivered requests (they hold a task). */
  readonly #caller = { receiveBytes: 0, inPacketBytes: -1, taskBytes: 0, ringSlotBytes: 0 };
  /**
   * Set by the owner under `--persist always`: a reply to a request that
   * changed the store is held (parked, with every later reply, so that
   * order holds) until its change is committed, and becomes an error if the
   * commit failed.
   */
  durability: ReplyGate | null = null;
  /** For policy "block": a private word to sleep on while a ring is full. */
  readonly #nap = new Int32Array(new SharedArrayBuffer(4));

  /**
   * `requests[io]` and `replies[io]` are the rings shared with IO worker
   * `io` (null for the hosting IO worker itself).
   */
  constructor(
    exec: Executor<State>,
    stats: StatsBlock,
    requests: (Ring | null)[],
    replies: (Ring | null)[],
    policy: FullPolicy,
  ) {
    this.#exec = exec;
    this.#stats = stats;
    exec.attachStats(stats);
    this.#requests = requests;
    this.#replies = replies;
    this.#policy = policy;
  }

  /** The executor, for work that does not come through a ring. */
  get executor(): Executor<State> {
    return this.#exec;
  }

  /** Replies still waiting for ring space. */
  get parked(): number {
    return this.#parked.length;
  }

  /**
   * Runs every request that has arrived; returns how many. Awaits only
   * when a handler is async.
   */
  async drain(): Promise<number> {
    let done = this.#retryParked();
    for (let io = 0; io < this.#requests.length; io++) {
      const ring = this.#requests[io];
      if (ring) done += await this.#drainRing(io, ring);
    }
    return done;
  }

  async #drainRing(io: number, ring: Ring): Promise<number> {
    const stats = this.#stats;
    let n = 0;
    let off: number;
    // One load of the stop word per request, after its handler (see stopLevel).
    if (this.stopLevel() !== 0) return 0;
    while ((off = ring.next()) >= 0) {
      const r = this.#record;
      readRequest(ring, off, r);
      const { conn, requestId, code, bodyLen, fanout, generation, deadline, bodyAt } = r;
      const slotBytes = Ring.recordSize(ring.payloadLength);
      stats.alloc(Res.task, bodyLen);
      const gate = this.durability;
      const before = gate === null ? 0 : gate.pushed();
      this.#caller.receiveBytes = r.receiveBytes;
      this.#caller.taskBytes = bodyLen;
      this.#caller.ringSlotBytes = slotBytes;
      let outcome = this.#exec.execute(
        code,
        ring.u8,
        bodyAt,
        bodyAt + bodyLen,
        deadline,
        this.#caller,
      );
      if (outcome instanceof Promise) outcome = await outcome;
      const stop = this.stopLevel();
      // Replaced meanwhile (a stuck handler that came back late): the rings
      // and the stats block now belong to the replacement.
      if (stop === 2) return n;
      stats.free(Res.task, bodyLen);
      countError(stats, outcome.status);
      const seq = gate !== null && gate.pushed() !== before ? gate.pushed() : NaN;
      if (fanout !== 0 || !(r.flags & Flags.ONEWAY)) {
        const reply = { io, conn, fanout, generation, code, requestId, outcome, seq };
        this.#reply(reply, ring, slotBytes);
      } else {
        this.#releaseRequest(ring, slotBytes);
      }
      n++;
      this.progress();
      if (stop === 1) return n;
    }
    return n;
  }

  /**
   * Hands a request record's space back. Slots are counted free here, on
   * release, not when popped: if this thread dies in between, the producer
   * discards them and counts them.
   */
  #releaseRequest(ring: Ring, slotBytes: number): void {
    ring.release();
    this.#stats.free(Res.ring_slot, slotBytes);
  }

  /**
   * Replies to the request whose record is `requestRing`'s last one. The
   * order matters: the reply is encoded straight into the reply ring (its
   * body may still point at the request's bytes), then the request's
   * space is handed back, and only then is the reply published, so the IO
   * worker never learns a request is done while its bytes still hold the
   * ring.
   */
  #reply(reply: Parked, requestRing: Ring, slotBytes: number): void {
    this.#stats.alloc(Res.out_packet, reply.outcome.size + FRAME_OVERHEAD);
    if (this.#parked.length > 0 || this.#held(reply)) {
      this.#park(reply, requestRing, slotBytes);
      return;
    }
    for (;;) {
      const ring = this.#write(reply);
      if (ring) {
        this.#releaseRequest(requestRing, slotBytes);
        ring.commit();
        return;
      }
      if (this.#policy === "queue") {
        this.#park(reply, requestRing, slotBytes);
        return;
      }
      // The IO worker never blocks, so it will drain: wake it and nap.
      // Waiting on it is not being stuck (its own heartbeat says if it is).
      this.wakes.now(reply.io);
      Atomics.wait(this.#nap, 0, 0, 1);
      this.progress();
    }
  }

  /** Keeps a reply for later, as bytes of its own (the request's go now). */
  #park(reply: Parked, requestRing: Ring, slotBytes: number): void {
    void reply.outcome.body; // made into bytes before the request's are released
    this.#releaseRequest(requestRing, slotBytes);
    this.#parked.push(reply);
  }

  /**
   * Set by the owner: 0 to go on; 1 once the hosting thread must stop
   * taking requests (it is being killed: it finishes the one it runs, and
   * what is left in the rings is answered INTERNAL by the IO workers); 2
   * once another thread serves this shard (this one was stuck and was
   * replaced), so a handler that returns then must not even reply.
   */
  stopLevel: () => 0 | 1 | 2 = () => 0;

  /** Set by the owner: called as requests finish, for the watchdog. */
  progress: () => void = () => {};

  /**
   * Reserves and writes `reply` in its IO worker's ring and returns the ring
   * for the caller to commit, or null when the ring is full.
   */
  #write(reply: Parked): Ring | null {
    const { io, outcome } = reply;
    const ring = this.#replies[io]!;
    const frameLen = outcome.size + FRAME_OVERHEAD;
    const off = ring.reserve(REPLY_HEADER + frameLen);
    if (off < 0) return null;
    const { conn, fanout, generation, code, requestId } = reply;
    writeReply(ring, off, conn, fanout, generation, code, requestId, outcome, frameLen);
    // Counted before publishing: the consumer frees the slot on its side.
    this.#stats.alloc(Res.ring_slot, Ring.recordSize(REPLY_HEADER + frameLen));
    this.#stats.free(Res.out_packet, frameLen);
    this.wakes.touch(io);
    return ring;
  }

  /** True while `reply` waits for its change to be committed. */
  #held(reply: Parked): boolean {
    const gate = this.durability;
    if (gate === null || Number.isNaN(reply.seq)) return false;
    if (gate.settled() - reply.seq < 0) return true;
    if (gate.committed() - reply.seq < 0) {
      // The change is in memory but not on disk: the client must not count on it.
      const failed = errorOutcome(
        Status.INTERNAL,
        "Save change: the write could not be committed to disk; it stays in memory and is retried",
      );
      this.#stats.free(Res.out_packet, reply.outcome.size + FRAME_OVERHEAD);
      this.#stats.alloc(Res.out_packet, failed.size + FRAME_OVERHEAD);
      countError(this.#stats, failed.status);
      reply.outcome = failed;
    }
    reply.seq = NaN;
    return false;
  }

  #retryParked(): number {
    if (this.#parked.length === 0) return 0;
    const parked = this.#parked;
    this.#parked = [];
    let i = 0;
    for (; i < parked.length; i++) {
      if (this.#held(parked[i])) break;
      const ring = this.#write(parked[i]);
      if (!ring) break;
      ring.commit();
    }
    this.#parked = parked.slice(i);
    return i;
  }
}
