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
 * Memory comes back: a page whose last chunk is freed leaves its class
 * (memcached's slab_reassign, done eagerly) and goes to a pool that every
 * class takes pages from, so a churn from one record size to another reuses
 * the same pages. The pool keeps {@linkcode SPARE_PAGES} pages mapped, so a
 * page emptied and refilled in a loop does not cost an allocation each time;
 * the others are dropped for the garbage collector to return. What stays
 * reserved: free chunks in pages that still hold a live record (a chunk is
 * at most about 1/5 bigger than its record, plus the free chunks of
 * partly used pages) and the spare pages.
 *
 * @module
 */

/** Bytes in one page; a record's address is `page * PAGE_BYTES + offset`. */
export const PAGE_BYTES: number = 1 << 20;

/** Largest record a slab holds. */
export const MAX_SLAB_RECORD: number = 16 * 1024;

/**
 * Empty pages a slab keeps mapped for reuse (4 MiB); more are dropped.
 *
 * @example
 * ```ts
 * import { PAGE_BYTES, SPARE_PAGES } from "./slab.ts";
 * SPARE_PAGES * PAGE_BYTES; // 4194304
 * ```
 */
export const SPARE_PAGES = 4;

/**
 * Pages a slab may own. Addresses stay positive int32 values, so tables can
 * keep them in an `Int32Array`.
 */
const MAX_PAGES = 2047;

/**
 * Chunk sizes, as jemalloc's (which Redis uses) are spaced: 16-byte steps to
 * 128, then four classes per doubling, so a chunk wastes at most about 1/5
 * of itself. Every size is a multiple of 16, so every chunk starts 16-byte
 * aligned and its 32-bit words can be read through a `Uint32Array`.
 * (Whole cache lines measured ~7% more Gets per second, but a 16-byte key
 * with a 100-byte value then took a 192-byte chunk for a 132-byte record;
 * memory per key is the store's first limit at scale.)
 */
const CLASS_SIZES: readonly number[] = (() => {
  const sizes: number[] = [];
  for (let s = 16; s <= 128; s += 16) sizes.push(s);
  for (let step = 32; sizes[sizes.length - 1] < MAX_SLAB_RECORD; step *= 2) {
    for (let i = 0; i < 4; i++) sizes.push(sizes[sizes.length - 1] + step);
  }
  return sizes;
})();

/** The class of each size in 16-byte units (sizes up to MAX_SLAB_RECORD). */
const CLASS_OF: Uint8Array = (() => {
  const t = new Uint8Array(MAX_SLAB_RECORD / 16 + 1);
  let c = 0;
  for (let u = 0; u < t.length; u++) {
    while (CLASS_SIZES[c] < u * 16) c++;
    t[u] = c;
  }
  return t;
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
  return CLASS_OF[(size + 15) >>> 4];
}

/**
 * Bytes of the chunk that holds a record of `size` bytes.
 *
 * @example
 * ```ts
 * import { chunkSize } from "./slab.ts";
 * chunkSize(128); // 128
 * chunkSize(129); // 144
 * ```
 */
export function chunkSize(size: number): number {
  return CLASS_SIZES[sizeClass(size)];
}

const NONE = -1;
const NO_PAGE = new Uint8Array(0);
const NO_WORDS = new Uint32Array(0);

/**
 * Chunked record memory owned by one shard (single-threaded).
 *
 * A free chunk is on a doubly linked list through its first two words
 * (next, previous), so that a page that empties can take its chunks off its
 * class's list without a search.
 *
 * @example
 * ```ts
 * import { PAGE_BYTES, Slab } from "./slab.ts";
 * const slab = new Slab();
 * const addr = slab.alloc(40);
 * slab.pages[Math.floor(addr / PAGE_BYTES)][addr % PAGE_BYTES] = 1;
 * slab.free(addr);
 * ```
 */
export class Slab {
  /** The pages, indexed by `address / PAGE_BYTES` (empty when dropped). */
  readonly pages: Uint8Array[] = [];
  /** The same pages as 32-bit words, for record headers. */
  readonly words: Uint32Array[] = [];
  /** Each page's class, or -1 while it is in the pool. */
  readonly pageClass: number[] = [];
  /** Chunks in use per page. */
  readonly #live: number[] = [];
  /** Head of each class's free list (an address, or -1). */
  readonly #free: number[] = CLASS_SIZES.map(() => NONE);
  /** Next never-used chunk per class, and where its page ends (0 = none yet). */
  readonly #next: number[] = CLASS_SIZES.map(() => 0);
  readonly #end: number[] = CLASS_SIZES.map(() => 0);
  /** Pages in no class: still mapped, and dropped. */
  readonly #spares: number[] = [];
  readonly #dropped: number[] = [];
  #mapped = 0;
  #used = 0;

  /**
   * Bytes of pages mapped (the record memory the process holds).
   *
   * @example
   * ```ts
   * import { Slab } from "./slab.ts";
   * new Slab().pageBytes; // 0
   * ```
   */
  get pageBytes(): number {
    return this.#mapped * PAGE_BYTES;
  }

  /**
   * Bytes of chunks holding records (what `used_memory` counts).
   *
   * @example
   * ```ts
   * import { Slab } from "./slab.ts";
   * const slab = new Slab();
   * slab.alloc(100);
   * slab.usedBytes; // 112
   * ```
   */
  get usedBytes(): number {
    return this.#used;
  }

  /**
   * The address of a chunk for a record of `size` bytes.
   *
   * @example
   * ```ts
   * import { Slab } from "./slab.ts";
   * new Slab().alloc(10); // 0
   * ```
   */
  alloc(size: number): number {
    const c = sizeClass(size);
    const chunk = CLASS_SIZES[c];
    let addr = this.#free[c];
    if (addr !== NONE) {
      this.#unlink(c, addr);
    } else {
      if (this.#next[c] + chunk > this.#end[c]) {
        const page = this.#takePage(c);
        this.#next[c] = page * PAGE_BYTES;
        this.#end[c] = this.#next[c] + PAGE_BYTES - (PAGE_BYTES % chunk);
      }
      addr = this.#next[c];
      this.#next[c] += chunk;
    }
    this.#live[addr >>> 20]++;
    this.#used += chunk;
    return addr;
  }

  /**
   * Returns the chunk at `addr`; its page goes back to the pool when it was
   * the page's last chunk in use.
   *
   * @example
   * ```ts
   * import { Slab } from "./slab.ts";
   * const slab = new Slab();
   * slab.free(slab.alloc(10));
   * slab.usedBytes; // 0
   * ```
   */
  free(addr: number): void {
    const page = addr >>> 20;
    const c = this.pageClass[page];
    this.#used -= CLASS_SIZES[c];
    if (--this.#live[page] === 0) {
      this.#releasePage(page, c, addr);
      return;
    }
    const w = this.words[page];
    const head = this.#free[c];
    const at = (addr & (PAGE_BYTES - 1)) >>> 2;
    w[at] = head;
    w[at + 1] = NONE;
    if (head !== NONE) this.words[head >>> 20][((head & (PAGE_BYTES - 1)) >>> 2) + 1] = addr;
    this.#free[c] = addr;
  }

  /**
   * Size of the chunk at `addr`, or 0 when `addr` is not a chunk boundary
   * of a page in use (so a stale address can be told apart).
   *
   * @example
   * ```ts
   * import { Slab } from "./slab.ts";
   * const slab = new Slab();
   * slab.chunkAt(slab.alloc(100)); // 112
   * ```
   */
  chunkAt(addr: number): number {
    const page = addr >>> 20;
    if (page >= this.pageClass.length) return 0;
    const c = this.pageClass[page];
    if (c < 0) return 0;
    const chunk = CLASS_SIZES[c];
    return (addr & (PAGE_BYTES - 1)) % chunk === 0 ? chunk : 0;
  }

  /** True iff a record of `next` bytes can stay in a chunk allocated for `prev` bytes. */
  static sameChunk(prev: number, next: number): boolean {
    return sizeClass(prev) === sizeClass(next);
  }

  #unlink(c: number, addr: number): void {
    const w = this.words[addr >>> 20];
    const at = (addr & (PAGE_BYTES - 1)) >>> 2;
    const next = w[at] | 0;
    const prev = w[at + 1] | 0;
    if (prev === NONE) this.#free[c] = next;
    else this.words[prev >>> 20][(prev & (PAGE_BYTES - 1)) >>> 2] = next;
    if (next !== NONE) this.words[next >>> 20][((next & (PAGE_BYTES - 1)) >>> 2) + 1] = prev;
  }

  #takePage(c: number): number {
    let page: number;
    if (this.#spares.length > 0) page = this.#spares.pop()!;
    else if (this.#dropped.length > 0) {
      page = this.#dropped.pop()!;
      this.#map(page);
    } else {
      if (this.pages.length === MAX_PAGES) {
        throw new Error(`Store record: the shard's ${MAX_PAGES} MiB of record memory is full`);
      }
      page = this.pages.length;
      this.pages.push(NO_PAGE);
      this.words.push(NO_WORDS);
      this.pageClass.push(-1);
      this.#live.push(0);
      this.#map(page);
    }
    this.pageClass[page] = c;
    return page;
  }

  #map(page: number): void {
    const bytes = new Uint8Array(PAGE_BYTES);
    this.pages[page] = bytes;
    this.words[page] = new Uint32Array(bytes.buffer);
    this.#mapped++;
  }

  /** Moves emptied page `page` of class `c` (whose last chunk, `last`, is being freed) to the pool. */
  #releasePage(page: number, c: number, last: number): void {
    const chunk = CLASS_SIZES[c];
    const start = page * PAGE_BYTES;
    // A page is cut to its end before the next is taken, so every chunk up
    // to the cut was handed out once and, the page being empty, is on the
    // free list now, but for the one being freed.
    const cutting = this.#next[c] >= start && this.#next[c] < start + PAGE_BYTES;
    const end = cutting ? this.#next[c] : start + PAGE_BYTES - (PAGE_BYTES % chunk);
    for (let addr = start; addr < end; addr += chunk) {
      if (addr !== last) this.#unlink(c, addr);
    }
    if (cutting) this.#next[c] = this.#end[c] = 0;
    this.pageClass[page] = -1;
    if (this.#spares.length < SPARE_PAGES) this.#spares.push(page);
    else {
      // Drop the page itself, so the collector can give it back to the OS.
      this.#unmap(page);
      this.#dropped.push(page);
    }
  }

  #unmap(page: number): void {
    if (this.pages[page] === NO_PAGE) return;
    this.pages[page] = NO_PAGE;
    this.words[page] = NO_WORDS;
    this.#mapped--;
  }
}
