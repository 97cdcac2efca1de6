/**
 * The watchdog: tells a stuck worker from a slow one, in the main thread.
 *
 * Every worker bumps a progress word in shared memory: a task worker (and
 * an inline IO worker's shard) each time it finishes a request or naps
 * waiting for a full reply ring, an IO worker on a heartbeat timer that
 * only runs while its event loop is free. The watchdog samples the words
 * a few times per stall timeout. A task worker is stuck when its word has
 * not moved for `stallTimeoutMs` while requests wait for it (a record in
 * one of its request rings not yet released, which includes the one in a
 * handler); an IO worker is stuck when its heartbeat has not moved for that
 * long. A handler that is slow but finishes each request within the
 * timeout keeps the word moving, however long its queue; one that spins,
 * blocks or awaits past the timeout does not.
 *
 * @module
 */
import { ringBacklog } from "../channel/ring.ts";
import { type Layout, progressWord, type SharedPlan, threadIndex } from "../topology.ts";

/** How often a worker's heartbeat and the watchdog's samples run, for a stall timeout. */
export function beatMs(stallTimeoutMs: number): number {
  return Math.max(10, Math.min(250, Math.floor(stallTimeoutMs / 4)));
}

/** A worker found stuck. */
export interface Stall {
  /** Worker kind. */
  kind: "io" | "task";
  /** Its index. */
  index: number;
  /** How long it made no progress, in ms. */
  stalledMs: number;
}

/** Watches every worker's progress word. */
export class Watchdog {
  /** The progress words. */
  readonly #control: Int32Array;
  readonly #plan: SharedPlan;
  readonly #layout: Layout;
  readonly #timeoutMs: number;
  readonly #onStall: (stall: Stall) => void;
  /** Per thread index: the word last seen, and since when it has not moved. */
  readonly #last: number[];
  readonly #since: number[];
  /** Threads not watched now (being replaced). */
  readonly #paused = new Set<number>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Watches the workers of `plan`; call {@link start}. */
  constructor(plan: SharedPlan, stallTimeoutMs: number, onStall: (stall: Stall) => void) {
    this.#plan = plan;
    this.#layout = plan.layout;
    this.#control = new Int32Array(plan.progress);
    this.#timeoutMs = stallTimeoutMs;
    this.#onStall = onStall;
    const threads = 1 + this.#layout.ioThreads + this.#layout.taskThreads;
    this.#last = new Array(threads).fill(0);
    this.#since = new Array(threads).fill(Date.now());
  }

  /** Starts sampling; a no-op when the timeout is 0. Returns whether it started. */
  start(): boolean {
    if (this.#timeoutMs <= 0 || this.#timer !== undefined) return false;
    this.#timer = setInterval(() => this.#check(), beatMs(this.#timeoutMs));
    return true;
  }

  /** Stops sampling. Returns whether it was running. */
  stop(): boolean {
    if (this.#timer === undefined) return false;
    clearInterval(this.#timer);
    this.#timer = undefined;
    return true;
  }

  /** Stops watching a worker while it is replaced. */
  pause(kind: "io" | "task", index: number): void {
    this.#paused.add(threadIndex(this.#layout, kind, index));
  }

  /** Watches a worker again, from now (its replacement runs). */
  resume(kind: "io" | "task", index: number): void {
    const t = threadIndex(this.#layout, kind, index);
    this.#paused.delete(t);
    this.#last[t] = Atomics.load(this.#control, progressWord(t));
    this.#since[t] = Date.now();
  }

  #check(): void {
    const now = Date.now();
    const l = this.#layout;
    for (let i = 0; i < l.ioThreads; i++) this.#sample("io", i, now, true);
    for (let s = 0; s < l.taskThreads; s++) this.#sample("task", s, now, this.#hasWork(s));
  }

  #sample(kind: "io" | "task", index: number, now: number, busy: boolean): void {
    const t = threadIndex(this.#layout, kind, index);
    if (this.#paused.has(t)) return;
    const word = Atomics.load(this.#control, progressWord(t));
    if (word !== this.#last[t] || !busy) {
      this.#last[t] = word;
      this.#since[t] = now;
      return;
    }
    const stalledMs = now - this.#since[t];
    if (stalledMs < this.#timeoutMs) return;
    this.#paused.add(t);
    this.#onStall({ kind, index, stalledMs });
  }

  /** True when a request for shard `s` waits in (or is being run from) a ring. */
  #hasWork(s: number): boolean {
    for (const row of this.#plan.requestRings) {
      const ring = row[s];
      if (ring !== null && ringBacklog(ring) > 0) return true;
    }
    return false;
  }
}
