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
import { readVarint64, unzigzag64, varint64End } from "../protocol/varint64.ts";
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

/** RespMethod.Key2 (src/resp/shard_methods.ts): batch entries that are keys, not bodies. */
const RESP_KEY = 0x8010;

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
    const end = batch.ends[i];
    const start = batch.starts[i];
    if (code === RESP_KEY) {
      // The RESP codec adds the key's own range (see its collect).
      if (shards > 1 && shardOfKey(b, start, end, shards) !== ctx.shard) continue;
      keyStarts[keys] = start;
      keyEnds[keys] = end;
      keys++;
      continue;
    }
    if (code !== KvMethod.Get && code !== KvMethod.Put && code !== KvMethod.Delete) continue;
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

/** An Incr request with its delta exact (protobufjs without Long would round it). */
export interface IncrRequestExact {
  /** Key of the counter. */
  key: Uint8Array;
  /** Signed 64-bit amount to add. */
  delta: bigint;
  /** Expiry in ms if the key is created; 0 = none. */
  ttlMs: number;
}

/**
 * `IncrRequest { bytes key = 1; sint64 delta = 2; uint32 ttl_ms = 3; }`,
 * decoded completely here (never left to protobufjs, which would round a
 * delta past 2^53): unknown fields are skipped by wire type, a repeated
 * field keeps its last value, and a truncated body or a known field with
 * the wrong wire type throws (BAD_REQUEST).
 *
 * @example
 * ```ts
 * import { incrRequestReader } from "./request_readers.ts";
 * const body = new Uint8Array([0x0a, 1, 0x6b, 0x10, 3]); // key "k", delta -2
 * incrRequestReader.read(body, 0, body.length)?.delta; // -2n
 * ```
 */
export const incrRequestReader: BodyReader<IncrRequestExact> = {
  read(b, start, end) {
    let key: Uint8Array = NO_BYTES;
    let delta = 0n;
    let ttlMs = 0;
    let i = start;
    while (i < end) {
      const tag = Number(readVarint64(b, i, end));
      i = varint64End;
      if (i < 0) throw new RangeError("truncated field tag");
      const field = Math.floor(tag / 8);
      const wire = tag & 7;
      if (field === 0) throw new RangeError("field number 0");
      if (wire === 0) {
        const v = readVarint64(b, i, end);
        i = varint64End;
        if (i < 0) throw new RangeError("truncated varint");
        if (field === 2) delta = unzigzag64(v);
        else if (field === 3) ttlMs = Number(v & 0xffffffffn);
        else if (field === 1) throw new RangeError("field 1 (key) must be length-delimited");
      } else if (wire === 2) {
        const len = Number(readVarint64(b, i, end));
        i = varint64End;
        if (i < 0 || len > end - i) throw new RangeError("truncated bytes field");
        if (field === 1) key = b.subarray(i, i + len);
        else if (field === 2 || field === 3) {
          throw new RangeError(`field ${field} must be a varint`);
        }
        i += len;
      } else if (wire === 1 || wire === 5) {
        if (field <= 3) throw new RangeError(`field ${field} has the wrong wire type`);
        i += wire === 1 ? 8 : 4;
        if (i > end) throw new RangeError("truncated fixed-width field");
      } else throw new RangeError(`wire type ${wire} is not supported`);
    }
    return { key, delta, ttlMs };
  },
};
