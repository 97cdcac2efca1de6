/**
 * One shard of the evkv key-value store.
 *
 * A `ShardStore` is owned by exactly one task worker, so it has no locking and
 * assumes single-threaded access. Keys are held as "binary strings" (one UTF-16
 * code unit per byte) because that lets a `Map` index them and makes JS string
 * comparison coincide with unsigned byte (memcmp) order.
 *
 * @module
 */

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
  /** The stored value; callers must not mutate it. */
  value: Uint8Array;
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

interface Entry {
  value: Uint8Array;
  /** Absolute expiry in clock ms; 0 means the entry never expires. */
  expiresAt: number;
}

interface HeapItem {
  key: string;
  expiresAt: number;
}

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
  readonly #map = new Map<string, Entry>();
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
    return this.#map.size;
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
   * Returns the stored value (not a copy), or `undefined` if the key is
   * missing or expired. An expired key found here is deleted.
   *
   * @example
   * ```ts
   * const s = new ShardStore();
   * s.get(new Uint8Array([1])); // undefined
   * ```
   */
  get(key: Uint8Array): Uint8Array | undefined {
    const k = keyToString(key);
    const e = this.#map.get(k);
    if (e === undefined) return undefined;
    if (e.expiresAt !== 0 && e.expiresAt <= this.#now()) {
      this.#remove(k, e, -1);
      return undefined;
    }
    return e.value;
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
    const k = keyToString(key);
    const hasTtl = ttlMs > 0 && Number.isFinite(ttlMs);
    const e = this.#map.get(k);
    let now = 0;
    if (hasTtl || (e !== undefined && e.expiresAt !== 0)) now = this.#now();
    const expiresAt = hasTtl ? now + ttlMs : 0;
    const copy = value.slice();

    if (e !== undefined) {
      const replaced = e.expiresAt === 0 || e.expiresAt > now;
      this.#bytes += copy.length - e.value.length;
      e.value = copy;
      if (e.expiresAt !== 0) this.#ttlCount--;
      e.expiresAt = expiresAt;
      if (hasTtl) this.#track(k, expiresAt);
      return replaced;
    }

    this.#sorted.splice(this.#lowerBound(k), 0, k);
    this.#map.set(k, { value: copy, expiresAt });
    this.#bytes += k.length + copy.length;
    if (hasTtl) this.#track(k, expiresAt);
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
    const k = keyToString(key);
    const e = this.#map.get(k);
    if (e === undefined) return false;
    const live = e.expiresAt === 0 || e.expiresAt > this.#now();
    this.#remove(k, e, -1);
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
      const e = this.#map.get(k) as Entry;
      if (e.expiresAt !== 0 && e.expiresAt <= now) {
        // Removing at i shifts the next key into slot i, so do not advance.
        this.#remove(k, e, i);
        continue;
      }
      const size = k.length + e.value.length;
      if (
        entries.length >= limit ||
        (entries.length > 0 && total + size > maxBytes)
      ) {
        // k is live and has the prefix, so `more` is exact here.
        return { entries, more: true };
      }
      entries.push({ key: stringToKey(k), value: e.value });
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
      const e = this.#map.get(top.key);
      if (e === undefined || e.expiresAt !== top.expiresAt) {
        this.#heapPop();
        continue;
      }
      if (top.expiresAt > now) break;
      this.#heapPop();
      this.#remove(top.key, e, -1);
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
      const e = this.#map.get(top.key);
      if (e !== undefined && e.expiresAt === top.expiresAt) {
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
    this.#map.clear();
    this.#sorted = [];
    this.#heap = [];
    this.#bytes = 0;
    this.#ttlCount = 0;
  }

  /** Removes a stored key; `index` is its slot in #sorted, or -1 if unknown. */
  #remove(k: string, e: Entry, index: number): void {
    const i = index >= 0 ? index : this.#lowerBound(k);
    this.#sorted.splice(i, 1);
    this.#map.delete(k);
    this.#bytes -= k.length + e.value.length;
    if (e.expiresAt !== 0) this.#ttlCount--;
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
    for (const [key, e] of this.#map) {
      if (e.expiresAt !== 0) heap.push({ key, expiresAt: e.expiresAt });
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
