/**
 * Calls routed to every shard (Scan): one part per shard, sent through the
 * channel, gathered as they come back, and merged by the method's `merge`
 * into one answer.
 *
 * @module
 */
import { Flags, Status } from "../../protocol/constants.ts";
import { Res, type StatsBlock } from "../../stats/resources.ts";
import { errorOutcome, Outcome } from "../outcome.ts";
import type { Method } from "../service.ts";
import { type Call, FULL, type IoEnd, SENT } from "../channel/io_end.ts";
import type { Connection, ReplySink } from "./connection.ts";

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

/** How a fan-out's merged answer leaves: the dispatcher's answer path. */
export type Answer = (
  conn: Connection,
  sink: ReplySink,
  code: number,
  requestId: number,
  oneway: boolean,
  outcome: Outcome,
  counted: boolean,
  at: number,
) => void;

/**
 * The open fan-outs of one IO worker.
 *
 * @example
 * ```ts ignore
 * const fanouts = new Fanouts(stats, channel, shards, maxBody, answer, release, flush);
 * fanouts.start(call, method, bytes, start, end);
 * ```
 */
export class Fanouts {
  readonly #stats: StatsBlock;
  readonly #channel: IoEnd<Connection, ReplySink>;
  readonly #shards: number;
  readonly #maxBody: number;
  readonly #answer: Answer;
  readonly #release: (conn: Connection) => void;
  readonly #endOfBatch: () => void;
  readonly #open = new Map<number, Fanout>();
  #nextId = 1;

  /**
   * `answer` sends a merged (or failed) answer; `release` ends a ONEWAY
   * call; `endOfBatch` writes what a completion outside a batch queued.
   */
  constructor(
    stats: StatsBlock,
    channel: IoEnd<Connection, ReplySink>,
    shards: number,
    maxBody: number,
    answer: Answer,
    release: (conn: Connection) => void,
    endOfBatch: () => void,
  ) {
    this.#stats = stats;
    this.#channel = channel;
    this.#shards = shards;
    this.#maxBody = maxBody;
    this.#answer = answer;
    this.#release = release;
    this.#endOfBatch = endOfBatch;
  }

  /** Fan-outs still waiting for parts. */
  get size(): number {
    return this.#open.size;
  }

  /** Sends `call` (method `m`) with the body `bytes[start, end)` to every shard; one answer comes once every part is in. */
  start(
    call: Call<Connection, ReplySink>,
    m: Method<unknown>,
    bytes: Uint8Array,
    start: number,
    end: number,
  ): void {
    const { conn, sink, code, requestId } = call;
    const oneway = (call.flags & Flags.ONEWAY) !== 0;
    let request: unknown;
    try {
      request = m.request.decode(bytes.slice(start, end));
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const o = errorOutcome(Status.BAD_REQUEST, `Decode ${m.name} request: ${msg}`);
      this.#answer(conn, sink, code, requestId, oneway, o, false, conn.arrivedAt);
      return;
    }
    const id = oneway ? 0 : this.#nextId++;
    if (this.#nextId > 0x7fffffff) this.#nextId = 1;
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
      this.#open.set(id, f);
      this.#stats.alloc(Res.fanout, 0);
    }
    // The local shard's part (inline mode) runs during its send; it is
    // counted in only once every other part is sent, so it cannot complete
    // the fan-out early.
    let local: Outcome | Promise<Outcome> | null = null;
    for (let s = 0; s < this.#shards; s++) {
      const r = this.#channel.send(s, call, bytes, start, end, id, !oneway);
      if (r === SENT) {
        if (!oneway) f.remaining++;
      } else if (r === FULL) {
        if (!f.failure) f.failure = overloaded(m, s);
      } else local = r as Outcome | Promise<Outcome>;
    }
    if (local !== null && !oneway) {
      f.remaining++;
      if (local instanceof Promise) local.then((o) => this.part(id, o.status, o.body, false));
      else this.part(id, local.status, local.body, false);
    }
    if (oneway) this.#release(conn);
    // No part was taken (every ring full); unless the local part, run just
    // now, was the only one and already completed it.
    else if (f.remaining === 0 && this.#open.get(id) === f) this.#complete(id, f);
  }

  /**
   * One shard's part of fan-out `id`; `body` may be a view into a ring.
   * `counted`: a failure status was already counted by the shard.
   */
  part(id: number, status: number, body: Uint8Array, counted: boolean): void {
    const f = this.#open.get(id);
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
    if (f.remaining === 0) this.#complete(id, f);
  }

  #complete(id: number, f: Fanout): void {
    this.#open.delete(id);
    this.#stats.free(Res.fanout, 0);
    let outcome = f.failure;
    if (!outcome) {
      try {
        const merged = f.method.merge!(f.parts, f.request, this.#maxBody);
        outcome = Outcome.encoded(0, f.method.reply.encode(merged));
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        outcome = errorOutcome(Status.INTERNAL, `Merge ${f.method.name}: ${msg}`);
      }
    }
    const counted = f.failure !== null && f.failureCounted;
    this.#answer(f.conn, f.sink, f.code, f.requestId, false, outcome, counted, f.at);
    // It may complete outside any batch (a part from a drain, an async handler).
    this.#endOfBatch();
  }
}

/** The answer to a call whose shard's ring is full. */
export function overloaded(m: Method<unknown>, shard: number): Outcome {
  return errorOutcome(
    Status.OVERLOADED,
    `Queue ${m.name}: the ring to shard ${shard} is full; retry later`,
  );
}
