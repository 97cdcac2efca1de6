/**
 * The ordered index of a shard: a B+tree of record references (int32), kept
 * in typed arrays, that never holds a key itself. Comparing a key with an
 * entry asks the owner ({@linkcode RefOrder}) to compare against the key
 * bytes in that entry's record, so each key is stored once, in its record.
 *
 * Why a B+tree (as LMDB keeps its data): it costs 4 bytes an entry plus the
 * slack of nodes about 3/4 full, and finds a key in about log2(n)
 * comparisons that touch only a handful of nodes (one per level, 3 levels
 * at a million keys). A skip list (Redis's sorted sets) costs a pointer
 * array per key and about twice the comparisons, each a cache miss on a
 * node and a record; an adaptive radix tree (ART) needs no comparisons,
 * but its variable-size nodes are objects in JS (or a hand-made allocator),
 * costing more per key than the records it indexes at 16-byte keys;
 * memcached keeps no order at all. See docs/store.md for the measurements.
 *
 * Inner nodes hold, for each child, the reference of the least key in that
 * child's subtree rather than a separator key, so that no key is copied:
 * when a subtree's least key changes (inserted or deleted at the front),
 * the change is written up the path that the operation already walked.
 *
 * @module
 */

/**
 * How a {@linkcode BTree} orders its references: by the key each stands for.
 *
 * @example
 * ```ts
 * const keys = [new Uint8Array([1]), new Uint8Array([2])];
 * const order: RefOrder = { compare: (key, ref) => key[0] - keys[ref][0] };
 * ```
 */
export interface RefOrder {
  /** Negative, 0 or positive as `key` sorts before, equal to or after `ref`'s key. */
  compare(key: Uint8Array, ref: number): number;
}

/** Entries per node, leaf or inner: 64 keeps a binary search in a node to 6 steps. */
const FAN = 64;
/** A node this empty after a delete merges with a sibling when both fit in 3/4 of a node. */
const LOW = FAN >> 2;
const MERGE_MAX = (FAN * 3) >> 2;
/** Leaf: count, next leaf, previous leaf (-1 = none), then FAN refs. */
const LEAF = 3 + FAN;
const L_NEXT = 1;
const L_PREV = 2;
const L_REFS = 3;
/** Inner: count, then FAN children, then FAN least-key refs. */
const INNER = 1 + 2 * FAN;
const I_KIDS = 1;
const I_MINS = 1 + FAN;
/** Tree height bound: FAN^MAX_DEPTH entries is far beyond any 2^31 refs. */
const MAX_DEPTH = 16;

/**
 * A B+tree of int32 references ordered by {@linkcode RefOrder}, for one
 * thread. Keys must be distinct: the caller inserts only what it knows is
 * absent (the store checks its hash table first).
 *
 * @example
 * ```ts
 * const keys: Uint8Array[] = [];
 * const tree = new BTree({
 *   compare: (key, ref) => Buffer.compare(key, keys[ref]),
 * });
 * keys.push(new Uint8Array([5]));
 * tree.insert(keys[0], 0);
 * tree.seek(new Uint8Array(0), false);
 * tree.ref; // 0
 * ```
 */
export class BTree {
  readonly #order: RefOrder;
  #leaves = new Int32Array(LEAF * 4);
  #inner = new Int32Array(INNER * 2);
  /** Nodes handed out so far, and freed ones (a stack threaded through field 1). */
  #leafTop = 0;
  #innerTop = 0;
  #leafFree = -1;
  #innerFree = -1;
  #root: number;
  /** Inner levels above the leaves (0: the root is a leaf). */
  #height = 0;
  #size = 0;
  /** The last descent: inner node and child index per level. */
  readonly #pathNode = new Int32Array(MAX_DEPTH);
  readonly #pathIdx = new Int32Array(MAX_DEPTH);
  /** Whether the last leaf search met an equal key. */
  #eq = false;
  /** The cursor: a leaf and a position in it (-1 leaf = past the end). */
  #curLeaf = -1;
  #curPos = 0;

  /**
   * Makes an empty tree.
   *
   * @param order Compares a key with the key a reference stands for.
   *
   * @example
   * ```ts
   * const tree = new BTree({ compare: () => 0 });
   * tree.size; // 0
   * ```
   */
  constructor(order: RefOrder) {
    this.#order = order;
    this.#root = this.#newLeaf();
  }

  /**
   * Entries in the tree.
   *
   * @example
   * ```ts
   * new BTree({ compare: () => 0 }).size; // 0
   * ```
   */
  get size(): number {
    return this.#size;
  }

  /**
   * Bytes of the node arrays (what the index costs beyond the records).
   *
   * @example
   * ```ts
   * new BTree({ compare: () => 0 }).bytes > 0; // true
   * ```
   */
  get bytes(): number {
    return this.#leaves.byteLength + this.#inner.byteLength;
  }

  /**
   * Adds `ref`, which stands for `key`; `key` must not be in the tree.
   *
   * @example
   * ```ts
   * const keys = [new Uint8Array([1])];
   * const tree = new BTree({ compare: (k, r) => k[0] - keys[r][0] });
   * tree.insert(keys[0], 0);
   * tree.size; // 1
   * ```
   */
  insert(key: Uint8Array, ref: number): void {
    const leaf = this.#descend(key);
    const pos = this.#lowerBound(leaf, key);
    const L = this.#leaves;
    const base = leaf * LEAF;
    const n = L[base];
    this.#size++;
    if (n < FAN) {
      const at = base + L_REFS + pos;
      L.copyWithin(at + 1, at, base + L_REFS + n);
      L[at] = ref;
      L[base] = n + 1;
      if (pos === 0) this.#fixMin(this.#height - 1, ref);
      return;
    }
    // Full: split. A key past the end of the last leaf (ascending loads)
    // starts a leaf of its own, so such loads leave full leaves behind.
    const right = this.#newLeaf();
    const Lr = this.#leaves; // #newLeaf may have grown the array
    const rb = right * LEAF;
    let keep = FAN >> 1;
    if (pos === FAN && Lr[base + L_NEXT] === -1) keep = FAN;
    Lr.copyWithin(rb + L_REFS, base + L_REFS + keep, base + L_REFS + FAN);
    Lr[rb] = FAN - keep;
    Lr[base] = keep;
    const next = Lr[base + L_NEXT];
    Lr[rb + L_NEXT] = next;
    Lr[rb + L_PREV] = leaf;
    Lr[base + L_NEXT] = right;
    if (next !== -1) Lr[next * LEAF + L_PREV] = right;
    const into = pos < keep ? leaf : right;
    const ib = into * LEAF;
    const ipos = into === leaf ? pos : pos - keep;
    const in_ = Lr[ib];
    Lr.copyWithin(ib + L_REFS + ipos + 1, ib + L_REFS + ipos, ib + L_REFS + in_);
    Lr[ib + L_REFS + ipos] = ref;
    Lr[ib] = in_ + 1;
    if (into === leaf && ipos === 0) this.#fixMin(this.#height - 1, ref);
    this.#addChild(this.#height - 1, leaf, right, Lr[rb + L_REFS]);
  }

  /**
   * Removes the entry for `key`.
   *
   * @returns The reference removed, or -1 when `key` is not in the tree.
   *
   * @example
   * ```ts
   * const keys = [new Uint8Array([1])];
   * const tree = new BTree({ compare: (k, r) => k[0] - keys[r][0] });
   * tree.insert(keys[0], 0);
   * tree.delete(keys[0]); // 0
   * ```
   */
  delete(key: Uint8Array): number {
    const leaf = this.#descend(key);
    const pos = this.#lowerBound(leaf, key);
    if (!this.#eq) return -1;
    const L = this.#leaves;
    const base = leaf * LEAF;
    const n = L[base] - 1;
    const ref = L[base + L_REFS + pos];
    L.copyWithin(base + L_REFS + pos, base + L_REFS + pos + 1, base + L_REFS + n + 1);
    L[base] = n;
    this.#size--;
    const d = this.#height - 1;
    if (d < 0) return ref; // the root leaf may be any size
    if (n === 0) {
      this.#unlinkLeaf(leaf);
      this.#removeChild(d, this.#pathIdx[d]);
      return ref;
    }
    if (pos === 0) this.#fixMin(d, L[base + L_REFS]);
    if (n < LOW) this.#mergeLeaf(d, leaf);
    return ref;
  }

  /**
   * Points the entry for `key` at `ref` (its record moved).
   *
   * @returns False when `key` is not in the tree.
   *
   * @example
   * ```ts
   * const keys = [new Uint8Array([1]), new Uint8Array([1])];
   * const tree = new BTree({ compare: (k, r) => k[0] - keys[r][0] });
   * tree.insert(keys[0], 0);
   * tree.replace(keys[0], 1); // true
   * ```
   */
  replace(key: Uint8Array, ref: number): boolean {
    const leaf = this.#descend(key);
    const pos = this.#lowerBound(leaf, key);
    if (!this.#eq) return false;
    this.#leaves[leaf * LEAF + L_REFS + pos] = ref;
    if (pos === 0) this.#fixMin(this.#height - 1, ref);
    return true;
  }

  /**
   * Puts the cursor on the first entry whose key is >= `key` (or > `key`
   * when `exclusive`); {@linkcode BTree.ref} is then -1 if there is none.
   *
   * @example
   * ```ts
   * const tree = new BTree({ compare: () => 0 });
   * tree.seek(new Uint8Array(0), false);
   * tree.ref; // -1: empty
   * ```
   */
  seek(key: Uint8Array, exclusive: boolean): void {
    const leaf = this.#descend(key);
    let pos = this.#lowerBound(leaf, key);
    if (exclusive && this.#eq) pos++;
    this.#curLeaf = leaf;
    this.#curPos = pos;
    this.#settle();
  }

  /**
   * The reference under the cursor, or -1 past the end.
   *
   * @example
   * ```ts
   * const tree = new BTree({ compare: () => 0 });
   * tree.seek(new Uint8Array(0), false);
   * tree.ref; // -1
   * ```
   */
  get ref(): number {
    return this.#curLeaf < 0 ? -1 : this.#leaves[this.#curLeaf * LEAF + L_REFS + this.#curPos];
  }

  /**
   * Moves the cursor to the next entry. Valid only while the tree is not
   * changed after {@linkcode BTree.seek}.
   *
   * @example
   * ```ts
   * const tree = new BTree({ compare: () => 0 });
   * tree.seek(new Uint8Array(0), false);
   * tree.next();
   * ```
   */
  next(): void {
    if (this.#curLeaf < 0) return;
    this.#curPos++;
    this.#settle();
  }

  /**
   * Removes every entry.
   *
   * @example
   * ```ts
   * const tree = new BTree({ compare: () => 0 });
   * tree.clear();
   * ```
   */
  clear(): void {
    this.#leaves = new Int32Array(LEAF * 4);
    this.#inner = new Int32Array(INNER * 2);
    this.#leafTop = this.#innerTop = 0;
    this.#leafFree = this.#innerFree = -1;
    this.#height = this.#size = 0;
    this.#curLeaf = -1;
    this.#root = this.#newLeaf();
  }

  /** Moves a cursor that is past its leaf's last entry to the next leaf. */
  #settle(): void {
    const L = this.#leaves;
    while (this.#curLeaf >= 0 && this.#curPos >= L[this.#curLeaf * LEAF]) {
      this.#curLeaf = L[this.#curLeaf * LEAF + L_NEXT];
      this.#curPos = 0;
    }
  }

  /** Walks from the root to the leaf where `key` belongs, recording the path. */
  #descend(key: Uint8Array): number {
    const I = this.#inner;
    const order = this.#order;
    let node = this.#root;
    for (let d = 0; d < this.#height; d++) {
      const base = node * INNER;
      // The last child whose least key is <= key (the first child if none).
      let lo = 1;
      let hi = I[base];
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (order.compare(key, I[base + I_MINS + mid]) < 0) hi = mid;
        else lo = mid + 1;
      }
      this.#pathNode[d] = node;
      this.#pathIdx[d] = lo - 1;
      node = I[base + I_KIDS + lo - 1];
    }
    return node;
  }

  /** First position in `leaf` whose key is >= `key`; sets #eq when it is equal. */
  #lowerBound(leaf: number, key: Uint8Array): number {
    const L = this.#leaves;
    const order = this.#order;
    const base = leaf * LEAF + L_REFS;
    let lo = 0;
    let hi = L[leaf * LEAF];
    let eq = false;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = order.compare(key, L[base + mid]);
      if (c > 0) lo = mid + 1;
      else {
        hi = mid;
        eq = c === 0;
      }
    }
    this.#eq = eq;
    return lo;
  }

  /** Writes `ref` as the least key up the path from inner level `d`, while it stays the least. */
  #fixMin(d: number, ref: number): void {
    const I = this.#inner;
    for (; d >= 0; d--) {
      const idx = this.#pathIdx[d];
      I[this.#pathNode[d] * INNER + I_MINS + idx] = ref;
      if (idx !== 0) return;
    }
  }

  /** After `left` at inner level `d + 1` split, adds `right` (least key `min`) beside it. */
  #addChild(d: number, left: number, right: number, min: number): void {
    if (d < 0) {
      // The root split: a new root above both.
      const root = this.#newInner();
      const I = this.#inner;
      const b = root * INNER;
      I[b] = 2;
      I[b + I_KIDS] = left;
      I[b + I_KIDS + 1] = right;
      I[b + I_MINS] = this.#minOf(left, this.#height);
      I[b + I_MINS + 1] = min;
      this.#root = root;
      this.#height++;
      return;
    }
    const node = this.#pathNode[d];
    const pos = this.#pathIdx[d] + 1;
    let I = this.#inner;
    const base = node * INNER;
    const n = I[base];
    if (n < FAN) {
      I.copyWithin(base + I_KIDS + pos + 1, base + I_KIDS + pos, base + I_KIDS + n);
      I.copyWithin(base + I_MINS + pos + 1, base + I_MINS + pos, base + I_MINS + n);
      I[base + I_KIDS + pos] = right;
      I[base + I_MINS + pos] = min;
      I[base] = n + 1;
      return;
    }
    const sib = this.#newInner();
    I = this.#inner;
    const sb = sib * INNER;
    const keep = FAN >> 1;
    I.copyWithin(sb + I_KIDS, base + I_KIDS + keep, base + I_KIDS + FAN);
    I.copyWithin(sb + I_MINS, base + I_MINS + keep, base + I_MINS + FAN);
    I[sb] = FAN - keep;
    I[base] = keep;
    const into = pos <= keep ? base : sb;
    const ipos = pos <= keep ? pos : pos - keep;
    const m = I[into];
    I.copyWithin(into + I_KIDS + ipos + 1, into + I_KIDS + ipos, into + I_KIDS + m);
    I.copyWithin(into + I_MINS + ipos + 1, into + I_MINS + ipos, into + I_MINS + m);
    I[into + I_KIDS + ipos] = right;
    I[into + I_MINS + ipos] = min;
    I[into] = m + 1;
    this.#addChild(d - 1, node, sib, I[sb + I_MINS]);
  }

  /** The least key's ref under `node`, which sits `levels` inner levels above the leaves. */
  #minOf(node: number, levels: number): number {
    return levels === 0 ? this.#leaves[node * LEAF + L_REFS] : this.#inner[node * INNER + I_MINS];
  }

  /** Removes child `idx` of the inner node at level `d` of the path, which emptied or merged. */
  #removeChild(d: number, idx: number): void {
    const I = this.#inner;
    const node = this.#pathNode[d];
    const base = node * INNER;
    const n = I[base] - 1;
    I.copyWithin(base + I_KIDS + idx, base + I_KIDS + idx + 1, base + I_KIDS + n + 1);
    I.copyWithin(base + I_MINS + idx, base + I_MINS + idx + 1, base + I_MINS + n + 1);
    I[base] = n;
    if (d === 0) {
      if (n === 1) {
        // A root with one child steps down.
        this.#root = I[base + I_KIDS];
        this.#height--;
        this.#freeInner(node);
      }
      return;
    }
    if (n === 0) {
      this.#freeInner(node);
      this.#removeChild(d - 1, this.#pathIdx[d - 1]);
      return;
    }
    if (idx === 0) this.#fixMin(d - 1, I[base + I_MINS]);
    if (n < LOW) this.#mergeInner(d, node);
  }

  /** Joins a thin leaf (at inner level `d` + 1) with a sibling under the same parent if they fit. */
  #mergeLeaf(d: number, leaf: number): void {
    const I = this.#inner;
    const L = this.#leaves;
    const parent = this.#pathNode[d] * INNER;
    const idx = this.#pathIdx[d];
    let left = leaf;
    let right: number;
    let rightIdx = idx + 1;
    if (idx + 1 < I[parent]) right = I[parent + I_KIDS + idx + 1];
    else if (idx > 0) {
      left = I[parent + I_KIDS + idx - 1];
      right = leaf;
      rightIdx = idx;
    } else return;
    const ln = L[left * LEAF];
    const rn = L[right * LEAF];
    if (ln + rn > MERGE_MAX) return;
    L.copyWithin(left * LEAF + L_REFS + ln, right * LEAF + L_REFS, right * LEAF + L_REFS + rn);
    L[left * LEAF] = ln + rn;
    this.#unlinkLeaf(right);
    this.#removeChild(d, rightIdx);
  }

  /** Joins a thin inner node at level `d` with a sibling under the same parent if they fit. */
  #mergeInner(d: number, node: number): void {
    const I = this.#inner;
    const parent = this.#pathNode[d - 1] * INNER;
    const idx = this.#pathIdx[d - 1];
    let left = node;
    let right: number;
    let rightIdx = idx + 1;
    if (idx + 1 < I[parent]) right = I[parent + I_KIDS + idx + 1];
    else if (idx > 0) {
      left = I[parent + I_KIDS + idx - 1];
      right = node;
      rightIdx = idx;
    } else return;
    const lb = left * INNER;
    const rb = right * INNER;
    const ln = I[lb];
    const rn = I[rb];
    if (ln + rn > MERGE_MAX) return;
    I.copyWithin(lb + I_KIDS + ln, rb + I_KIDS, rb + I_KIDS + rn);
    I.copyWithin(lb + I_MINS + ln, rb + I_MINS, rb + I_MINS + rn);
    I[lb] = ln + rn;
    this.#freeInner(right);
    this.#removeChild(d - 1, rightIdx);
  }

  /** Takes an emptied or merged leaf out of the leaf chain and frees it. */
  #unlinkLeaf(leaf: number): void {
    const L = this.#leaves;
    const b = leaf * LEAF;
    const next = L[b + L_NEXT];
    const prev = L[b + L_PREV];
    if (prev !== -1) L[prev * LEAF + L_NEXT] = next;
    if (next !== -1) L[next * LEAF + L_PREV] = prev;
    L[b + L_NEXT] = this.#leafFree;
    this.#leafFree = leaf;
  }

  #newLeaf(): number {
    let id = this.#leafFree;
    if (id !== -1) this.#leafFree = this.#leaves[id * LEAF + L_NEXT];
    else {
      id = this.#leafTop++;
      if (id * LEAF + LEAF > this.#leaves.length) this.#leaves = grow(this.#leaves);
    }
    const b = id * LEAF;
    this.#leaves[b] = 0;
    this.#leaves[b + L_NEXT] = -1;
    this.#leaves[b + L_PREV] = -1;
    return id;
  }

  #newInner(): number {
    let id = this.#innerFree;
    if (id !== -1) this.#innerFree = this.#inner[id * INNER + I_KIDS];
    else {
      id = this.#innerTop++;
      if (id * INNER + INNER > this.#inner.length) this.#inner = grow(this.#inner);
    }
    this.#inner[id * INNER] = 0;
    return id;
  }

  #freeInner(node: number): void {
    this.#inner[node * INNER + I_KIDS] = this.#innerFree;
    this.#innerFree = node;
  }
}

/** A copy of `a` with room for 1.5 times as much: growth costs a third of the array on average. */
function grow(a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const b = new Int32Array(Math.ceil(a.length * 1.5) + 256);
  b.set(a);
  return b;
}
