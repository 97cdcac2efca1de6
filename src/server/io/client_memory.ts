/**
 * The server-wide cap on client buffers (`--max-client-memory`, like
 * Redis's `maxmemory-clients`): every IO worker publishes what its
 * connections' receive and output buffers hold, and the largest single
 * connection, in shared memory; when the sum passes the cap, the worker
 * that holds the largest connection closes it, and so on until the sum is
 * back under.
 *
 * @module
 */
import type { Connection } from "./connection.ts";

/** Float64 slots per IO worker: its total, then its largest connection. */
const SLOTS = 2;

/** Shared memory for `ioThreads` IO workers' figures. */
export function createClientMemory(ioThreads: number): SharedArrayBuffer {
  return new SharedArrayBuffer(ioThreads * SLOTS * 8);
}

/** One IO worker's side of the cap. */
export class ClientMemoryGuard {
  /** The cap in bytes; 0 = none. */
  readonly limit: number;
  /** True when a connection grew since the last {@link enforce}. */
  pending = false;
  readonly #shared: Float64Array;
  readonly #index: number;
  readonly #workers: number;
  #total = 0;
  /** Largest connection seen since the last scan: an upper bound. */
  #largest = 0;

  /** Binds IO worker `index`'s slots, zeroed (a restarted worker starts empty). */
  constructor(memory: SharedArrayBuffer, index: number, limit: number) {
    this.#shared = new Float64Array(memory);
    this.#workers = this.#shared.length / SLOTS;
    this.#index = index;
    this.limit = limit;
    this.#shared[index * SLOTS] = 0;
    this.#shared[index * SLOTS + 1] = 0;
  }

  /** Records that `conn`'s buffers changed by `delta` bytes. */
  changed(conn: Connection, delta: number): void {
    this.#total += delta;
    const at = this.#index * SLOTS;
    this.#shared[at] = this.#total;
    if (conn.memoryBytes > this.#largest) {
      this.#largest = conn.memoryBytes;
      this.#shared[at + 1] = this.#largest;
    }
    if (delta > 0 && this.limit > 0) this.pending = true;
  }

  /** What every IO worker's connections hold together. */
  total(): number {
    let sum = 0;
    for (let w = 0; w < this.#workers; w++) sum += this.#shared[w * SLOTS];
    return sum;
  }

  /**
   * While the sum is over the cap: closes this worker's largest connection
   * if no other worker's is larger (`evict`), else asks the worker that has
   * it to look (`wakeWorker`), which then rescans and does the same.
   */
  enforce(
    conns: () => Iterable<Connection>,
    evict: (conn: Connection, total: number) => void,
    wakeWorker: (index: number) => void,
  ): void {
    this.pending = false;
    if (this.limit <= 0) return;
    for (let total = this.total(); total > this.limit; total = this.total()) {
      let largest: Connection | null = null;
      for (const c of conns()) {
        if (!c.closed && (largest === null || c.memoryBytes > largest.memoryBytes)) largest = c;
      }
      this.#largest = largest?.memoryBytes ?? 0;
      this.#shared[this.#index * SLOTS + 1] = this.#largest;
      let owner = this.#index;
      for (let w = 0; w < this.#workers; w++) {
        if (this.#shared[w * SLOTS + 1] > this.#shared[owner * SLOTS + 1]) owner = w;
      }
      if (owner !== this.#index) {
        wakeWorker(owner);
        return;
      }
      if (largest === null) return;
      evict(largest, total);
    }
  }
}
