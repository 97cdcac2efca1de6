/**
 * Runs a service's handlers for one shard, in whichever thread hosts the
 * shard (a task worker, or an IO worker in inline mode). It turns every
 * outcome, including bad bodies, missed deadlines and throwing handlers,
 * into a reply status and body; nothing a request does can kill the thread.
 *
 * @module
 */
import { REPLY_SLACK, Status } from "../../protocol/constants.ts";
import { errorOutcome, Outcome } from "../outcome.ts";
import {
  type CallerFootprint,
  COUNTER_NAMES,
  type StatsBlock,
  type StatsSnapshot,
  withoutCaller,
} from "../../stats/resources.ts";
import {
  type HandlerContext,
  type Method,
  type RequestBatch,
  type Service,
  ServiceError,
  type ServiceOptions,
} from "../service.ts";

/** One shard's executor. */
export class Executor<State> {
  readonly #service: Service<State>;
  readonly #ctx: HandlerContext<State>;
  readonly #maxBody: number;
  /** Footprint of the request being run, for ctx.stats(). */
  #caller: CallerFootprint = {
    receiveBytes: 0,
    inPacketBytes: -1,
    taskBytes: -1,
    ringSlotBytes: -1,
  };

  /** Creates the shard's state and the handler context. */
  constructor(
    service: Service<State>,
    shard: number,
    shards: number,
    maxBody: number,
    stats: () => StatsSnapshot,
    startedAt: number,
    serviceOptions: ServiceOptions = {},
  ) {
    this.#service = service;
    this.#maxBody = maxBody;
    const state = service.createState
      ? service.createState(shard, shards, serviceOptions)
      : (undefined as State);
    this.#ctx = {
      state,
      shard,
      shards,
      maxBody,
      stats: () => withoutCaller(stats(), this.#caller),
      uptimeMs: () => Date.now() - startedAt,
    };
  }

  /** Runs the service's idle hook; returns ms until it wants to run again. */
  idle(): number {
    const next = this.#service.idle ? this.#service.idle(this.#ctx.state) : Infinity;
    this.#publish();
    return next;
  }

  /** This thread's counters, for the service's gauges; null until attached or without gauges. */
  #counters: Float64Array | null = null;

  /** Lets the service's gauges (see {@link Service.gauges}) write into this thread's counters. */
  attachStats(block: StatsBlock): void {
    if (this.#service.gauges === undefined) return;
    this.#counters = block.slots.subarray(block.slots.length - COUNTER_NAMES.length);
    this.#publish();
  }

  #publish(): void {
    if (this.#counters !== null) this.#service.gauges!(this.#ctx.state, this.#counters);
  }

  /**
   * Runs the service's prefetch hook, if any, on `batch`. A hook that
   * throws loses only its head start: the requests run as they would have.
   */
  prefetch(batch: RequestBatch): void {
    if (this.#service.prefetch === undefined) return;
    try {
      this.#service.prefetch(batch, this.#ctx);
    } catch {
      // Nothing was promised to anyone; the requests will say what is wrong.
    }
  }

  /**
   * Runs method `code` on the body in `bytes[start, end)` (memory that is
   * only valid during the call) unless `deadline` (a Date.now() value, 0 for
   * none) has passed. Returns a promise only when the handler is async.
   * `caller` is what the request holds meanwhile (see {@link CallerFootprint}).
   */
  execute(
    code: number,
    bytes: Uint8Array,
    start: number,
    end: number,
    deadline: number,
    caller: CallerFootprint,
  ): Outcome | Promise<Outcome> {
    this.#caller = caller;
    const m = this.#service.methods[code];
    if (!m) return errorOutcome(Status.UNKNOWN_METHOD, `No method with code ${code}`);
    if (deadline !== 0 && Date.now() > deadline) {
      return errorOutcome(
        Status.DEADLINE_EXCEEDED,
        `Run ${m.name}: the deadline passed before the request started`,
      );
    }
    let request: unknown;
    try {
      if (m.requestReader !== null) request = m.requestReader.read(bytes, start, end);
      if (request === undefined) request = m.request.decode(bytes.subarray(start, end));
    } catch (e) {
      return errorOutcome(Status.BAD_REQUEST, `Decode ${m.name} request: ${message(e)}`);
    }
    let result: unknown;
    try {
      result = m.handler(request, this.#ctx);
    } catch (e) {
      this.#publish();
      return this.#failure(m, e);
    }
    this.#publish();
    if (result instanceof Promise) {
      return result.then((r) => this.#encode(m, r), (e) => this.#failure(m, e));
    }
    return this.#encode(m, result);
  }

  #encode(m: Method<State>, reply: unknown): Outcome {
    let outcome: Outcome;
    try {
      outcome = m.replyWriter
        ? Outcome.written(Status.OK, m.replyWriter, reply)
        : Outcome.encoded(Status.OK, m.reply.encode(reply));
    } catch (e) {
      return errorOutcome(Status.INTERNAL, `Encode ${m.name} reply: ${message(e)}`);
    }
    if (outcome.size > this.#maxBody + REPLY_SLACK) {
      return errorOutcome(
        Status.INTERNAL,
        `Encode ${m.name} reply: ${outcome.size} bytes is over the ${
          this.#maxBody + REPLY_SLACK
        }-byte reply limit`,
      );
    }
    return outcome;
  }

  #failure(m: Method<State>, e: unknown): Outcome {
    if (e instanceof ServiceError) return errorOutcome(e.status, e.message);
    return errorOutcome(Status.INTERNAL, `Run ${m.name}: ${message(e)}`);
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
