/**
 * Replies, shard → IO worker: the layout of a reply record in a
 * {@link Ring}, written here at the shard end ({@link writeReply}) and read
 * here at the IO end ({@link replyFrame}). A record carries a whole encoded
 * wire v1 reply frame, so the IO worker only copies it to the connection's
 * output. The shard end's {@link ReplySender} keeps replies in order when
 * a ring is full or a reply waits for its commit.
 *
 * @module
 */
import { FRAME_OVERHEAD, Status } from "../../protocol/constants.ts";
import { Res, type StatsBlock } from "../../stats/resources.ts";
import { countError, errorOutcome, type Outcome, writeReplyFrame } from "../outcome.ts";
import { Ring } from "./ring.ts";
import { Wakes } from "./wakes.ts";

/** Reply record: u32 words, then the frame. */
export const Rep = {
  /** Word: IO-worker-local connection id. */
  conn: 0,
  /** Word: fan-out id, 0 for a final reply. */
  fanout: 1,
  /** Word: frame length. */
  frameLen: 2,
  /**
   * Word: the generation of the IO worker that sent the request. A
   * restarted IO worker drops replies meant for the one before it.
   */
  generation: 3,
} as const;
/** Bytes before the frame of a reply record. */
export const REPLY_HEADER = 16;

/**
 * Writes a reply record at `off`, a payload of `REPLY_HEADER + frameLen`
 * bytes reserved in `ring`: the header, then the whole wire v1 reply frame
 * for `outcome` (`frameLen` bytes). The caller commits it.
 *
 * @example
 * ```ts ignore
 * const frameLen = outcome.size + FRAME_OVERHEAD;
 * const off = ring.reserve(REPLY_HEADER + frameLen);
 * if (off >= 0) writeReply(ring, off, conn, 0, generation, code, requestId, outcome, frameLen);
 * ```
 */
export function writeReply(
  ring: Ring,
  off: number,
  conn: number,
  fanout: number,
  generation: number,
  code: number,
  requestId: number,
  outcome: Outcome,
  frameLen: number,
): void {
  const w = off >>> 2;
  ring.u32[w + Rep.conn] = conn;
  ring.u32[w + Rep.fanout] = fanout;
  ring.u32[w + Rep.frameLen] = frameLen;
  ring.u32[w + Rep.generation] = generation;
  writeReplyFrame(ring.u8, off + REPLY_HEADER, code, requestId, outcome);
}

/**
 * The generation of the IO worker a reply record at `off` is meant for.
 *
 * @example
 * ```ts ignore
 * if (replyGeneration(ring, off) !== myGeneration) continue; // for a previous life
 * ```
 */
export function replyGeneration(ring: Ring, off: number): number {
  return ring.u32[(off >>> 2) + Rep.generation];
}

/**
 * The reply frame of the record at `off`: a view into the ring, valid until
 * the ring is released.
 *
 * @example
 * ```ts ignore
 * conn.output.queueBytes(replyFrame(ring, off));
 * ```
 */
export function replyFrame(ring: Ring, off: number): Uint8Array {
  const frameLen = ring.u32[(off >>> 2) + Rep.frameLen];
  return ring.u8.subarray(off + REPLY_HEADER, off + REPLY_HEADER + frameLen);
}

/** What a shard does when an IO worker's reply ring is full: wait for room, or queue. */
export type FullPolicy = "block" | "queue";

/** A reply on its way from a shard to an IO worker. */
export interface PendingReply {
  /** The IO worker it goes to. */
  io: number;
  /** IO-worker-local connection id. */
  conn: number;
  /** Fan-out id, or 0. */
  fanout: number;
  /** The generation of the IO worker that sent the request. */
  generation: number;
  /** Method code and request id, for the frame's header. */
  code: number;
  requestId: number;
  /** Status and body. */
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

/**
 * A shard's end of the reply rings: writes each reply frame into the ring
 * of the IO worker that asked, in order, parking replies while a ring is
 * full (policy `queue`) or while their change is not yet on disk (a
 * {@link ReplyGate}), and wakes each IO worker once per batch.
 *
 * @example
 * ```ts ignore
 * const replies = new ReplySender(stats, rings, "block");
 * replies.send(reply, requestRing, slotBytes);
 * replies.wakes.flush();
 * ```
 */
export class ReplySender {
  readonly #stats: StatsBlock;
  readonly #rings: (Ring | null)[];
  readonly #policy: FullPolicy;
  /** IO workers that got replies since the last flush; the owner sets how they are woken. */
  readonly wakes: Wakes = new Wakes();
  /** Replies waiting for room in a full ring or for their commit, in order. */
  #parked: PendingReply[] = [];
  /**
   * Set by the owner under `--persist always`: a reply to a request that
   * changed the store is held (parked, with every later reply, so that
   * order holds) until its change is committed, and becomes an error if the
   * commit failed.
   */
  durability: ReplyGate | null = null;
  /** Set by the owner: called while waiting for ring room, for the watchdog. */
  progress: () => void = () => {};
  /** For policy "block": a private word to sleep on while a ring is full. */
  readonly #nap = new Int32Array(new SharedArrayBuffer(4));

  /** `rings[io]` is the reply ring to IO worker `io` (null for the hosting IO worker). */
  constructor(stats: StatsBlock, rings: (Ring | null)[], policy: FullPolicy) {
    this.#stats = stats;
    this.#rings = rings;
    this.#policy = policy;
  }

  /** Replies still waiting (ring space or a commit). */
  get parked(): number {
    return this.#parked.length;
  }

  /**
   * Replies to the request whose record is `requestRing`'s last one. The
   * order matters: the reply is encoded straight into the reply ring (its
   * body may still point at the request's bytes), then the request's
   * space is handed back, and only then is the reply published, so the IO
   * worker never learns a request is done while its bytes still hold the
   * ring.
   */
  send(reply: PendingReply, requestRing: Ring, slotBytes: number): void {
    this.#stats.alloc(Res.out_packet, reply.outcome.size + FRAME_OVERHEAD);
    if (this.#parked.length > 0 || this.#held(reply)) {
      this.#park(reply, requestRing, slotBytes);
      return;
    }
    for (;;) {
      const ring = this.#write(reply);
      if (ring) {
        releaseRequest(this.#stats, requestRing, slotBytes);
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
  #park(reply: PendingReply, requestRing: Ring, slotBytes: number): void {
    void reply.outcome.body; // made into bytes before the request's are released
    releaseRequest(this.#stats, requestRing, slotBytes);
    this.#parked.push(reply);
  }

  /**
   * Reserves and writes `reply` in its IO worker's ring and returns the ring
   * for the caller to commit, or null when the ring is full.
   */
  #write(reply: PendingReply): Ring | null {
    const { io, outcome } = reply;
    const ring = this.#rings[io]!;
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
  #held(reply: PendingReply): boolean {
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

  /** Sends the parked replies that may go now; returns how many went. */
  retry(): number {
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

/**
 * Hands a request record's space back. Slots are counted free here, on
 * release, not when popped: if the shard's thread dies in between, the
 * producer discards them and counts them.
 *
 * @example
 * ```ts ignore
 * releaseRequest(stats, ring, Ring.recordSize(ring.payloadLength));
 * ```
 */
export function releaseRequest(stats: StatsBlock, ring: Ring, slotBytes: number): void {
  ring.release();
  stats.free(Res.ring_slot, slotBytes);
}
