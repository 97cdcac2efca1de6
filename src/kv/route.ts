/**
 * Routing for the KV service: the shard of a request is a hash of its key,
 * read straight from the protobuf body (field 1, bytes) so the IO worker
 * never decodes the request.
 *
 * @module
 */

/** End of the field found by the last findBytesField (start is returned). */
let foundEnd = 0;

/**
 * Start of the bytes of field `field` (wire type 2) in a protobuf message,
 * or -1 when absent; the end is left in `foundEnd` (no allocation on the
 * per-request path). Only what is needed to skip other fields is parsed.
 */
function findBytesField(body: Uint8Array, field: number): number {
  let i = 0;
  let found = -1;
  while (i < body.length) {
    let tag = 0;
    let shift = 0;
    let b: number;
    do {
      if (i >= body.length) return found;
      b = body[i++];
      tag += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80 && shift < 35);
    const wire = tag & 7;
    const num = Math.floor(tag / 8);
    if (wire === 0) {
      while (i < body.length && body[i++] & 0x80);
    } else if (wire === 1) {
      i += 8;
    } else if (wire === 5) {
      i += 4;
    } else if (wire === 2) {
      let len = 0;
      shift = 0;
      do {
        if (i >= body.length) return found;
        b = body[i++];
        len += (b & 0x7f) * 2 ** shift;
        shift += 7;
      } while (b & 0x80 && shift < 35);
      // proto3: the last occurrence of a field wins.
      if (num === field) {
        found = i;
        foundEnd = Math.min(i + len, body.length);
      }
      i += len;
    } else {
      return found; // groups or garbage: the handler will reject the body
    }
  }
  return found;
}

/**
 * Shard of a Get, Put or Delete request body: FNV-1a of the key bytes. A
 * body without a key goes to shard 0, whose handler rejects it.
 *
 * @example
 * ```ts
 * import { keyShard } from "@evkv/evkv";
 * import { pb } from "@evkv/evkv";
 * keyShard(pb.GetRequest.encode({ key: new Uint8Array([1]) }).finish(), 4); // 0..3
 * ```
 */
export function keyShard(body: Uint8Array, shards: number): number {
  if (shards === 1) return 0;
  const start = findBytesField(body, 1);
  if (start < 0) return 0;
  return shardOfKey(body, start, foundEnd, shards);
}

/**
 * Shard of the key `bytes[start, end)` among `shards`: the one rule that
 * {@link keyShard} routes by and that anything predicting the route (the
 * KV prefetch hook, the RESP door) must follow. A key with a hash tag
 * (`{tag}rest`, the first `{` and the first `}` after it, non-empty
 * between) is routed by the tag alone, as Redis Cluster slots it.
 *
 * @example
 * ```ts
 * import { shardOfKey } from "./route.ts";
 * const key = new TextEncoder().encode("user:1");
 * shardOfKey(key, 0, key.length, 4); // 0..3
 * ```
 */
export function shardOfKey(bytes: Uint8Array, start: number, end: number, shards: number): number {
  // Redis Cluster's hash tags: when the key has a `{...}` with something
  // inside, only that part decides, so `{user:1}:name` and `{user:1}:mail`
  // share a shard (and a RESP transaction can span both).
  for (let i = start; i < end; i++) {
    if (bytes[i] !== 0x7b) continue;
    for (let j = i + 1; j < end; j++) {
      if (bytes[j] !== 0x7d) continue;
      if (j > i + 1) return hashBytes(bytes, i + 1, j) % shards;
      break;
    }
    break;
  }
  return hashBytes(bytes, start, end) % shards;
}

/**
 * FNV-1a (32-bit) of `bytes[start, end)`, with a final avalanche so that
 * `% shards` uses all bits.
 *
 * @example
 * ```ts
 * import { hashBytes } from "@evkv/evkv";
 * const k = new TextEncoder().encode("user:1");
 * hashBytes(k, 0, k.length);
 * ```
 */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}
