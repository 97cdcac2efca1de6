/**
 * One shard of the evkv key-value store.
 *
 * A `ShardStore` is owned by exactly one thread, so it has no locking.
 * Each key is stored once, in its record; three structures refer to the
 * record by its address (an int32):
 *
 * - a hash table (open addressing, 8 bytes a slot: hash and address) for
 *   Get, Put and Delete, so a Get never builds a string and costs about two
 *   cache misses (the slot and the record);
 * - a B+tree of addresses ordered by the keys in the records
 *   ({@link BTree}), for Scan;
 * - a heap of (expiry, address) for keys with a TTL ({@link TtlHeap}), for
 *   active expiry.
 *
 * A record is `[valueLen u32][crc u32][keyLen u15 | ttl u1 | lru u16]`,
 * then for a key with a TTL its expiry (ms since the epoch, two u32
 * words), then the key, then the value: 12 bytes of header, 20 with a TTL.
 * A 16-byte key with a 100-byte value is a 128-byte record in a 128-byte
 * chunk; with the table (~17 B a key at its usual load) and the tree (~6 B)
 * a key costs about 150 bytes, where redis-server spends about 200.
 *
 * With a memory cap ({@link StoreOptions.maxMemory}), a write that needs
 * more memory evicts keys first (by the policy) or, under `noeviction`,
 * throws {@link StoreFullError} having changed nothing.
 *
 * @module
 */
import { Status } from "../protocol/constants.ts";
import { crc32Of } from "../protocol/crc32.ts";
import { ServiceError } from "../server/service.ts";
import { BTree } from "./btree.ts";
import { hashBytes } from "./route.ts";
import { chunkSize, MAX_SLAB_RECORD, PAGE_BYTES, Slab } from "./slab.ts";
import { TtlHeap } from "./ttl_heap.ts";

/**
 * Options for {@linkcode ShardStore.scan}.
 *
 * @example
 * ```ts
 * const opts: ScanOptions = {
 *   prefix: new TextEncoder().encode("user:"),
 *   startAfter: new Uint8Array(0),
 *   limit: 100,
 *   maxBytes: 65536,
 * };
 * ```
 */
export interface ScanOptions {
  /** Only keys starting with these bytes; empty matches every key. */
  prefix: Uint8Array;
  /** Only keys strictly greater than this; empty starts from the beginning. */
  startAfter: Uint8Array;
  /** Maximum entries to return; values `<= 0` mean 1000. */
  limit: number;
  /**
   * Soft cap on the summed key+value bytes of the returned entries; the first
   * entry is always returned even if it alone exceeds the cap.
   */
  maxBytes: number;
}

/**
 * One key/value pair returned by {@linkcode ShardStore.scan}.
 *
 * @example
 * ```ts
 * const e: ScanEntry = { key: new Uint8Array([1]), value: new Uint8Array([2]) };
 * ```
 */
export interface ScanEntry {
  /** A fresh copy of the key bytes. */
  key: Uint8Array;
  /**
   * A view of the stored value, not a copy: valid until the store next
   * changes, and not to be mutated.
   */
  value: Uint8Array;
}

/**
 * A value found by {@linkcode ShardStore.lookup}.
 *
 * @example
 * ```ts
 * const v: StoredValue = { value: new Uint8Array([1]), crc: 0xa505df1b };
 * ```
 */
export interface StoredValue {
  /**
   * A view of the stored value, not a copy: valid until the store next
   * changes, and not to be mutated.
   */
  value: Uint8Array;
  /** CRC-32 of the value, computed when it was stored. */
  crc: number;
}

/**
 * Result of {@linkcode ShardStore.scan}.
 *
 * @example
 * ```ts
 * const r: ScanResult = { entries: [], more: false };
 * ```
 */
export interface ScanResult {
  /** Matching entries in ascending byte order of key. */
  entries: ScanEntry[];
  /** True iff another live key with the prefix follows the last entry. */
  more: boolean;
}

/** Max arguments per `String.fromCharCode.apply`, well below engine limits. */
const CHUNK = 8192;

/**
 * Converts key bytes to a binary string (one code unit per byte) whose JS
 * ordering equals unsigned byte order.
 *
 * @example
 * ```ts
 * keyToString(new Uint8Array([0x61, 0x00, 0xff])); // "a\x00\xff"
 * ```
 */
export function keyToString(bytes: Uint8Array): string {
  if (bytes.length <= CHUNK) {
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  let s = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    s += String.fromCharCode.apply(
      null,
      bytes.subarray(i, i + CHUNK) as unknown as number[],
    );
  }
  return s;
}

/**
 * Converts a binary string produced by {@linkcode keyToString} back to bytes.
 *
 * @example
 * ```ts
 * stringToKey("a\x00\xff"); // Uint8Array [0x61, 0x00, 0xff]
 * ```
 */
export function stringToKey(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * Thrown by a write that needs memory past the store's cap under the
 * `noeviction` policy; nothing was written. It is a {@link ServiceError}
 * with status `NO_MEMORY` (9), so any handler that lets it through replies
 * with that status (and the RESP door with `-OOM ...`).
 *
 * @example
 * ```ts
 * try {
 *   store.put(key, value, 0);
 * } catch (e) {
 *   if (e instanceof StoreFullError) console.log("out of memory");
 * }
 * ```
 */
export class StoreFullError extends ServiceError {
  /**
   * @param message What could not be stored.
   *
   * @example
   * ```ts
   * throw new StoreFullError("Store put: the shard is at its memory cap");
   * ```
   */
  constructor(message = "Store write: used memory is at the cap (maxmemory)") {
    super(Status.NO_MEMORY, message);
    this.name = "StoreFullError";
  }
}

/** Why a key left the store, as told to {@linkcode StoreObserver.removed}. */
export type RemoveReason = "delete" | "expire" | "evict";

/**
 * Told of every change to a {@linkcode ShardStore}, so that persistence can
 * follow it. Calls happen synchronously, as the change is made.
 *
 * @example
 * ```ts
 * const log: string[] = [];
 * const observer: StoreObserver = {
 *   stored: (key) => log.push(`set ${key.length}`),
 *   removed: (_key, reason) => log.push(reason),
 *   cleared: () => log.push("flush"),
 * };
 * ```
 */
export interface StoreObserver {
  /**
   * `key` now holds `value` (views, valid only during the call) with this
   * absolute expiry in ms since the epoch (`0` = none).
   */
  stored(key: Uint8Array, value: Uint8Array, expiresAt: number): void;
  /** `key` (a view, valid only during the call) is gone: deleted, expired or evicted. */
  removed(key: Uint8Array, reason: RemoveReason): void;
  /** Every key is gone (FLUSHDB). */
  cleared(): void;
}

/**
 * Which keys a full store evicts to make room (Redis's `maxmemory-policy`).
 *
 * - `noeviction`: none; a write that needs memory fails with
 *   {@link StoreFullError}.
 * - `allkeys-lru`: the least recently used of a sample of keys.
 * - `volatile-lru`: the least recently used of a sample of keys with a TTL.
 * - `allkeys-random`: a random key.
 *
 * @example
 * ```ts
 * const policy: EvictionPolicy = "allkeys-lru";
 * ```
 */
export type EvictionPolicy = "noeviction" | "allkeys-lru" | "volatile-lru" | "allkeys-random";

/**
 * The eviction policies, in the order `--eviction` lists them.
 *
 * @example
 * ```ts
 * EVICTION_POLICIES.includes("allkeys-lru"); // true
 * ```
 */
export const EVICTION_POLICIES: readonly EvictionPolicy[] = [
  "noeviction",
  "allkeys-lru",
  "volatile-lru",
  "allkeys-random",
];

/**
 * Options of a {@linkcode ShardStore}.
 *
 * @example
 * ```ts
 * const opts: StoreOptions = { maxMemory: 64 << 20, eviction: "allkeys-lru" };
 * ```
 */
export interface StoreOptions {
  /** Cap on {@linkcode ShardStore.usedMemory} in bytes; 0 (the default) = none. */
  maxMemory?: number;
  /** What to evict at the cap; default `noeviction`. */
  eviction?: EvictionPolicy;
}

/** Int32s per table slot: hash (0 = empty), record address. */
const SLOT = 2;
/** Slots in a new table; it doubles past 3/4 full. */
const INITIAL_SLOTS = 1024;
/** Record header words (see the module comment). */
const W_VLEN = 0;
const W_CRC = 1;
const W_META = 2;
const W_EXP = 3;
const HEADER = 12;
const TTL_HEADER = 20;
const KEY_MASK = 0x7fff;
const TTL_BIT = 0x8000;
/**
 * Longest key a record can hold (15 bits of length); the KV service allows
 * 1024 bytes, well under it.
 *
 * @example
 * ```ts
 * MAX_STORE_KEY; // 32767
 * ```
 */
export const MAX_STORE_KEY: number = KEY_MASK;
const TWO_32 = 2 ** 32;
const PAGE_MASK = PAGE_BYTES - 1;
const PAGE_SHIFT = Math.log2(PAGE_BYTES);
const CACHE_LINE = 64;
/** {@link ShardStore.prefetch}'s slot offsets, reused (one thread per store). */
let prefetchSlots = new Int32Array(64);

/** A table's stored form of a hash: nonzero, since 0 marks an empty slot. */
const stored = (hash: number) => (hash | 0) || 1;

/**
 * Stale heap entries beyond this slack (on top of 2x the live TTL count)
 * trigger a rebuild, keeping the heap bounded under repeated re-puts.
 */
const HEAP_SLACK = 64;
/** Stale heap entries {@link ShardStore.nextExpiryIn} drops per call. */
const STALE_PER_CALL = 1024;
/** Keys looked at per eviction, as Redis's `maxmemory-samples` default. */
const EVICTION_SAMPLES = 5;
/** Writes between two small expiry sweeps, so keys expire under load too. */
const WRITES_PER_SWEEP = 64;
/** Reads between two such sweeps (a power of two). */
const READS_PER_SWEEP = 1024;
/** Heap entries checked by that sweep. */
const WRITE_SWEEP_CHECKS = 16;

/**
 * Compares `a[as, ae)` with `b[bs, be)` in unsigned byte order.
 *
 * @example
 * ```ts
 * compareBytes(new Uint8Array([1]), 0, 1, new Uint8Array([1, 0]), 0, 2); // < 0
 * ```
 */
export function compareBytes(
  a: Uint8Array,
  as: number,
  ae: number,
  b: Uint8Array,
  bs: number,
  be: number,
): number {
  const n = Math.min(ae - as, be - bs);
  for (let i = 0; i < n; i++) {
    const d = a[as + i] - b[bs + i];
    if (d !== 0) return d;
  }
  return (ae - as) - (be - bs);
}

/**
 * A single-threaded, ordered, in-memory key-value shard with optional TTLs
 * and an optional memory cap.
 *
 * Expired entries behave exactly like missing ones; they are removed lazily
 * when touched and actively via {@linkcode ShardStore.sweep} (which the KV
 * service runs when idle, and the store itself a little every 64 writes and 1024 reads).
 *
 * @example
 * ```ts
 * const store = new ShardStore();
 * const enc = new TextEncoder();
 * store.put(enc.encode("k"), enc.encode("v"), 0);
 * store.get(enc.encode("k")); // Uint8Array "v"
 * ```
 */
export class ShardStore {
  readonly #now: () => number;
  /**
   * Open-addressing hash table (linear probing), {@link SLOT} int32s per
   * slot. A probe reads hashes from one array and touches a record only on
   * a hash match.
   */
  #table = new Int32Array(INITIAL_SLOTS * SLOT);
  /**
   * 32 - log2(slots): a slot is picked by the top bits of a remixed hash,
   * because shards are chosen by the same hash modulo the shard count, so
   * its low bits are nearly equal within one shard.
   */
  #shift = 32 - Math.log2(INITIAL_SLOTS);
  /** Records up to MAX_SLAB_RECORD bytes. */
  #slab = new Slab();
  /** Bigger records, one buffer each (length a multiple of 4); the address is -2 - index (-1 means none). */
  #large: (Uint8Array | undefined)[] = [];
  #largeWords: (Uint32Array | undefined)[] = [];
  #largeFree: number[] = [];
  #largeBytes = 0;
  /** The keys in order, for Scan. */
  #tree: BTree;
  /** Keys with a TTL by expiry, for sweeps. */
  #heap = new TtlHeap();
  #count = 0;
  #bytes = 0;
  #ttlCount = 0;
  #expired = 0;
  #evicted = 0;
  #writes = 0;
  #reads = 0;
  readonly #cap: number;
  readonly #policy: EvictionPolicy;
  readonly #lru: boolean;
  /** Seconds clock, 16 bits, stamped on records read or written when the policy is LRU. */
  #clock = 0;
  /** Set by {@link #at}: the buffer, its words and the byte offset of the record asked for. */
  #buf: Uint8Array = new Uint8Array(0);
  #words: Uint32Array = new Uint32Array(0);
  #off = 0;

  /**
   * Told of every change (for persistence); `null`, the default, costs one
   * check per write.
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.observer = { stored() {}, removed() {}, cleared() {} };
   * ```
   */
  observer: StoreObserver | null = null;

  /**
   * Creates an empty shard.
   *
   * @param now Clock in milliseconds; injectable so tests can control time.
   * @param options Memory cap and eviction policy.
   *
   * @example
   * ```ts
   * let t = 0;
   * const store = new ShardStore(() => t, { maxMemory: 1 << 20, eviction: "allkeys-lru" });
   * ```
   */
  constructor(now: () => number = Date.now, options: StoreOptions = {}) {
    this.#now = now;
    this.#cap = Math.max(0, options.maxMemory ?? 0);
    this.#policy = options.eviction ?? "noeviction";
    this.#lru = this.#policy === "allkeys-lru" || this.#policy === "volatile-lru";
    this.#tree = new BTree({ compare: (key, ref) => this.#compare(key, ref) });
    this.#tick();
  }

  /**
   * Number of stored keys. It can include expired keys until a sweep or a
   * touch removes them (the service sweeps when idle, and requests sweep a little).
   *
   * @example
   * ```ts
   * new ShardStore().size; // 0
   * ```
   */
  get size(): number {
    return this.#count;
  }

  /**
   * Number of stored keys that carry a TTL (like {@linkcode ShardStore.size},
   * it may include expired keys not yet swept).
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.put(new Uint8Array([1]), new Uint8Array(0), 1000);
   * s.keysWithTtl; // 1
   * ```
   */
  get keysWithTtl(): number {
    return this.#ttlCount;
  }

  /**
   * Bytes the shard's data takes (Redis's `used_memory` for one shard):
   * the chunks holding records, large records, the hash table, the B+tree
   * and the TTL heap, arrays counted at their allocated length.
   *
   * @example
   * ```ts
   * new ShardStore().usedMemory > 0; // true: the empty table
   * ```
   */
  get usedMemory(): number {
    return this.#slab.usedBytes + this.#largeBytes + this.#table.byteLength + this.#tree.bytes +
      this.#heap.bytes;
  }

  /**
   * Bytes of record pages mapped, used or not: what
   * {@linkcode ShardStore.usedMemory} leaves out of the process's memory
   * (free chunks of partly used pages and a few spare pages).
   *
   * @example
   * ```ts
   * new ShardStore().reservedMemory; // 0
   * ```
   */
  get reservedMemory(): number {
    return this.#slab.pageBytes;
  }

  /**
   * The memory cap in bytes (0 = none).
   *
   * @example
   * ```ts
   * new ShardStore(Date.now, { maxMemory: 1000 }).maxMemory; // 1000
   * ```
   */
  get maxMemory(): number {
    return this.#cap;
  }

  /**
   * Keys evicted to make room under the memory cap since the store was made.
   *
   * @example
   * ```ts
   * new ShardStore().evictedKeys; // 0
   * ```
   */
  get evictedKeys(): number {
    return this.#evicted;
  }

  /**
   * Keys removed because their TTL passed (lazily or by a sweep) since the
   * store was made.
   *
   * @example
   * ```ts
   * new ShardStore().expiredKeys; // 0
   * ```
   */
  get expiredKeys(): number {
    return this.#expired;
  }

  /**
   * Sum of key length + value length over stored entries (for stats). Like
   * {@linkcode ShardStore.size}, it may include unswept expired entries.
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.put(new Uint8Array([1, 2]), new Uint8Array([3]), 0);
   * s.bytes; // 3
   * ```
   */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Returns a view of the stored value, or `undefined` if the key is
   * missing or expired. The view is not a copy: it is valid until the store
   * next changes (a handler encodes it before returning, which is in time),
   * and must not be mutated. An expired key found here is deleted.
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.get(new Uint8Array([1])); // undefined
   * ```
   */
  get(key: Uint8Array): Uint8Array | undefined {
    const slot = this.#findLive(key);
    return slot < 0 ? undefined : this.#value();
  }

  /**
   * Like {@linkcode ShardStore.get}, with the value's CRC-32 as computed
   * when it was stored, so a reply can carry a checksum without another
   * pass over the value (and a value changed in memory since shows up as a
   * CRC mismatch at the client rather than as silently wrong bytes).
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.put(new Uint8Array([1]), new TextEncoder().encode("123456789"), 0);
   * s.lookup(new Uint8Array([1]))?.crc; // 0xcbf43926
   * ```
   */
  lookup(key: Uint8Array): StoredValue | undefined {
    const slot = this.#findLive(key);
    if (slot < 0) return undefined;
    const crc = this.#words[(this.#off >>> 2) + W_CRC];
    return { value: this.#value(), crc };
  }

  /**
   * The slot of `key` if it is stored and not expired (an expired one is
   * deleted), else -1. On a hit, {@link #at} is left on its record, and an
   * LRU policy stamps the record with the clock.
   */
  #findLive(key: Uint8Array): number {
    // Reads sweep a little too (and so advance the LRU clock), so that keys
    // expire under a read-only load that leaves the shard no idle time.
    if ((++this.#reads & (READS_PER_SWEEP - 1)) === 0) this.sweep(WRITE_SWEEP_CHECKS);
    const slot = this.#findBytes(key, hashBytes(key, 0, key.length));
    if (slot < 0) return -1;
    const w = this.#words;
    const m = (this.#off >>> 2) + W_META;
    const meta = w[m];
    if ((meta & TTL_BIT) !== 0) {
      const expiresAt = this.#expiry();
      if (expiresAt <= this.#now()) {
        this.#remove(slot, "expire");
        return -1;
      }
    }
    if (this.#lru && meta >>> 16 !== this.#clock) w[m] = (meta & 0xffff) | (this.#clock << 16);
    return slot;
  }

  /**
   * Stores a copy of `value` under `key`. The copy matters because callers
   * pass views into shared ring memory that is overwritten later.
   *
   * @param ttlMs Time to live in ms; `0` (or any non-positive or non-finite
   *   value) means no expiry, and also clears a previous TTL.
   * @returns `true` iff a live (non-expired) value was replaced.
   * @throws {StoreFullError} At the memory cap under `noeviction` (or with
   *   nothing left to evict); nothing was written.
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.put(new Uint8Array([1]), new Uint8Array([9]), 0); // false
   * s.put(new Uint8Array([1]), new Uint8Array([8]), 5000); // true
   * ```
   */
  put(key: Uint8Array, value: Uint8Array, ttlMs: number): boolean {
    const hasTtl = ttlMs > 0 && Number.isFinite(ttlMs);
    return this.#write(key, value, hasTtl ? this.#now() + ttlMs : 0);
  }

  /**
   * Like {@linkcode ShardStore.put}, with an absolute expiry in ms since the
   * epoch (`0` = none), for EXAT/PXAT, KEEPTTL and loading from disk. An
   * expiry already past removes the key instead (as Redis's SET ... PXAT
   * with a past time does), so nothing expired is ever stored.
   *
   * @returns `true` iff a live (non-expired) value was replaced.
   * @throws {StoreFullError} As {@linkcode ShardStore.put}.
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.putUntil(new Uint8Array([1]), new Uint8Array([9]), Date.now() + 60_000); // false
   * s.expiryOf(new Uint8Array([1])); // that time
   * ```
   */
  putUntil(key: Uint8Array, value: Uint8Array, expiresAt: number): boolean {
    if (!(expiresAt > 0) || !Number.isFinite(expiresAt)) expiresAt = 0;
    if (expiresAt !== 0 && expiresAt <= this.#now()) {
      const slot = this.#findLive(key);
      if (slot < 0) return false;
      this.#remove(slot, "expire");
      return true;
    }
    return this.#write(key, value, expiresAt);
  }

  /**
   * Absolute expiry (ms since the epoch) of a live key, `0` when it has
   * none, or `undefined` when it is missing or expired.
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.put(new Uint8Array([1]), new Uint8Array([9]), 0);
   * s.expiryOf(new Uint8Array([1])); // 0
   * s.expiryOf(new Uint8Array([2])); // undefined
   * ```
   */
  expiryOf(key: Uint8Array): number | undefined {
    return this.#findLive(key) < 0 ? undefined : this.#expiry();
  }

  /**
   * Sets (`expiresAt` in the future) or clears (`0`) a live key's expiry;
   * a time already past deletes the key (reported to the observer as
   * `"expire"`).
   *
   * @returns `false` iff the key is missing or expired (nothing changes).
   * @throws {StoreFullError} When adding a TTL needs a bigger chunk at the cap.
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.put(new Uint8Array([1]), new Uint8Array([9]), 0);
   * s.setExpiry(new Uint8Array([1]), Date.now() + 1000); // true
   * s.setExpiry(new Uint8Array([1]), 0); // true: persistent again
   * ```
   */
  setExpiry(key: Uint8Array, expiresAt: number): boolean {
    const slot = this.#findLive(key);
    if (slot < 0) return false;
    if (!(expiresAt > 0) || !Number.isFinite(expiresAt)) expiresAt = 0;
    if (expiresAt !== 0 && expiresAt <= this.#now()) {
      this.#remove(slot, "expire");
      return true;
    }
    // The header changes size with the TTL, so this is a rewrite of the
    // record (in place when the chunk still fits), with the value copied
    // out first in case the record moves.
    const value = this.#value().slice();
    this.#write(key, value, expiresAt);
    return true;
  }

  /**
   * A copy of a random live key, or `undefined` when the shard holds none.
   * Picks a random slot and walks to the next occupied one, so keys after
   * long empty runs are a little likelier (as with Redis's RANDOMKEY, which
   * is not uniform either).
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.randomKey(); // undefined
   * s.put(new Uint8Array([7]), new Uint8Array(0), 0);
   * s.randomKey(); // Uint8Array [7]
   * ```
   */
  randomKey(): Uint8Array | undefined {
    while (this.#count > 0) {
      const slot = this.#randomSlot();
      this.#at(this.#table[slot * SLOT + 1]);
      const meta = this.#words[(this.#off >>> 2) + W_META];
      if ((meta & TTL_BIT) !== 0 && this.#expiry() <= this.#now()) {
        this.#remove(slot, "expire");
        continue;
      }
      const start = this.#off + ((meta & TTL_BIT) !== 0 ? TTL_HEADER : HEADER);
      return this.#buf.slice(start, start + (meta & KEY_MASK));
    }
    return undefined;
  }

  /**
   * Deletes `key`.
   *
   * @returns `true` iff a live key was deleted (an expired one is still
   *   removed but reports `false`).
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.delete(new Uint8Array([1])); // false
   * ```
   */
  delete(key: Uint8Array): boolean {
    const slot = this.#findBytes(key, hashBytes(key, 0, key.length));
    if (slot < 0) return false;
    const meta = this.#words[(this.#off >>> 2) + W_META];
    const live = (meta & TTL_BIT) === 0 || this.#expiry() > this.#now();
    this.#remove(slot, live ? "delete" : "expire");
    return live;
  }

  /**
   * Returns live entries whose keys start with `prefix` and are strictly
   * greater than `startAfter`, in ascending byte order, bounded by `limit`
   * and (softly) `maxBytes`. Expired keys met on the way are deleted.
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * const { entries, more } = s.scan({
   *   prefix: new Uint8Array(0),
   *   startAfter: new Uint8Array(0),
   *   limit: 10,
   *   maxBytes: 1 << 20,
   * });
   * ```
   */
  scan(opts: ScanOptions): ScanResult {
    const { prefix, startAfter } = opts;
    const limit = opts.limit > 0 ? opts.limit : 1000;
    const maxBytes = opts.maxBytes;
    const now = this.#ttlCount > 0 ? this.#now() : 0;
    const tree = this.#tree;
    // Every key with the prefix is >= prefix, so the first candidate is the
    // later of "first key >= prefix" and "first key > startAfter".
    const after = startAfter.length > 0 &&
      compareBytes(startAfter, 0, startAfter.length, prefix, 0, prefix.length) >= 0;
    tree.seek(after ? startAfter : prefix, after);

    const entries: ScanEntry[] = [];
    let expired: number[] | null = null;
    let total = 0;
    let more = false;
    for (let ref = tree.ref; ref !== -1; tree.next(), ref = tree.ref) {
      this.#at(ref);
      const w = this.#words;
      const wi = this.#off >>> 2;
      const meta = w[wi + W_META];
      const keyLen = meta & KEY_MASK;
      const keyAt = this.#off + ((meta & TTL_BIT) !== 0 ? TTL_HEADER : HEADER);
      const buf = this.#buf;
      if (keyLen < prefix.length) break;
      if (compareBytes(buf, keyAt, keyAt + prefix.length, prefix, 0, prefix.length) !== 0) break;
      if ((meta & TTL_BIT) !== 0 && this.#expiry() <= now) {
        (expired ??= []).push(ref);
        continue;
      }
      const valueLen = w[wi + W_VLEN];
      const size = keyLen + valueLen;
      if (entries.length >= limit || (entries.length > 0 && total + size > maxBytes)) {
        // This key is live and has the prefix, so `more` is exact here.
        more = true;
        break;
      }
      const valueAt = keyAt + keyLen;
      entries.push({
        key: buf.slice(keyAt, keyAt + keyLen),
        value: buf.subarray(valueAt, valueAt + valueLen),
      });
      total += size;
    }
    // Removed after the walk, which a change to the tree would invalidate;
    // removal only frees chunks, so the views above stay valid.
    if (expired !== null) { for (const ref of expired) this.#removeRecord(ref, "expire"); }
    return { entries, more };
  }

  /**
   * Active expiry: inspects up to `maxChecks` of the soonest-expiring TTL
   * entries and deletes the expired keys among them. Stops early once the
   * soonest remaining entry is not yet due. Also advances the LRU clock.
   *
   * @returns Number of keys deleted.
   *
   * @example
   * ```ts
   * let t = 0;
   * const s = new ShardStore(() => t);
   * s.put(new Uint8Array([1]), new Uint8Array([1]), 10);
   * t = 10;
   * s.sweep(100); // 1
   * ```
   */
  sweep(maxChecks: number): number {
    const now = this.#tick();
    const heap = this.#heap;
    if (heap.length === 0 || !(maxChecks > 0)) return 0;
    let deleted = 0;
    for (let checks = 0; checks < maxChecks && heap.length > 0; checks++) {
      const at = heap.topAt;
      const slot = this.#liveTtl(heap.topAddr, at);
      if (slot < 0) {
        heap.pop();
        continue;
      }
      if (at > now) break;
      heap.pop();
      this.#remove(slot, "expire");
      deleted++;
    }
    return deleted;
  }

  /**
   * Milliseconds until the earliest stored expiry (`0` if something is
   * already due, `Infinity` if no key has a TTL). Suitable for bounding a
   * blocking wait before the next {@linkcode ShardStore.sweep}.
   *
   * @example
   * ```ts
   * new ShardStore().nextExpiryIn(); // Infinity
   * ```
   */
  nextExpiryIn(): number {
    const heap = this.#heap;
    // Stale entries dropped per call are bounded, so that a mass delete of
    // keys with a TTL costs no long pause here: past the bound, "due now"
    // brings the caller back for the rest.
    for (let stale = 0; heap.length > 0; stale++) {
      if (stale === STALE_PER_CALL) return 0;
      const at = heap.topAt;
      if (this.#liveTtl(heap.topAddr, at) >= 0) {
        const d = at - this.#now();
        return d > 0 ? d : 0;
      }
      heap.pop();
    }
    return Infinity;
  }

  /**
   * Removes every entry and gives back the memory.
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.clear();
   * s.size; // 0
   * ```
   */
  clear(): void {
    this.#table = new Int32Array(INITIAL_SLOTS * SLOT);
    this.#shift = 32 - Math.log2(INITIAL_SLOTS);
    this.#slab = new Slab();
    this.#large = [];
    this.#largeWords = [];
    this.#largeFree = [];
    this.#largeBytes = 0;
    this.#tree.clear();
    this.#heap.clear();
    this.#count = 0;
    this.#bytes = 0;
    this.#ttlCount = 0;
    if (this.observer !== null) this.observer.cleared();
  }

  /**
   * Reads, changing nothing, the hash slot and the record that looking up
   * each key `bytes[starts[i], ends[i])` (i < n) would read, so that their
   * cache misses overlap instead of stalling one lookup after another.
   * All slots are read in one tight pass, then all records in another: a
   * pass per key (hash, slot, record) measured no gain, because a key's
   * record address waits for its slot, and the CPU cannot look far enough
   * ahead past that much work per key to start the next ones.
   * Only each key's home slot is read.
   *
   * @returns A number made from the bytes read, meaningless except that
   *   the reads cannot be optimized away.
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * const keys = new TextEncoder().encode("k1k2");
   * s.prefetch(keys, new Int32Array([0, 2]), new Int32Array([2, 4]), 2);
   * ```
   */
  prefetch(bytes: Uint8Array, starts: Int32Array, ends: Int32Array, n: number): number {
    if (prefetchSlots.length < n) prefetchSlots = new Int32Array(n);
    const at = prefetchSlots;
    const t = this.#table;
    const shift = this.#shift;
    for (let i = 0; i < n; i++) {
      const want = stored(hashBytes(bytes, starts[i], ends[i]));
      at[i] = (Math.imul(want, 0x9e3779b1) >>> shift) * SLOT;
    }
    let sum = 0;
    for (let i = 0; i < n; i++) sum += t[at[i]];
    const slab = this.#slab;
    const pages = slab.pages;
    for (let i = 0; i < n; i++) {
      const slot = at[i];
      const addr = t[slot + 1];
      // Empty slots and records with their own buffer are left alone.
      if (t[slot] === 0 || addr < 0) continue;
      const page = pages[addr >>> PAGE_SHIFT];
      const off = addr & PAGE_MASK;
      sum += page[off];
      // A chunk never crosses its page, so the record's second line is in it.
      if (slab.chunkAt(addr) > CACHE_LINE) sum += page[off + CACHE_LINE];
    }
    return sum;
  }

  // --- records -------------------------------------------------------------

  /** Points #buf, #words and #off at the record at `addr`. */
  #at(addr: number): void {
    if (addr >= 0) {
      this.#off = addr & PAGE_MASK;
      this.#buf = this.#slab.pages[addr >>> PAGE_SHIFT];
      this.#words = this.#slab.words[addr >>> PAGE_SHIFT];
    } else {
      this.#off = 0;
      this.#buf = this.#large[-2 - addr]!;
      this.#words = this.#largeWords[-2 - addr]!;
    }
  }

  /** The expiry of the record #at points to (0 when it has none). */
  #expiry(): number {
    const w = this.#words;
    const i = this.#off >>> 2;
    if ((w[i + W_META] & TTL_BIT) === 0) return 0;
    return w[i + W_EXP] + w[i + W_EXP + 1] * TWO_32;
  }

  /** A view of the value of the record #at points to, valid until the store changes. */
  #value(): Uint8Array {
    const w = this.#words;
    const i = this.#off >>> 2;
    const meta = w[i + W_META];
    const start = this.#off + ((meta & TTL_BIT) !== 0 ? TTL_HEADER : HEADER) + (meta & KEY_MASK);
    return this.#buf.subarray(start, start + w[i + W_VLEN]);
  }

  /** Orders `key` against the key of the record at `addr` (the tree's comparison). */
  #compare(key: Uint8Array, addr: number): number {
    this.#at(addr);
    const meta = this.#words[(this.#off >>> 2) + W_META];
    const start = this.#off + ((meta & TTL_BIT) !== 0 ? TTL_HEADER : HEADER);
    const buf = this.#buf;
    const klen = meta & KEY_MASK;
    const n = key.length < klen ? key.length : klen;
    for (let i = 0; i < n; i++) {
      const d = key[i] - buf[start + i];
      if (d !== 0) return d;
    }
    return key.length - klen;
  }

  /** Bytes `#alloc(size)` takes from the cap. */
  #cost(size: number): number {
    return size <= MAX_SLAB_RECORD ? chunkSize(size) : (size + 3) & ~3;
  }

  #alloc(size: number): number {
    if (size <= MAX_SLAB_RECORD) return this.#slab.alloc(size);
    const index = this.#largeFree.length > 0 ? this.#largeFree.pop()! : this.#large.length;
    const buf = new Uint8Array((size + 3) & ~3);
    this.#large[index] = buf;
    this.#largeWords[index] = new Uint32Array(buf.buffer);
    this.#largeBytes += buf.length;
    return -2 - index;
  }

  #free(addr: number): void {
    if (addr >= 0) this.#slab.free(addr);
    else {
      this.#largeBytes -= this.#large[-2 - addr]!.length;
      this.#large[-2 - addr] = undefined;
      this.#largeWords[-2 - addr] = undefined;
      this.#largeFree.push(-2 - addr);
    }
  }

  /** Whether a record of `size` bytes can replace one of `prev` bytes at `addr`. */
  #fitsInPlace(addr: number, prev: number, size: number): boolean {
    if (addr < 0) return size > MAX_SLAB_RECORD && ((size + 3) & ~3) === ((prev + 3) & ~3);
    return size <= MAX_SLAB_RECORD && Slab.sameChunk(prev, size);
  }

  /** Writes header, key and value of a record at #at (the key may already be in place). */
  #fill(key: Uint8Array | null, value: Uint8Array, expiresAt: number): void {
    const w = this.#words;
    const buf = this.#buf;
    const i = this.#off >>> 2;
    const keyLen = key === null ? w[i + W_META] & KEY_MASK : key.length;
    const hdr = expiresAt !== 0 ? TTL_HEADER : HEADER;
    const keyAt = this.#off + hdr;
    if (key !== null) buf.set(key, keyAt);
    const valueAt = keyAt + keyLen;
    buf.set(value, valueAt);
    w[i + W_VLEN] = value.length;
    w[i + W_CRC] = crc32Of(buf, valueAt, valueAt + value.length);
    w[i + W_META] = keyLen | (expiresAt !== 0 ? TTL_BIT : 0) | (this.#clock << 16);
    if (expiresAt !== 0) {
      w[i + W_EXP] = expiresAt % TWO_32;
      w[i + W_EXP + 1] = Math.floor(expiresAt / TWO_32);
    }
  }

  /** Stores `value` under `key` with absolute expiry `expiresAt` (0 = none, else in the future). */
  #write(key: Uint8Array, value: Uint8Array, expiresAt: number): boolean {
    const keyLen = key.length;
    if (keyLen > MAX_STORE_KEY) {
      throw new RangeError(
        `Store put: a key of ${keyLen} bytes is longer than the ${MAX_STORE_KEY} a record holds`,
      );
    }
    if (++this.#writes === WRITES_PER_SWEEP) {
      this.#writes = 0;
      this.sweep(WRITE_SWEEP_CHECKS);
    }
    const hash = hashBytes(key, 0, keyLen);
    const size = (expiresAt !== 0 ? TTL_HEADER : HEADER) + keyLen + value.length;
    let slot = this.#findBytes(key, hash);
    let grow = false;
    if (this.#cap > 0 || slot < 0) {
      let need = this.#cost(size);
      if (slot >= 0) need -= this.#cost(this.#recordSize());
      else if ((this.#count + 1) * 4 > (this.#table.length / SLOT) * 3) {
        // At the cap, a table may fill to 7/8 before it must double.
        const bigger = this.#table.byteLength;
        grow = this.#cap === 0 || this.usedMemory + need + bigger <= this.#cap ||
          (this.#count + 1) * 8 > (this.#table.length / SLOT) * 7;
        if (grow) need += bigger;
      }
      if (this.#cap > 0 && need > 0 && this.usedMemory + need > this.#cap) {
        // The value may be a view of a record that eviction frees.
        value = value.slice();
        this.#makeRoom(need, slot < 0 ? -1 : this.#table[slot * SLOT + 1]);
        const again = this.#findBytes(key, hash);
        // The key expired in the sweep that made room: count again as new.
        if ((again < 0) !== (slot < 0)) return this.#write(key, value, expiresAt);
        slot = again;
      }
    }

    if (slot >= 0) {
      const at = slot * SLOT;
      const addr = this.#table[at + 1];
      this.#at(addr);
      const i = this.#off >>> 2;
      const meta = this.#words[i + W_META];
      const old = this.#expiry();
      const replaced = old === 0 || old > this.#now();
      if (!replaced) this.#expired++;
      const prevLen = this.#words[i + W_VLEN];
      const prevSize = this.#recordSize();
      if (this.#fitsInPlace(addr, prevSize, size)) {
        const oldHdr = (meta & TTL_BIT) !== 0 ? TTL_HEADER : HEADER;
        const hdr = expiresAt !== 0 ? TTL_HEADER : HEADER;
        if (oldHdr !== hdr) {
          // The value may be a view of this very record, about to move.
          if (value.buffer === this.#buf.buffer) value = value.slice();
          // Move the key (and so the value after it) to the new header's end.
          this.#buf.copyWithin(this.#off + hdr, this.#off + oldHdr, this.#off + oldHdr + keyLen);
        }
        this.#fill(null, value, expiresAt);
      } else {
        const moved = this.#alloc(size);
        this.#at(moved);
        this.#fill(key, value, expiresAt);
        // The tree finds the entry by comparing with the old record: free it last.
        this.#tree.replace(key, moved);
        this.#table[at + 1] = moved;
        this.#free(addr);
      }
      this.#bytes += value.length - prevLen;
      if (old !== 0) this.#ttlCount--;
      if (expiresAt !== 0) this.#track(expiresAt, this.#table[at + 1]);
      if (this.observer !== null) this.observer.stored(key, value, expiresAt);
      return replaced;
    }

    if (grow) this.#grow();
    const addr = this.#alloc(size);
    this.#at(addr);
    this.#fill(key, value, expiresAt);
    this.#place(this.#table, this.#shift, stored(hash), addr);
    this.#tree.insert(key, addr);
    this.#count++;
    this.#bytes += keyLen + value.length;
    if (expiresAt !== 0) this.#track(expiresAt, addr);
    if (this.observer !== null) this.observer.stored(key, value, expiresAt);
    return false;
  }

  /** Size of the record #at points to. */
  #recordSize(): number {
    const w = this.#words;
    const i = this.#off >>> 2;
    const meta = w[i + W_META];
    return ((meta & TTL_BIT) !== 0 ? TTL_HEADER : HEADER) + (meta & KEY_MASK) + w[i + W_VLEN];
  }

  // --- hash table ------------------------------------------------------------

  /**
   * The slot holding `key` (whose hashBytes is `hash`), expired or not, with
   * #at left on its record; -1 if none.
   */
  #findBytes(key: Uint8Array, hash: number): number {
    const t = this.#table;
    const want = stored(hash);
    const mask = (t.length / SLOT) - 1;
    const n = key.length;
    for (let i = Math.imul(want, 0x9e3779b1) >>> this.#shift;; i = (i + 1) & mask) {
      const h = t[i * SLOT];
      if (h === 0) return -1;
      if (h !== want) continue;
      this.#at(t[i * SLOT + 1]);
      const meta = this.#words[(this.#off >>> 2) + W_META];
      if ((meta & KEY_MASK) !== n) continue;
      const buf = this.#buf;
      const off = this.#off + ((meta & TTL_BIT) !== 0 ? TTL_HEADER : HEADER);
      let j = 0;
      while (j < n && buf[off + j] === key[j]) j++;
      if (j === n) return i;
    }
  }

  #place(t: Int32Array, shift: number, hash: number, addr: number): number {
    const mask = (t.length / SLOT) - 1;
    let i = Math.imul(hash, 0x9e3779b1) >>> shift;
    while (t[i * SLOT] !== 0) i = (i + 1) & mask;
    t[i * SLOT] = hash;
    t[i * SLOT + 1] = addr;
    return i;
  }

  #grow(): void {
    const old = this.#table;
    const t = new Int32Array(old.length * 2);
    const shift = this.#shift - 1;
    for (let at = 0; at < old.length; at += SLOT) {
      if (old[at] !== 0) this.#place(t, shift, old[at], old[at + 1]);
    }
    this.#table = t;
    this.#shift = shift;
  }

  /** A random occupied slot; the table must hold a key. */
  #randomSlot(): number {
    const t = this.#table;
    const slots = t.length / SLOT;
    let i = Math.floor(Math.random() * slots);
    while (t[i * SLOT] === 0) i = (i + 1) & (slots - 1);
    return i;
  }

  /** Removes the key whose record is at `addr` (it must be stored). */
  #removeRecord(addr: number, reason: RemoveReason): void {
    this.#at(addr);
    const meta = this.#words[(this.#off >>> 2) + W_META];
    const keyAt = this.#off + ((meta & TTL_BIT) !== 0 ? TTL_HEADER : HEADER);
    const key = this.#buf.subarray(keyAt, keyAt + (meta & KEY_MASK));
    const slot = this.#findBytes(key, hashBytes(key, 0, key.length));
    if (slot >= 0) this.#remove(slot, reason);
  }

  /** Removes the key in `slot` from every structure and frees its record. */
  #remove(slot: number, reason: RemoveReason): void {
    const t = this.#table;
    const addr = t[slot * SLOT + 1];
    this.#at(addr);
    const w = this.#words;
    const i = this.#off >>> 2;
    const meta = w[i + W_META];
    const keyLen = meta & KEY_MASK;
    const keyAt = this.#off + ((meta & TTL_BIT) !== 0 ? TTL_HEADER : HEADER);
    const key = this.#buf.subarray(keyAt, keyAt + keyLen);
    this.#bytes -= keyLen + w[i + W_VLEN];
    if ((meta & TTL_BIT) !== 0) this.#ttlCount--;
    if (reason === "expire") this.#expired++;
    else if (reason === "evict") this.#evicted++;
    if (this.observer !== null) this.observer.removed(key, reason);
    this.#tree.delete(key);
    this.#free(addr);
    this.#count--;
    // Backward-shift deletion: later slots of the same probe run move up so
    // that no lookup stops early at the hole.
    const mask = (t.length / SLOT) - 1;
    let hole = slot;
    for (let j = (slot + 1) & mask; t[j * SLOT] !== 0; j = (j + 1) & mask) {
      const home = Math.imul(t[j * SLOT], 0x9e3779b1) >>> this.#shift;
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      t[hole * SLOT] = t[j * SLOT];
      t[hole * SLOT + 1] = t[j * SLOT + 1];
      hole = j;
    }
    t[hole * SLOT] = 0;
    t[hole * SLOT + 1] = 0;
  }

  // --- expiry and eviction ---------------------------------------------------

  /** Advances the LRU clock (seconds, 16 bits) and returns the time. */
  #tick(): number {
    const now = this.#now();
    this.#clock = Math.floor(now / 1000) & 0xffff;
    return now;
  }

  /** Records a new TTL entry for the record at `addr`. */
  #track(expiresAt: number, addr: number): void {
    this.#ttlCount++;
    if (this.#heap.length >= 2 * this.#ttlCount + HEAP_SLACK) this.#rebuildHeap();
    else this.#heap.push(expiresAt, addr);
  }

  /** Drops every stale entry: refills the heap from the table. */
  #rebuildHeap(): void {
    const ats = new Float64Array(this.#ttlCount);
    const addrs = new Int32Array(this.#ttlCount);
    let n = 0;
    const t = this.#table;
    for (let at = 0; at < t.length && n < ats.length; at += SLOT) {
      if (t[at] === 0) continue;
      this.#at(t[at + 1]);
      const expiresAt = this.#expiry();
      if (expiresAt === 0) continue;
      ats[n] = expiresAt;
      addrs[n++] = t[at + 1];
    }
    this.#heap.rebuild(ats, addrs, n);
  }

  /**
   * The slot of the key whose record is at `addr` if that record is stored
   * and expires at `at`; else -1 (a stale heap entry: the key is gone,
   * moved, or has another expiry, and the chunk may hold anything).
   */
  #liveTtl(addr: number, at: number): number {
    let room: number;
    if (addr >= 0) {
      room = this.#slab.chunkAt(addr);
      if (room === 0) return -1;
    } else {
      const big = this.#large[-2 - addr];
      if (big === undefined) return -1;
      room = big.length;
    }
    this.#at(addr);
    const meta = this.#words[(this.#off >>> 2) + W_META];
    const keyLen = meta & KEY_MASK;
    if ((meta & TTL_BIT) === 0 || TTL_HEADER + keyLen > room || this.#expiry() !== at) return -1;
    const keyAt = this.#off + TTL_HEADER;
    const key = this.#buf.subarray(keyAt, keyAt + keyLen);
    const slot = this.#findBytes(key, hashBytes(key, 0, keyLen));
    return slot >= 0 && this.#table[slot * SLOT + 1] === addr ? slot : -1;
  }

  /**
   * Evicts keys by the policy until `need` more bytes fit under the cap,
   * never the key at `keep`; throws StoreFullError when they cannot.
   * Expired keys go first (a short sweep), as they cost nobody anything.
   */
  #makeRoom(need: number, keep: number): void {
    if (this.usedMemory + need <= this.#cap) return;
    this.sweep(EVICTION_SAMPLES * 4);
    while (this.usedMemory + need > this.#cap) {
      const slot = this.#policy === "noeviction" ? -1 : this.#victim(keep);
      if (slot < 0) {
        throw new StoreFullError(
          `Store write: ${need} more bytes would pass the shard's memory cap of ${this.#cap} (${this.#policy})`,
        );
      }
      this.#remove(slot, "evict");
    }
  }

  /**
   * The slot of the key to evict, or -1 when none may go. LRU is Redis's
   * approximation (without its candidate pool): of a few keys sampled at
   * random, the one idle longest by a 16-bit seconds clock in its record.
   * An exact LRU list would cost two links a key (8 bytes, and a write to
   * two other records on every read); sampling 5 keys finds a key among
   * the oldest few percent, which is what a cache needs.
   */
  #victim(keep: number): number {
    const t = this.#table;
    const policy = this.#policy;
    if (policy === "volatile-lru") return this.#volatileVictim(keep);
    const others = this.#count - (keep === -1 ? 0 : 1);
    if (others <= 0) return -1;
    const samples = policy === "allkeys-random" ? 1 : EVICTION_SAMPLES;
    let best = -1;
    let bestIdle = -1;
    for (let n = 0; n < samples || best < 0; n++) {
      const slot = this.#randomSlot();
      if (t[slot * SLOT + 1] === keep) continue;
      this.#at(t[slot * SLOT + 1]);
      const idle = (this.#clock - (this.#words[(this.#off >>> 2) + W_META] >>> 16)) & 0xffff;
      if (idle > bestIdle) {
        best = slot;
        bestIdle = idle;
      }
    }
    return best;
  }

  /** Like {@link #victim}, sampling keys with a TTL, from the heap. */
  #volatileVictim(keep: number): number {
    for (let round = 0; round < 2; round++) {
      const heap = this.#heap;
      let best = -1;
      let bestIdle = -1;
      for (let n = 0; n < EVICTION_SAMPLES * 4 && heap.length > 0; n++) {
        const i = Math.floor(Math.random() * heap.length);
        const addr = heap.addrAt(i);
        if (addr === keep) continue;
        const slot = this.#liveTtl(addr, heap.atAt(i));
        if (slot < 0) continue;
        const idle = (this.#clock - (this.#words[(this.#off >>> 2) + W_META] >>> 16)) & 0xffff;
        if (idle > bestIdle) {
          best = slot;
          bestIdle = idle;
        }
        if (n >= EVICTION_SAMPLES) break;
      }
      if (best >= 0) return best;
      // Mostly stale entries, or none: rebuild once and try again.
      if (this.#ttlCount === 0) return -1;
      this.#rebuildHeap();
    }
    return -1;
  }
}
