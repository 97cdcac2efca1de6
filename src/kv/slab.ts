/**
 * Record memory for a shard, the memcached way: records live in 1 MiB pages,
 * each page cut into chunks of one size class, and a freed chunk waits on its
 * class's free list for the next record of that class.
 *
 * Why not one `Uint8Array` per value: a Get then chases a JS object, its
 * ArrayBuffer and a separate malloc'd backing store, each a cache miss once
 * the keyspace outgrows the CPU cache; profiling the served path under the
 * benchmark put those misses ahead of everything else a request does. A
 * record in a page keeps the key and the value in adjacent bytes, so the key
 * comparison already brings the value into cache.
 *
 * The price is memcached's: pages are never returned, and a chunk can be
 * bigger than its record (by up to 63 bytes, or a quarter for big records).
 * Records over {@linkcode MAX_SLAB_RECORD} do not come here (the store gives
 * each its own buffer).
 *
 * @module
 */

/** Bytes in one page; a record's address is `page * PAGE_BYTES + offset`. */
export const PAGE_BYTES: number = 1 << 20;

/** Largest record a slab holds. */
export const MAX_SLAB_RECORD: number = 16 * 1024;

/**
 * Pages a slab may own. Addresses stay positive int32 values, so tables can
 * keep them in an `Int32Array`.
 */
const MAX_PAGES = 2047;

/**
 * Chunk sizes: 32 and 48, then multiples of 64 (a cache line), growing by
 * about 1.25x past 256. Whole-line chunks measured ~7% more Gets per second than 8-byte
 * steps (118-byte records in 120-byte chunks straddled three lines).
 */
const CLASS_SIZES: readonly number[] = (() => {
  const sizes: number[] = [];
  for (let s = 32; s < MAX_SLAB_RECORD; s = s < 64 ? s + 16 : Math.ceil((s * 1.25) / 64) * 64) {
    sizes.push(s);
  }
  sizes.push(MAX_SLAB_RECORD);
  return sizes;
})();

/**
 * The size class that holds records of `size` bytes (1 to
 * {@linkcode MAX_SLAB_RECORD}).
 *
 * @example
 * ```ts
 * import { sizeClass } from "./slab.ts";
 * sizeClass(20) === sizeClass(32); // true: both fit the 32-byte chunks
 * ```
 */
export function sizeClass(size: number): number {
  let lo = 0;
  let hi = CLASS_SIZES.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (CLASS_SIZES[mid] < size) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Chunked record memory owned by one shard (single-threaded).
 *
 * @example
 * ```ts
 * import { PAGE_BYTES, Slab } from "./slab.ts";
 * const slab = new Slab();
 * const addr = slab.alloc(40);
 * slab.pages[Math.floor(addr / PAGE_BYTES)][addr % PAGE_BYTES] = 1;
 * slab.free(addr, 40);
 * ```
 */
export class Slab {
  /** The pages, indexed by `address / PAGE_BYTES`. */
  readonly pages: Uint8Array[] = [];
  /** The same pages as float64s, for the 8-byte-aligned expiry at a record's start. */
  readonly expiries: Float64Array[] = [];
  /** Free chunk addresses per class. */
  readonly #free: number[][] = CLASS_SIZES.map(() => []);
  /** Next never-used chunk per class, and where its page ends (0 = none yet). */
  readonly #next: number[] = CLASS_SIZES.map(() => 0);
  readonly #end: number[] = CLASS_SIZES.map(() => 0);

  /** Bytes of pages owned (they are kept until the slab is dropped). */
  get pageBytes(): number {
    return this.pages.length * PAGE_BYTES;
  }

  /** The address of a chunk for a record of `size` bytes. */
  alloc(size: number): number {
    const c = sizeClass(size);
    const free = this.#free[c];
    if (free.length > 0) return free.pop()!;
    if (this.#next[c] + CLASS_SIZES[c] > this.#end[c]) {
      if (this.pages.length === MAX_PAGES) {
        throw new Error(
          `Store record: the shard's ${MAX_PAGES} MiB of record memory is full`,
        );
      }
      const page = new Uint8Array(PAGE_BYTES);
      this.#next[c] = this.pages.length * PAGE_BYTES;
      this.#end[c] = this.#next[c] + PAGE_BYTES;
      this.pages.push(page);
      this.expiries.push(new Float64Array(page.buffer));
    }
    const addr = this.#next[c];
    this.#next[c] += CLASS_SIZES[c];
    return addr;
  }

  /** Returns the chunk at `addr`, allocated for a record of `size` bytes. */
  free(addr: number, size: number): void {
    this.#free[sizeClass(size)].push(addr);
  }

  /** True iff a record of `next` bytes can stay in a chunk allocated for `prev` bytes. */
  static sameChunk(prev: number, next: number): boolean {
    return sizeClass(prev) === sizeClass(next);
  }
}
