/**
 * Per-shard gauges in shared memory: each shard's thread writes what its
 * service's `gauges` hook says about its state (keys, memory...), at most
 * every {@link GAUGE_PERIOD_MS}, and `/metrics` sums them. Reading a store
 * from another thread is impossible, and asking it through a ring would
 * cost a request per scrape; this costs one clock read per batch.
 *
 * @module
 */

/** Numbers per shard. */
export const GAUGE_SLOTS = 16;
/** Shortest time between two writes of one shard's gauges. */
export const GAUGE_PERIOD_MS = 250;

/**
 * Shared memory for `shards` shards' gauges.
 *
 * @example
 * ```ts
 * import { createGaugeMemory } from "@evkv/evkv";
 * const mem = createGaugeMemory(4);
 * ```
 */
export function createGaugeMemory(shards: number): SharedArrayBuffer {
  return new SharedArrayBuffer(shards * GAUGE_SLOTS * 8);
}

/** What a gauge writer reads: the shard executor's hook. */
export interface GaugeSource {
  /** The shard's numbers, or null. */
  gauges(): readonly number[] | null;
}

/**
 * Writes one shard's gauges, throttled.
 *
 * @example
 * ```ts
 * import { createGaugeMemory, GaugeWriter, sumGauges } from "@evkv/evkv";
 * const mem = createGaugeMemory(1);
 * new GaugeWriter(mem, 0).tick({ gauges: () => [3, 1] });
 * sumGauges(mem, 1)[0]; // 3
 * ```
 */
export class GaugeWriter {
  readonly #slots: Float64Array;
  #next = 0;

  /** Writes shard `shard`'s slots of `mem`. */
  constructor(mem: SharedArrayBuffer, shard: number) {
    this.#slots = new Float64Array(mem, shard * GAUGE_SLOTS * 8, GAUGE_SLOTS);
  }

  /** Publishes `source`'s numbers unless it did so less than a period ago. */
  tick(source: GaugeSource, now: number = Date.now()): void {
    if (now < this.#next) return;
    this.#next = now + GAUGE_PERIOD_MS;
    const g = source.gauges();
    if (g === null) return;
    const n = Math.min(g.length, GAUGE_SLOTS);
    for (let i = 0; i < n; i++) this.#slots[i] = g[i];
  }
}

/**
 * Sums every shard's gauges, slot by slot.
 *
 * @example
 * ```ts
 * import { createGaugeMemory, sumGauges } from "@evkv/evkv";
 * sumGauges(createGaugeMemory(2), 2).length; // 16
 * ```
 */
export function sumGauges(mem: SharedArrayBuffer, shards: number): number[] {
  const all = new Float64Array(mem);
  const sum = new Array<number>(GAUGE_SLOTS).fill(0);
  for (let s = 0; s < shards; s++) {
    for (let i = 0; i < GAUGE_SLOTS; i++) sum[i] += all[s * GAUGE_SLOTS + i];
  }
  return sum;
}
