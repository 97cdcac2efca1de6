/**
 * One shard of the evkv key-value store.
 *
 * A `ShardStore` is owned by exactly one task worker, so it has no locking and
 * assumes single-threaded access. Lookups go through a hash table keyed by the
 * key's bytes, so a Get never builds a string: in the served path that
 * string (and `Map`'s hashing of it) cost more than the rest of the request
 * (see `bench/results`). Each key is also held once as a "binary string" (one
 * UTF-16 code unit per byte), made when the key is first stored: JS string
 * comparison then coincides with unsigned byte (memcmp) order, which keeps
 * the sorted index for scans simple.
 *
 * @module
 */
import { crc32Of } from "../protocol/crc32.ts";
import { readU32, writeU32 } from "../protocol/frame.ts";
import { hashBytes } from "./route.ts";
import { MAX_SLAB_RECORD, PAGE_BYTES, Slab } from "./slab.ts";

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
 * `noeviction` policy; nothing was written.
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
export class StoreFullError extends Error {
  /**
   * @param message What could not be stored.
   *
   * @example
   * ```ts
   * throw new StoreFullError("Store put: the shard is at its memory cap");
   * ```
   */
  constructor(message = "Store write: used memory is at the cap (maxmemory)") {
    super(message);
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

/** A TTL waiting in the heap; stale once the key is gone or got another expiry. */
interface HeapItem {
  key: string;
  expiresAt: number;
}

/** Int32 fields per table slot: hash (0 = empty), record address, key length, value length. */
const SLOT = 4;
const HASH = 0;
const ADDR = 1;
const KEY_LEN = 2;
const VALUE_LEN = 3;
/** Slots in a new table; it doubles past 3/4 full. */
const INITIAL_SLOTS = 1024;
/**
 * A record starts with its expiry (float64) and its value's CRC-32, then
 * the key, then the value.
 */
const CRC_AT = 8;
const RECORD_HEADER = 12;
const PAGE_MASK = PAGE_BYTES - 1;
const CACHE_LINE = 64;
/** {@link ShardStore.prefetch}'s slot offsets, reused (one thread per store). */
let prefetchSlots = new Int32Array(64);
const PAGE_SHIFT = Math.log2(PAGE_BYTES);

/** A table's stored form of a hash: nonzero, since 0 marks an empty slot. */
const stored = (hash: number) => (hash | 0) || 1;

/**
 * Stale heap items beyond this slack (on top of 2x the live TTL count)
 * trigger a rebuild, keeping the heap bounded under repeated re-puts.
 */
const HEAP_SLACK = 64;

/**
 * A single-threaded, ordered, in-memory key-value shard with optional TTLs.
 *
 * Expired entries behave exactly like missing ones; they are removed lazily
 * when touched and actively via {@linkcode ShardStore.sweep}.
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
   * a hash match, so a Get costs about two cache misses: the slot and the
   * record (key and value side by side).
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
  /** Bigger records, one buffer each; the table holds ~index as the address. */
  #large: (Uint8Array | undefined)[] = [];
  #largeFree: number[] = [];
  /** All stored keys in ascending order, so scans never need to sort. */
  #sorted: string[] = [];
  #bytes = 0;
  /** Number of stored entries carrying a TTL; sizes the heap rebuild bound. */
  #ttlCount = 0;
  /**
   * Min-heap by expiry. Items are not removed when a key is deleted or
   * re-put; an item is valid only while the map still holds that key with the
   * same `expiresAt`, so stale items are skipped on pop.
   */
  #heap: HeapItem[] = [];
  /** Keys removed because they expired, since the store was made. */
  #expired = 0;
  /** Keys removed to make room under the memory cap, since the store was made. */
  #evicted = 0;

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
   *
   * @example
   * ```ts
   * let t = 0;
   * const store = new ShardStore(() => t);
   * ```
   */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Number of stored keys. May include expired keys that have not been swept
   * or touched yet, so it can lag behind the live count.
   *
   * @example
   * ```ts
   * new ShardStore().size; // 0
   * ```
   */
  get size(): number {
    return this.#sorted.length;
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
   * Bytes the shard's data takes: record pages and large records, the hash
   * table, the ordered index and the TTL structures (Redis's `used_memory`
   * for one shard).
   *
   * @example
   * ```ts
   * new ShardStore().usedMemory > 0; // true: the empty table
   * ```
   */
  get usedMemory(): number {
    let large = 0;
    for (const r of this.#large) if (r !== undefined) large += r.byteLength;
    // A key string costs a header (16 B) plus its bytes; a slot in an array 8 B.
    return this.#slab.pageBytes + large + this.#table.byteLength +
      this.#sorted.length * 8 + this.#bytes + this.#sorted.length * 16 +
      this.#heap.length * 40;
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
    return slot < 0 ? undefined : this.#value(slot);
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
    const value = this.#value(slot);
    const record = this.#bytesAt(this.#table[slot * SLOT + ADDR]);
    return { value, crc: readU32(record, this.#offset + CRC_AT) };
  }

  /** The slot of `key` if it is stored and not expired (an expired one is deleted), else -1. */
  #findLive(key: Uint8Array): number {
    const slot = this.#findBytes(key, hashBytes(key, 0, key.length));
    if (slot < 0) return -1;
    const expiresAt = this.#expiresAt(slot);
    if (expiresAt !== 0 && expiresAt <= this.#now()) {
      this.#remove(slot, null, -1, "expire");
      return -1;
    }
    return slot;
  }

  /**
   * Stores a copy of `value` under `key`. The copy matters because callers
   * pass views into shared ring memory that is overwritten later.
   *
   * @param ttlMs Time to live in ms; `0` (or any non-positive or non-finite
   *   value) means no expiry, and also clears a previous TTL.
   * @returns `true` iff a live (non-expired) value was replaced.
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
      this.#remove(slot, null, -1, "expire");
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
    const slot = this.#findLive(key);
    return slot < 0 ? undefined : this.#expiresAt(slot);
  }

  /**
   * Sets (`expiresAt` in the future) or clears (`0`) a live key's expiry;
   * a time already past deletes the key (reported to the observer as
   * `"expire"`).
   *
   * @returns `false` iff the key is missing or expired (nothing changes).
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
      this.#remove(slot, null, -1, "expire");
      return true;
    }
    const old = this.#expiresAt(slot);
    this.#setExpiresAt(slot, expiresAt);
    if (old !== 0) this.#ttlCount--;
    if (expiresAt !== 0) this.#track(keyToString(key), expiresAt);
    if (this.observer !== null) this.observer.stored(key, this.#value(slot), expiresAt);
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
    while (this.size > 0) {
      const t = this.#table;
      const slots = t.length / SLOT;
      let i = Math.floor(Math.random() * slots);
      while (t[i * SLOT + HASH] === 0) i = (i + 1) & (slots - 1);
      const at = i * SLOT;
      const expiresAt = this.#expiresAt(i);
      if (expiresAt !== 0 && expiresAt <= this.#now()) {
        this.#remove(i, null, -1, "expire");
        continue;
      }
      const bytes = this.#bytesAt(t[at + ADDR]);
      const off = this.#offset + RECORD_HEADER;
      return bytes.slice(off, off + t[at + KEY_LEN]);
    }
    return undefined;
  }

  /** Stores `value` under `key` with absolute expiry `expiresAt` (0 = none, else in the future). */
  #write(key: Uint8Array, value: Uint8Array, expiresAt: number): boolean {
    const hash = hashBytes(key, 0, key.length);
    const hasTtl = expiresAt !== 0;
    const slot = this.#findBytes(key, hash);
    const old = slot < 0 ? 0 : this.#expiresAt(slot);
    const now = old !== 0 ? this.#now() : 0;
    const t = this.#table;
    const keyLen = key.length;

    if (slot >= 0) {
      const at = slot * SLOT;
      const replaced = old === 0 || old > now;
      if (!replaced) this.#expired++;
      const prevLen = t[at + VALUE_LEN];
      const prevSize = RECORD_HEADER + keyLen + prevLen;
      const size = RECORD_HEADER + keyLen + value.length;
      if (!this.#fitsInPlace(t[at + ADDR], prevSize, size)) {
        const from = this.#bytesAt(t[at + ADDR]);
        const keyAt = this.#offset + RECORD_HEADER;
        const addr = this.#allocRecord(size);
        const to = this.#bytesAt(addr);
        to.set(from.subarray(keyAt, keyAt + keyLen), this.#offset + RECORD_HEADER);
        this.#freeRecord(t[at + ADDR], prevSize);
        t[at + ADDR] = addr;
      }
      t[at + VALUE_LEN] = value.length;
      const bytes = this.#bytesAt(t[at + ADDR]);
      this.#setValue(bytes, this.#offset, keyLen, value);
      this.#setExpiresAt(slot, expiresAt);
      this.#bytes += value.length - prevLen;
      if (old !== 0) this.#ttlCount--;
      if (hasTtl) this.#track(keyToString(key), expiresAt);
      if (this.observer !== null) this.observer.stored(key, value, expiresAt);
      return replaced;
    }

    const size = RECORD_HEADER + keyLen + value.length;
    const addr = this.#allocRecord(size);
    const bytes = this.#bytesAt(addr);
    const off = this.#offset;
    bytes.set(key, off + RECORD_HEADER);
    this.#setValue(bytes, off, keyLen, value);
    const k = keyToString(key);
    this.#sorted.splice(this.#lowerBound(k), 0, k);
    this.#setExpiresAt(this.#insert(stored(hash), addr, keyLen, value.length), expiresAt);
    this.#bytes += keyLen + value.length;
    if (hasTtl) this.#track(k, expiresAt);
    if (this.observer !== null) this.observer.stored(key, value, expiresAt);
    return false;
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
    const expiresAt = this.#expiresAt(slot);
    const live = expiresAt === 0 || expiresAt > this.#now();
    this.#remove(slot, null, -1, live ? "delete" : "expire");
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
    const prefix = keyToString(opts.prefix);
    const limit = opts.limit > 0 ? opts.limit : 1000;
    const maxBytes = opts.maxBytes;
    const now = this.#ttlCount > 0 ? this.#now() : 0;

    // Every key with the prefix is >= prefix, so the first candidate is the
    // later of "first key >= prefix" and "first key > startAfter".
    let i = this.#lowerBound(prefix);
    if (opts.startAfter.length > 0) {
      const j = this.#upperBound(keyToString(opts.startAfter));
      if (j > i) i = j;
    }

    const entries: ScanEntry[] = [];
    let total = 0;
    const sorted = this.#sorted;
    while (i < sorted.length) {
      const k = sorted[i];
      if (!k.startsWith(prefix)) break;
      const key = stringToKey(k);
      const slot = this.#findBytes(key, hashBytes(key, 0, key.length));
      const expiresAt = this.#expiresAt(slot);
      if (expiresAt !== 0 && expiresAt <= now) {
        // Removing at i shifts the next key into slot i, so do not advance.
        this.#remove(slot, k, i, "expire");
        continue;
      }
      const size = k.length + this.#table[slot * SLOT + VALUE_LEN];
      if (
        entries.length >= limit ||
        (entries.length > 0 && total + size > maxBytes)
      ) {
        // k is live and has the prefix, so `more` is exact here.
        return { entries, more: true };
      }
      entries.push({ key, value: this.#value(slot) });
      total += size;
      i++;
    }
    return { entries, more: false };
  }

  /**
   * Active expiry: inspects up to `maxChecks` of the soonest-expiring TTL
   * records and deletes the expired keys among them. Stops early once the
   * soonest remaining record is not yet due.
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
    const heap = this.#heap;
    if (heap.length === 0 || !(maxChecks > 0)) return 0;
    const now = this.#now();
    let deleted = 0;
    for (let checks = 0; checks < maxChecks && heap.length > 0; checks++) {
      const top = heap[0];
      const slot = this.#findString(top.key);
      if (slot < 0 || this.#expiresAt(slot) !== top.expiresAt) {
        this.#heapPop();
        continue;
      }
      if (top.expiresAt > now) break;
      this.#heapPop();
      this.#remove(slot, top.key, -1, "expire");
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
    while (heap.length > 0) {
      const top = heap[0];
      const slot = this.#findString(top.key);
      if (slot >= 0 && this.#expiresAt(slot) === top.expiresAt) {
        const d = top.expiresAt - this.#now();
        return d > 0 ? d : 0;
      }
      this.#heapPop();
    }
    return Infinity;
  }

  /**
   * Removes every entry.
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
    this.#largeFree = [];
    this.#sorted = [];
    this.#heap = [];
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
    for (let i = 0; i < n; i++) sum += t[at[i] + HASH];
    const pages = this.#slab.pages;
    for (let i = 0; i < n; i++) {
      const slot = at[i];
      const addr = t[slot + ADDR];
      // Empty slots and records with their own buffer are left alone.
      if (t[slot + HASH] === 0 || addr < 0) continue;
      const page = pages[addr >>> PAGE_SHIFT];
      const off = addr & PAGE_MASK;
      sum += page[off];
      // A chunk never crosses its page, so the record's second line is in it.
      if (RECORD_HEADER + t[slot + KEY_LEN] + t[slot + VALUE_LEN] > CACHE_LINE) {
        sum += page[off + CACHE_LINE];
      }
    }
    return sum;
  }

  /** The slot holding `key` (whose hashBytes is `hash`), expired or not; -1 if none. */
  #findBytes(key: Uint8Array, hash: number): number {
    const t = this.#table;
    const want = stored(hash);
    const mask = (t.length / SLOT) - 1;
    const n = key.length;
    for (let i = Math.imul(want, 0x9e3779b1) >>> this.#shift;; i = (i + 1) & mask) {
      const at = i * SLOT;
      const h = t[at + HASH];
      if (h === 0) return -1;
      if (h !== want || t[at + KEY_LEN] !== n) continue;
      const bytes = this.#bytesAt(t[at + ADDR]);
      const off = this.#offset + RECORD_HEADER;
      let j = 0;
      while (j < n && bytes[off + j] === key[j]) j++;
      if (j === n) return i;
    }
  }

  /** The slot holding the key that binary string `k` spells; -1 if none. */
  #findString(k: string): number {
    const key = stringToKey(k);
    return this.#findBytes(key, hashBytes(key, 0, key.length));
  }

  /** Where the last {@link #bytesAt} record starts in the buffer it returned. */
  #offset = 0;

  /**
   * The buffer that holds the record at `addr`; the record starts at
   * {@link #offset} in it. Two results without an allocation per call.
   */
  #bytesAt(addr: number): Uint8Array {
    if (addr >= 0) {
      this.#offset = addr & PAGE_MASK;
      return this.#slab.pages[addr >>> PAGE_SHIFT];
    }
    this.#offset = 0;
    return this.#large[~addr]!;
  }

  #expiresAt(slot: number): number {
    const addr = this.#table[slot * SLOT + ADDR];
    if (addr >= 0) return this.#slab.expiries[addr >>> PAGE_SHIFT][(addr & PAGE_MASK) >>> 3];
    const big = this.#large[~addr]!;
    return new Float64Array(big.buffer, 0, 1)[0];
  }

  #setExpiresAt(slot: number, expiresAt: number): void {
    const addr = this.#table[slot * SLOT + ADDR];
    if (addr >= 0) this.#slab.expiries[addr >>> PAGE_SHIFT][(addr & PAGE_MASK) >>> 3] = expiresAt;
    else new Float64Array(this.#large[~addr]!.buffer, 0, 1)[0] = expiresAt;
  }

  /**
   * Copies `value` into the record at `bytes[off]` (whose key is `keyLen`
   * bytes) with its CRC-32, computed from the copy: what a Get reply later
   * derives its checksum from is what the record holds.
   */
  #setValue(bytes: Uint8Array, off: number, keyLen: number, value: Uint8Array): void {
    const start = off + RECORD_HEADER + keyLen;
    bytes.set(value, start);
    writeU32(bytes, off + CRC_AT, crc32Of(bytes, start, start + value.length));
  }

  /** A view of the value in `slot`'s record, valid until the store changes. */
  #value(slot: number): Uint8Array {
    const at = slot * SLOT;
    const t = this.#table;
    const bytes = this.#bytesAt(t[at + ADDR]);
    const start = this.#offset + RECORD_HEADER + t[at + KEY_LEN];
    return bytes.subarray(start, start + t[at + VALUE_LEN]);
  }

  #allocRecord(size: number): number {
    if (size <= MAX_SLAB_RECORD) return this.#slab.alloc(size);
    const index = this.#largeFree.length > 0 ? this.#largeFree.pop()! : this.#large.length;
    this.#large[index] = new Uint8Array(size);
    return ~index;
  }

  #freeRecord(addr: number, size: number): void {
    if (addr >= 0) this.#slab.free(addr, size);
    else {
      this.#large[~addr] = undefined;
      this.#largeFree.push(~addr);
    }
  }

  /** True iff a record growing or shrinking from `prev` to `next` bytes can stay at `addr`. */
  #fitsInPlace(addr: number, prev: number, next: number): boolean {
    if (addr < 0) return next === prev;
    return next <= MAX_SLAB_RECORD && Slab.sameChunk(prev, next);
  }

  /**
   * Adds a key that is not in the table (but already in #sorted, which
   * counts it), doubling the table past 3/4 full; returns its slot.
   */
  #insert(hash: number, addr: number, keyLen: number, valueLen: number): number {
    if (this.#sorted.length * 4 > (this.#table.length / SLOT) * 3) this.#grow();
    return this.#place(this.#table, this.#shift, hash, addr, keyLen, valueLen);
  }

  #place(
    t: Int32Array,
    shift: number,
    hash: number,
    addr: number,
    keyLen: number,
    valueLen: number,
  ): number {
    const mask = (t.length / SLOT) - 1;
    let i = Math.imul(hash, 0x9e3779b1) >>> shift;
    while (t[i * SLOT + HASH] !== 0) i = (i + 1) & mask;
    const at = i * SLOT;
    t[at + HASH] = hash;
    t[at + ADDR] = addr;
    t[at + KEY_LEN] = keyLen;
    t[at + VALUE_LEN] = valueLen;
    return i;
  }

  #grow(): void {
    const old = this.#table;
    const t = new Int32Array(old.length * 2);
    const shift = this.#shift - 1;
    for (let at = 0; at < old.length; at += SLOT) {
      if (old[at + HASH] === 0) continue;
      this.#place(t, shift, old[at + HASH], old[at + ADDR], old[at + KEY_LEN], old[at + VALUE_LEN]);
    }
    this.#table = t;
    this.#shift = shift;
  }

  /**
   * Removes the key in `slot`. `k` is its binary string if the caller has
   * it, and `index` its place in #sorted, or -1 if unknown.
   */
  #remove(slot: number, k: string | null, index: number, reason: RemoveReason): void {
    const t = this.#table;
    const at = slot * SLOT;
    const keyLen = t[at + KEY_LEN];
    const valueLen = t[at + VALUE_LEN];
    if (reason === "expire") this.#expired++;
    if (this.observer !== null) {
      const bytes = this.#bytesAt(t[at + ADDR]);
      const off = this.#offset + RECORD_HEADER;
      this.observer.removed(bytes.subarray(off, off + keyLen), reason);
    }
    if (index < 0) {
      if (k === null) {
        const bytes = this.#bytesAt(t[at + ADDR]);
        const off = this.#offset + RECORD_HEADER;
        k = keyToString(bytes.subarray(off, off + keyLen));
      }
      index = this.#lowerBound(k);
    }
    this.#sorted.splice(index, 1);
    if (this.#expiresAt(slot) !== 0) this.#ttlCount--;
    this.#freeRecord(t[at + ADDR], RECORD_HEADER + keyLen + valueLen);
    this.#bytes -= keyLen + valueLen;
    // Backward-shift deletion: later slots of the same probe run move up so
    // that no lookup stops early at the hole.
    const mask = (t.length / SLOT) - 1;
    let hole = slot;
    for (let i = (slot + 1) & mask; t[i * SLOT + HASH] !== 0; i = (i + 1) & mask) {
      const home = Math.imul(t[i * SLOT + HASH], 0x9e3779b1) >>> this.#shift;
      // Move i into the hole unless its home lies cyclically in (hole, i].
      const stays = hole <= i ? hole < home && home <= i : hole < home || home <= i;
      if (stays) continue;
      t.copyWithin(hole * SLOT, i * SLOT, i * SLOT + SLOT);
      hole = i;
    }
    t.fill(0, hole * SLOT, hole * SLOT + SLOT);
  }

  /** First index whose key is >= k. */
  #lowerBound(k: string): number {
    const a = this.#sorted;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] < k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First index whose key is > k. */
  #upperBound(k: string): number {
    const a = this.#sorted;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] <= k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Records a new TTL for k, which must already be stored with it. */
  #track(k: string, expiresAt: number): void {
    this.#ttlCount++;
    if (this.#heap.length >= 2 * this.#ttlCount + HEAP_SLACK) {
      this.#rebuildHeap();
    } else {
      this.#heapPush({ key: k, expiresAt });
    }
  }

  /** Drops all stale items; called when they outnumber live TTLs. */
  #rebuildHeap(): void {
    const heap: HeapItem[] = [];
    for (const key of this.#sorted) {
      const expiresAt = this.#expiresAt(this.#findString(key));
      if (expiresAt !== 0) heap.push({ key, expiresAt });
    }
    this.#heap = heap;
    for (let i = (heap.length >>> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  #heapPush(item: HeapItem): void {
    const heap = this.#heap;
    let i = heap.length;
    heap.push(item);
    while (i > 0) {
      const p = (i - 1) >>> 1;
      if (heap[p].expiresAt <= item.expiresAt) break;
      heap[i] = heap[p];
      i = p;
    }
    heap[i] = item;
  }

  #heapPop(): void {
    const heap = this.#heap;
    const last = heap.pop() as HeapItem;
    if (heap.length === 0) return;
    heap[0] = last;
    this.#siftDown(0);
  }

  #siftDown(start: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const item = heap[start];
    let i = start;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && heap[c + 1].expiresAt < heap[c].expiresAt) c++;
      if (heap[c].expiresAt >= item.expiresAt) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = item;
  }
}
