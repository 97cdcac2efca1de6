/**
 * The persistence worker's table of pending changes: the last change of
 * each key since the previous commit, so that a key written a thousand
 * times in a second costs one row write. It is a hash table over typed
 * arrays with keys and values copied into one growing arena, because a
 * `Map` of strings to fresh copies cost the worker about a microsecond per
 * change, and on a busy 2-core machine that time comes out of the serving
 * threads.
 *
 * @module
 */
import { hashBytes } from "../kv/route.ts";

const EMPTY = -1;
const INITIAL_ENTRIES = 4096;

/** Pending changes, at most one per key. */
export class Coalescer {
  /** Key and value bytes. */
  #arena = new Uint8Array(1 << 20);
  #used = 0;
  /** Open addressing: entry index per slot, EMPTY when free. */
  #slots = new Int32Array(INITIAL_ENTRIES * 2).fill(EMPTY);
  #hash = new Int32Array(INITIAL_ENTRIES);
  #keyAt = new Int32Array(INITIAL_ENTRIES);
  #keyLen = new Int32Array(INITIAL_ENTRIES);
  #valueAt = new Int32Array(INITIAL_ENTRIES);
  /** Value length, or -1 for a delete. */
  #valueLen = new Int32Array(INITIAL_ENTRIES);
  /** Bytes reserved for the value in the arena (reused by a shorter or equal value). */
  #valueRoom = new Int32Array(INITIAL_ENTRIES);
  #expiresAt = new Float64Array(INITIAL_ENTRIES);
  /** Entries in use. */
  size = 0;
  /** Key and value bytes held. */
  get bytes(): number {
    return this.#used;
  }

  /**
   * Records that `src[keyAt, keyAt + keyLen)` now holds `src[valueAt,
   * valueAt + valueLen)` until `expiresAt`, or is deleted (`valueLen` -1).
   */
  set(
    src: Uint8Array,
    keyAt: number,
    keyLen: number,
    valueAt: number,
    valueLen: number,
    expiresAt: number,
  ): void {
    const h = hashBytes(src, keyAt, keyAt + keyLen) | 0;
    const mask = this.#slots.length - 1;
    let s = h & mask;
    for (;;) {
      const e = this.#slots[s];
      if (e === EMPTY) break;
      if (this.#hash[e] === h && this.#keyLen[e] === keyLen && this.#sameKey(e, src, keyAt)) {
        this.#setValue(e, src, valueAt, valueLen, expiresAt);
        return;
      }
      s = (s + 1) & mask;
    }
    if (this.size * 2 >= this.#slots.length) {
      this.#grow();
      this.set(src, keyAt, keyLen, valueAt, valueLen, expiresAt);
      return;
    }
    const e = this.size++;
    this.#slots[s] = e;
    this.#hash[e] = h;
    this.#keyLen[e] = keyLen;
    this.#keyAt[e] = this.#copy(src, keyAt, keyLen);
    this.#valueRoom[e] = 0;
    this.#setValue(e, src, valueAt, valueLen, expiresAt);
  }

  /** Calls `fn` with every pending change: views valid during the call; `value` null for a delete. */
  forEach(fn: (key: Uint8Array, value: Uint8Array | null, expiresAt: number) => void): void {
    const a = this.#arena;
    for (let e = 0; e < this.size; e++) {
      const k = this.#keyAt[e];
      const v = this.#valueAt[e];
      const vl = this.#valueLen[e];
      fn(
        a.subarray(k, k + this.#keyLen[e]),
        vl < 0 ? null : a.subarray(v, v + vl),
        this.#expiresAt[e],
      );
    }
  }

  /** Forgets every pending change. */
  clear(): void {
    if (this.size > 0) this.#slots.fill(EMPTY);
    this.size = 0;
    this.#used = 0;
    // A burst grew the arena; do not keep a huge one for ever.
    if (this.#arena.length > 64 << 20) this.#arena = new Uint8Array(1 << 20);
  }

  #sameKey(e: number, src: Uint8Array, at: number): boolean {
    const a = this.#arena;
    const k = this.#keyAt[e];
    const n = this.#keyLen[e];
    for (let i = 0; i < n; i++) if (a[k + i] !== src[at + i]) return false;
    return true;
  }

  #setValue(e: number, src: Uint8Array, at: number, len: number, expiresAt: number): void {
    this.#expiresAt[e] = expiresAt;
    this.#valueLen[e] = len;
    if (len <= 0) return;
    if (len <= this.#valueRoom[e]) {
      const a = this.#arena;
      const v = this.#valueAt[e];
      if (len <= 256) { for (let i = 0; i < len; i++) a[v + i] = src[at + i]; }
      else a.set(src.subarray(at, at + len), v);
      return;
    }
    this.#valueAt[e] = this.#copy(src, at, len);
    this.#valueRoom[e] = len;
  }

  /** Appends bytes to the arena; returns where. */
  #copy(src: Uint8Array, at: number, len: number): number {
    if (this.#used + len > this.#arena.length) {
      let n = this.#arena.length * 2;
      while (n < this.#used + len) n *= 2;
      const bigger = new Uint8Array(n);
      bigger.set(this.#arena.subarray(0, this.#used));
      this.#arena = bigger;
    }
    const to = this.#used;
    const a = this.#arena;
    if (len <= 256) { for (let i = 0; i < len; i++) a[to + i] = src[at + i]; }
    else a.set(src.subarray(at, at + len), to);
    this.#used += len;
    return to;
  }

  #grow(): void {
    const n = this.#hash.length * 2;
    const grow32 = (a: Int32Array) => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.#hash = grow32(this.#hash);
    this.#keyAt = grow32(this.#keyAt);
    this.#keyLen = grow32(this.#keyLen);
    this.#valueAt = grow32(this.#valueAt);
    this.#valueLen = grow32(this.#valueLen);
    this.#valueRoom = grow32(this.#valueRoom);
    const exp = new Float64Array(n);
    exp.set(this.#expiresAt);
    this.#expiresAt = exp;
    this.#slots = new Int32Array(n * 2).fill(EMPTY);
    const mask = this.#slots.length - 1;
    for (let e = 0; e < this.size; e++) {
      let s = this.#hash[e] & mask;
      while (this.#slots[s] !== EMPTY) s = (s + 1) & mask;
      this.#slots[s] = e;
    }
  }
}
