/**
 * The expiry index of a shard: a binary min-heap of (expiry, record address)
 * pairs in two typed arrays, 12 bytes an entry and no object or string per
 * key. Entries are never updated in place: a key whose record moves or whose
 * expiry changes gets a new entry, and the old one is found stale when it
 * reaches the top (its record no longer carries that key with that expiry),
 * which the owner checks. The owner rebuilds the heap when stale entries
 * could outnumber live ones, so it stays within 2x the keys with a TTL.
 *
 * Why a heap, when Redis samples keys with a TTL at random
 * (activeExpireCycle): the soonest expiry is always at the top, so a sweep
 * frees exactly the keys that are due and stops at the first that is not,
 * with work bounded per call, and it can say when the next one is due.
 *
 * @module
 */

/**
 * A min-heap of expiries with an int32 payload.
 *
 * @example
 * ```ts
 * const heap = new TtlHeap();
 * heap.push(2000, 7);
 * heap.push(1000, 9);
 * heap.topAddr; // 9
 * ```
 */
export class TtlHeap {
  #at = new Float64Array(64);
  #addr = new Int32Array(64);
  #n = 0;

  /**
   * Entries, stale ones included.
   *
   * @example
   * ```ts
   * new TtlHeap().length; // 0
   * ```
   */
  get length(): number {
    return this.#n;
  }

  /**
   * Bytes of the arrays.
   *
   * @example
   * ```ts
   * new TtlHeap().bytes; // 768
   * ```
   */
  get bytes(): number {
    return this.#at.byteLength + this.#addr.byteLength;
  }

  /**
   * The soonest expiry (`Infinity` when empty).
   *
   * @example
   * ```ts
   * new TtlHeap().topAt; // Infinity
   * ```
   */
  get topAt(): number {
    return this.#n === 0 ? Infinity : this.#at[0];
  }

  /**
   * The address paired with the soonest expiry (-1 when empty).
   *
   * @example
   * ```ts
   * new TtlHeap().topAddr; // -1
   * ```
   */
  get topAddr(): number {
    return this.#n === 0 ? -1 : this.#addr[0];
  }

  /**
   * The address of entry `i` (0 <= i < length), in no particular order: for
   * sampling keys with a TTL at random.
   *
   * @example
   * ```ts
   * const heap = new TtlHeap();
   * heap.push(1, 5);
   * heap.addrAt(0); // 5
   * ```
   */
  addrAt(i: number): number {
    return this.#addr[i];
  }

  /**
   * The expiry of entry `i` (0 <= i < length).
   *
   * @example
   * ```ts
   * const heap = new TtlHeap();
   * heap.push(1, 5);
   * heap.atAt(0); // 1
   * ```
   */
  atAt(i: number): number {
    return this.#at[i];
  }

  /**
   * Adds an entry.
   *
   * @example
   * ```ts
   * new TtlHeap().push(1000, 3);
   * ```
   */
  push(at: number, addr: number): void {
    if (this.#n === this.#at.length) this.#grow();
    const A = this.#at;
    const R = this.#addr;
    let i = this.#n++;
    while (i > 0) {
      const p = (i - 1) >>> 1;
      if (A[p] <= at) break;
      A[i] = A[p];
      R[i] = R[p];
      i = p;
    }
    A[i] = at;
    R[i] = addr;
  }

  /**
   * Removes the soonest entry.
   *
   * @example
   * ```ts
   * const heap = new TtlHeap();
   * heap.push(1000, 3);
   * heap.pop();
   * heap.length; // 0
   * ```
   */
  pop(): void {
    if (this.#n === 0) return;
    const n = --this.#n;
    if (n === 0) return;
    this.#siftDown(0, this.#at[n], this.#addr[n]);
  }

  /**
   * Removes every entry and lets go of the memory.
   *
   * @example
   * ```ts
   * new TtlHeap().clear();
   * ```
   */
  clear(): void {
    this.#at = new Float64Array(64);
    this.#addr = new Int32Array(64);
    this.#n = 0;
  }

  /**
   * Replaces the entries with `count` pairs from `ats`/`addrs` and orders
   * them (O(n)): the owner's rebuild after dropping stale entries.
   *
   * @example
   * ```ts
   * const heap = new TtlHeap();
   * heap.rebuild(new Float64Array([3, 1]), new Int32Array([30, 10]), 2);
   * heap.topAddr; // 10
   * ```
   */
  rebuild(ats: Float64Array, addrs: Int32Array, count: number): void {
    const size = Math.max(64, count + (count >>> 1));
    this.#at = new Float64Array(size);
    this.#addr = new Int32Array(size);
    this.#at.set(ats.subarray(0, count));
    this.#addr.set(addrs.subarray(0, count));
    this.#n = count;
    for (let i = (count >>> 1) - 1; i >= 0; i--) this.#siftDown(i, this.#at[i], this.#addr[i]);
  }

  #siftDown(start: number, at: number, addr: number): void {
    const A = this.#at;
    const R = this.#addr;
    const n = this.#n;
    let i = start;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && A[c + 1] < A[c]) c++;
      if (A[c] >= at) break;
      A[i] = A[c];
      R[i] = R[c];
      i = c;
    }
    A[i] = at;
    R[i] = addr;
  }

  #grow(): void {
    const at = new Float64Array(this.#at.length * 2);
    const addr = new Int32Array(this.#addr.length * 2);
    at.set(this.#at);
    addr.set(this.#addr);
    this.#at = at;
    this.#addr = addr;
  }
}
