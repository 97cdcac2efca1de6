/**
 * twemproxy's ketama ring, bit for bit (`distribution: ketama` in
 * nutcracker 0.5; `src/hashkit/nc_ketama.c`), so that a wire v1 client and
 * a RESP client going through twemproxy agree on which server owns a key.
 *
 * The ring: each server gets `floor(weight/total * 40 * n) * 4` points (160
 * for equal weights, computed in 32-bit float as twemproxy does); point
 * group `i` of a server named `name` is the MD5 of `"<name>-<i>"`, read as
 * four little-endian 32-bit values. A key goes to the first point at or
 * after its hash (the pool's `hash:`), wrapping around. A server's name is
 * the `name` after its weight in the twemproxy config when given, else
 * `host:port` (just `host` for port 11211, for libmemcached's sake).
 *
 * @module
 */
import { createHash } from "node:crypto";

/** Key hashes of twemproxy's `hash:` setting that this ring supports. */
export const KETAMA_HASHES = ["fnv1a_64", "fnv1_64", "fnv1a_32", "fnv1_32", "md5"] as const;
/** One of {@link KETAMA_HASHES}. */
export type KetamaHash = typeof KETAMA_HASHES[number];

const POINTS_PER_SERVER = 160;
const POINTS_PER_HASH = 4;
const FNV_64_INIT_LO = 0x84222325; // (uint32_t)0xcbf29ce484222325
const FNV_64_PRIME_LO = 0x1b3; // (uint32_t)0x100000001b3
const FNV_32_INIT = 0x811c9dc5;
const FNV_32_PRIME = 0x01000193;

function md5(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("md5").update(bytes).digest());
}

function le32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/**
 * twemproxy reads keys through `const char *`: on the platforms it is built
 * for, a byte of 0x80 or more is sign-extended before it meets the hash.
 */
function signed(b: number): number {
  return b < 0x80 ? b : (b | 0xffffff00) >>> 0;
}

/**
 * The 32-bit hash twemproxy's `hash:` setting gives `key`.
 *
 * @example
 * ```ts
 * import { ketamaHash } from "@evkv/evkv/client";
 * ketamaHash("fnv1a_32", new TextEncoder().encode("foo")).toString(16); // "a9f37ed7"
 * ```
 */
export function ketamaHash(hash: KetamaHash, key: Uint8Array): number {
  switch (hash) {
    case "md5":
      return le32(md5(key), 0);
    case "fnv1a_64": {
      // 64-bit FNV truncated to 32 bits: only the low words matter.
      let h = FNV_64_INIT_LO;
      for (let i = 0; i < key.length; i++) h = Math.imul(h ^ signed(key[i]), FNV_64_PRIME_LO);
      return h >>> 0;
    }
    case "fnv1_64": {
      let h = FNV_64_INIT_LO;
      for (let i = 0; i < key.length; i++) h = Math.imul(h, FNV_64_PRIME_LO) ^ signed(key[i]);
      return h >>> 0;
    }
    case "fnv1a_32": {
      let h = FNV_32_INIT;
      for (let i = 0; i < key.length; i++) h = Math.imul(h ^ signed(key[i]), FNV_32_PRIME);
      return h >>> 0;
    }
    case "fnv1_32": {
      let h = FNV_32_INIT;
      for (let i = 0; i < key.length; i++) h = Math.imul(h, FNV_32_PRIME) ^ signed(key[i]);
      return h >>> 0;
    }
  }
  throw new RangeError(`Hash key: "${hash}" is not one of ${KETAMA_HASHES.join(", ")}`);
}

/** One server on the ring. */
export interface KetamaNode {
  /** The name its points are made from (twemproxy's server name). */
  name: string;
  /** Relative weight, an integer >= 1. Default 1. */
  weight?: number;
}

/** Options of a {@link KetamaRing}. */
export interface KetamaOptions {
  /** twemproxy's `hash:`. Default `fnv1a_64`. */
  hash?: KetamaHash;
  /** twemproxy's `hash_tag:`, two characters such as `"{}"`. Default: none. */
  hashTag?: string;
}

const encoder = new TextEncoder();

/**
 * A ketama continuum over `nodes`.
 *
 * @example
 * ```ts
 * import { KetamaRing } from "@evkv/evkv/client";
 * const ring = new KetamaRing([{ name: "a" }, { name: "b" }, { name: "c" }]);
 * ring.nodeFor("user:1"); // 0, 1 or 2, as twemproxy would pick
 * ```
 */
export class KetamaRing {
  /** Sorted point values. */
  readonly #points: Uint32Array;
  /** Node index of each point. */
  readonly #owners: Uint16Array;
  readonly #hash: KetamaHash;
  readonly #tag: [number, number] | null;
  readonly #nodes: number;

  /** Builds the ring of `nodes`, in their config order. */
  constructor(nodes: readonly KetamaNode[], options: KetamaOptions = {}) {
    if (nodes.length === 0) throw new RangeError("Build ketama ring: no servers");
    if (nodes.length > 0xffff) throw new RangeError("Build ketama ring: too many servers");
    this.#hash = options.hash ?? "fnv1a_64";
    if (!(KETAMA_HASHES as readonly string[]).includes(this.#hash)) {
      throw new RangeError(`Build ketama ring: hash "${this.#hash}" is not supported`);
    }
    const tag = options.hashTag;
    if (tag !== undefined && tag.length !== 2) {
      throw new RangeError(`Build ketama ring: hash tag "${tag}" is not two characters`);
    }
    this.#tag = tag === undefined ? null : [tag.charCodeAt(0), tag.charCodeAt(1)];
    this.#nodes = nodes.length;
    const weights = nodes.map((n) => n.weight ?? 1);
    for (const w of weights) {
      if (!Number.isInteger(w) || w < 1) {
        throw new RangeError(`Build ketama ring: weight ${w} is not an integer >= 1`);
      }
    }
    const total = weights.reduce((a, b) => a + b, 0);
    const live = Math.fround(nodes.length);
    const values: number[] = [];
    const owners: number[] = [];
    nodes.forEach((node, index) => {
      // twemproxy's float arithmetic, step by step, so the counts agree.
      const pct = Math.fround(Math.fround(weights[index]) / Math.fround(total));
      const t = Math.fround(Math.fround(Math.fround(pct * POINTS_PER_SERVER) / 4) * live);
      const points = Math.floor(Math.fround(t + 0.0000000001)) * 4;
      for (let i = 0; i < points / POINTS_PER_HASH; i++) {
        const digest = md5(encoder.encode(`${node.name}-${i}`));
        for (let x = 0; x < POINTS_PER_HASH; x++) {
          values.push(le32(digest, x * 4));
          owners.push(index);
        }
      }
    });
    const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
    this.#points = Uint32Array.from(order, (i) => values[i]);
    this.#owners = Uint16Array.from(order, (i) => owners[i]);
  }

  /** Points on the ring (160 per server at equal weights). */
  get size(): number {
    return this.#points.length;
  }

  /** The index (in the constructor's list) of the node that owns `key`. */
  nodeFor(key: Uint8Array | string): number {
    if (this.#nodes === 1) return 0;
    let k = typeof key === "string" ? encoder.encode(key) : key;
    if (this.#tag) {
      const start = k.indexOf(this.#tag[0]);
      if (start >= 0) {
        const end = k.indexOf(this.#tag[1], start + 1);
        if (end > start + 1) k = k.subarray(start + 1, end);
      }
    }
    const hash = k.length === 0 ? 0 : ketamaHash(this.#hash, k);
    const points = this.#points;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid] < hash) lo = mid + 1;
      else hi = mid;
    }
    return this.#owners[hi === points.length ? 0 : hi];
  }
}
