/**
 * Hand-written decoders ({@link BodyReader}) for the requests of the KV
 * methods that carry most traffic. protobufjs's `decode` needs the body as
 * its own `Uint8Array` view, then makes a Reader and a message object per
 * request; at hundreds of thousands of requests a second those allocations
 * streamed through the CPU cache and evicted the store's records. These read
 * the fields straight from the receive buffer or ring.
 *
 * They take only the shapes a well-behaved client sends (each known field
 * at most once, with its declared wire type, lengths under 2^28) and return
 * `undefined` for anything else, so protobufjs still decides every odd or
 * malformed body. `tests/request_readers_test.ts` holds them to protobufjs.
 *
 * @module
 */
import { KvMethod } from "../protocol/constants.ts";
import type { evkv } from "../protocol/messages.ts";
import type { BodyReader, HandlerContext, RequestBatch } from "../server/service.ts";
import { shardOfKey } from "./route.ts";
import type { ShardStore } from "./store.ts";

/** What protobufjs gives for an absent bytes field. */
const NO_BYTES = new Uint8Array(0);

/** Field 1, 2 as length-delimited bytes; field 3 as a varint. */
const BYTES_FIELD_1 = 0x0a;
const BYTES_FIELD_2 = 0x12;
const VARINT_FIELD_3 = 0x18;

/** Where the last {@link varint} ended; -1 after one it does not take. */
let next = 0;

/**
 * The varint at `b[i]` if it has 1 to 4 bytes and ends before `end` (so it
 * is below 2^28), leaving the offset after it in {@link next}; otherwise
 * `next` is -1. Longer varints are left to protobufjs.
 */
function varint(b: Uint8Array, i: number, end: number): number {
  let n = 0;
  for (let shift = 0; shift < 28 && i < end; shift += 7) {
    const byte = b[i++];
    n |= (byte & 0x7f) << shift;
    if (byte < 0x80) {
      next = i;
      return n;
    }
  }
  next = -1;
  return 0;
}

/**
 * `message { bytes key = 1; }`: GetRequest and DeleteRequest.
 *
 * @example
 * ```ts
 * import { keyRequestReader } from "./request_readers.ts";
 * const body = new Uint8Array([0x0a, 2, 0x61, 0x62]);
 * keyRequestReader.read(body, 0, body.length)?.key; // Uint8Array [0x61, 0x62]
 * ```
 */
export const keyRequestReader: BodyReader<evkv.v1.IGetRequest & evkv.v1.IDeleteRequest> = {
  read(b, start, end) {
    let key: Uint8Array | undefined;
    let i = start;
    while (i < end) {
      if (b[i] !== BYTES_FIELD_1 || key !== undefined) return undefined;
      const len = varint(b, i + 1, end);
      i = next;
      if (i < 0 || len > end - i) return undefined;
      key = b.subarray(i, i + len);
      i += len;
    }
    return { key: key ?? NO_BYTES };
  },
};

/**
 * `PutRequest { bytes key = 1; bytes value = 2; uint32 ttl_ms = 3; }`.
 *
 * @example
 * ```ts
 * import { putRequestReader } from "./request_readers.ts";
 * const body = new Uint8Array([0x0a, 1, 0x6b, 0x12, 1, 0x76, 0x18, 100]);
 * putRequestReader.read(body, 0, body.length)?.ttlMs; // 100
 * ```
 */
export const putRequestReader: BodyReader<evkv.v1.IPutRequest> = {
  read(b, start, end) {
    let key: Uint8Array | undefined;
    let value: Uint8Array | undefined;
    let ttlMs = -1;
    let i = start;
    while (i < end) {
      const tag = b[i];
      const n = varint(b, i + 1, end);
      i = next;
      if (i < 0) return undefined;
      if (tag === VARINT_FIELD_3 && ttlMs < 0) {
        ttlMs = n;
        continue;
      }
      if (n > end - i) return undefined;
      if (tag === BYTES_FIELD_1 && key === undefined) key = b.subarray(i, i + n);
      else if (tag === BYTES_FIELD_2 && value === undefined) value = b.subarray(i, i + n);
      else return undefined;
      i += n;
    }
    return { key: key ?? NO_BYTES, value: value ?? NO_BYTES, ttlMs: ttlMs < 0 ? 0 : ttlMs };
  },
};

/** Key ranges of a batch, reused across batches (one thread per module instance). */
let keyStarts = new Int32Array(64);
let keyEnds = new Int32Array(64);
/** Where the store's prefetch results go, so that its reads are kept. */
let prefetched = 0;

/**
 * The KV service's prefetch hook ({@link Service.prefetch}): finds the key
 * of every Get, Put and Delete in the batch whose body starts with its key
 * field (as protobufjs writes them) and that this shard serves, and has
 * the store touch their slots and records in one go.
 *
 * @example
 * ```ts
 * import { defineService } from "../server/service.ts";
 * import { prefetchKeys } from "./request_readers.ts";
 * import { ShardStore } from "./store.ts";
 * defineService({
 *   name: "kv-like",
 *   createState: () => new ShardStore(),
 *   prefetch: prefetchKeys,
 *   methods: {},
 * });
 * ```
 */
export function prefetchKeys(batch: RequestBatch, ctx: HandlerContext<ShardStore>): void {
  const n = batch.length;
  if (keyStarts.length < n) {
    keyStarts = new Int32Array(n);
    keyEnds = new Int32Array(n);
  }
  const b = batch.bytes;
  const shards = ctx.shards;
  let keys = 0;
  for (let i = 0; i < n; i++) {
    const code = batch.codes[i];
    if (code !== KvMethod.Get && code !== KvMethod.Put && code !== KvMethod.Delete) continue;
    const end = batch.ends[i];
    const start = batch.starts[i];
    if (start >= end || b[start] !== BYTES_FIELD_1) continue;
    const len = varint(b, start + 1, end);
    const at = next;
    if (at < 0 || len > end - at) continue;
    // Keys of other shards are routed elsewhere.
    if (shards > 1 && shardOfKey(b, at, at + len, shards) !== ctx.shard) continue;
    keyStarts[keys] = at;
    keyEnds[keys] = at + len;
    keys++;
  }
  if (keys > 0) prefetched ^= ctx.state.prefetch(b, keyStarts, keyEnds, keys);
}
