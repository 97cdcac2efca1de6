/**
 * One shard's loop body: pop each request from every IO worker's ring, run
 * it on the shard's {@link Executor}, and reply into the ring of the IO
 * worker that sent it ({@link ReplySender}). A task worker hosts one; in
 * inline mode each IO worker hosts one for its own shard (requests from the
 * other IO workers come through rings; its own run in place, see
 * `channel/io_end.ts`).
 *
 * @module
 */
import { Flags } from "../../protocol/constants.ts";
import { Res, type StatsBlock } from "../../stats/resources.ts";
import type { Executor } from "./executor.ts";
import { countError } from "../outcome.ts";
import { readRequest, RequestRecord } from "../channel/requests.ts";
import { releaseRequest, type ReplySender } from "../channel/replies.ts";
import { Ring } from "../channel/ring.ts";

/** Serves one shard's request rings. */
export class ShardHost<State> {
  readonly #exec: Executor<State>;
  readonly #stats: StatsBlock;
  /** The request rings from the IO workers, with the IO worker each comes from. */
  readonly #requests: { io: number; ring: Ring }[];
  /** Where replies go. */
  readonly replies: ReplySender;
  /** The request record being run, reused (see readRequest). */
  readonly #record = new RequestRecord();
  /** Reused footprint of ring-delivered requests (they hold a task). */
  readonly #caller = { receiveBytes: 0, inPacketBytes: -1, taskBytes: 0, ringSlotBytes: 0 };

  /**
   * `requests[io]` is the ring from IO worker `io` (null for the hosting IO
   * worker itself, whose calls run in place).
   */
  constructor(
    exec: Executor<State>,
    stats: StatsBlock,
    requests: (Ring | null)[],
    replies: ReplySender,
  ) {
    this.#exec = exec;
    this.#stats = stats;
    exec.attachStats(stats);
    this.#requests = [];
    requests.forEach((ring, io) => ring && this.#requests.push({ io, ring }));
    this.replies = replies;
  }

  /** The executor, for work that does not come through a ring. */
  get executor(): Executor<State> {
    return this.#exec;
  }

  /**
   * Runs every request that has arrived, then wakes the IO workers it
   * replied to; returns how many ran. Awaits only when a handler is async.
   */
  async drain(): Promise<number> {
    let done = this.replies.retry();
    for (const { io, ring } of this.#requests) done += await this.#drainRing(io, ring);
    this.replies.wakes.flush();
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
      const gate = this.replies.durability;
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
        this.replies.send(reply, ring, slotBytes);
      } else {
        releaseRequest(stats, ring, slotBytes);
      }
      n++;
      this.progress();
      if (stop === 1) return n;
    }
    return n;
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
}
