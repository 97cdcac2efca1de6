/**
 * Hand-written encoders ({@link BodyWriter}) for the replies of the KV
 * methods that carry most traffic. Under the benchmark, protobufjs's Writer
 * made an operation object per field and ran them in a second pass for
 * every Get; these write the same bytes in one pass with no objects.
 * `tests/outcome_test.ts` holds them to protobufjs's bytes.
 *
 * They follow protobufjs's static code, not just proto3: a field is written
 * when the reply object has it (even `false` or empty), and left out when
 * it is absent, so the bytes match.
 *
 * @module
 */
import type { BodyWriter } from "../server/service.ts";
import type { evkv } from "../protocol/messages.ts";
import { crc32Combine, crc32Range } from "../protocol/crc32.ts";
import { varint64Size, writeVarint64, zigzag64 } from "../protocol/varint64.ts";

/** Bytes of `n` (0..2^32-1) as a protobuf varint. */
function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Writes `n` (0..2^32-1) as a varint at `off`; returns the offset after it. */
function writeVarint(dst: Uint8Array, off: number, n: number): number {
  while (n >= 0x80) {
    dst[off++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  dst[off++] = n;
  return off;
}

/** Tag of field 1 as a varint (a bool), and of field 2 as length-delimited bytes. */
const BOOL_FIELD_1 = 0x08;
const BYTES_FIELD_2 = 0x12;

/**
 * A GetReply as the Get handler makes it: with the CRC-32 the store kept
 * for the value, which is not sent as a field but gives the body's CRC.
 */
export interface StoredGetReply extends evkv.v1.IGetReply {
  /** CRC-32 of `value`, when known. */
  valueCrc?: number;
}

/** Value lengths whose head-CRC term is cached; longer ones compute it each time. */
const HEAD_CACHE = 4096;
/** headTerm(true, n) for n < HEAD_CACHE, +1 (0 = not computed yet). */
const headCache = new Float64Array(HEAD_CACHE);
const headScratch = new Uint8Array(8);

/**
 * What the body's head (the `found` field, the value's tag and length)
 * contributes to the body's CRC: the body's CRC is this XOR the value's
 * own CRC (CRC-32 is linear; see {@link crc32Combine}).
 */
function headTerm(found: boolean | null | undefined, length: number): number {
  const cached = found === true && length < HEAD_CACHE;
  if (cached && headCache[length] !== 0) return headCache[length] - 1;
  let n = 0;
  if (found != null) {
    headScratch[n++] = BOOL_FIELD_1;
    headScratch[n++] = found ? 1 : 0;
  }
  headScratch[n++] = BYTES_FIELD_2;
  n = writeVarint(headScratch, n, length);
  const term = crc32Combine(crc32Range(headScratch, 0, n), 0, length);
  if (cached) headCache[length] = term + 1;
  return term;
}

/**
 * `GetReply { bool found = 1; bytes value = 2; }`. Given the value's CRC
 * (`valueCrc`), it gives the body's CRC without reading the value.
 *
 * @example
 * ```ts
 * import { getReplyWriter } from "./reply_writers.ts";
 * const reply = { found: true, value: new Uint8Array([7]) };
 * const out = new Uint8Array(getReplyWriter.size(reply));
 * getReplyWriter.write(reply, out, 0); // [0x08, 1, 0x12, 1, 7]
 * ```
 */
export const getReplyWriter: BodyWriter<StoredGetReply> = {
  size(m) {
    let n = m.found == null ? 0 : 2;
    const v = m.value;
    if (v != null) n += 1 + varintSize(v.length) + v.length;
    return n;
  },
  write(m, dst, off) {
    if (m.found != null) {
      dst[off++] = BOOL_FIELD_1;
      dst[off++] = m.found ? 1 : 0;
    }
    const v = m.value;
    if (v != null) {
      dst[off++] = BYTES_FIELD_2;
      off = writeVarint(dst, off, v.length);
      dst.set(v, off);
    }
  },
  crc(m) {
    const v = m.value;
    if (v == null || m.valueCrc === undefined) return -1;
    return (headTerm(m.found, v.length) ^ m.valueCrc) >>> 0;
  },
};

/**
 * A reply whose only field is `bool <name> = 1` (PutReply, DeleteReply).
 *
 * @example
 * ```ts
 * import { boolReplyWriter } from "./reply_writers.ts";
 * const putReply = boolReplyWriter("replaced");
 * putReply.size({ replaced: false }); // 2
 * ```
 */
export function boolReplyWriter<K extends string>(
  name: K,
): BodyWriter<{ [P in K]?: boolean | null }> {
  return {
    size: (m) => (m[name] == null ? 0 : 2),
    write(m, dst, off) {
      if (m[name] == null) return;
      dst[off] = BOOL_FIELD_1;
      dst[off + 1] = m[name] ? 1 : 0;
    },
  };
}

/**
 * `IncrReply { sint64 value = 1; }` from an exact value (a number when
 * within 2^53, else a BigInt), always with the field, as protobufjs writes
 * a set field.
 *
 * @example
 * ```ts
 * import { incrReplyWriter } from "./reply_writers.ts";
 * const out = new Uint8Array(incrReplyWriter.size({ value: -1 }));
 * incrReplyWriter.write({ value: -1 }, out, 0); // [0x08, 0x01]
 * ```
 */
export const incrReplyWriter: BodyWriter<{ value: number | bigint }> = {
  size: (m) => 1 + varint64Size(zigzag64(BigInt(m.value))),
  write(m, dst, off) {
    dst[off] = BOOL_FIELD_1; // field 1, varint
    writeVarint64(dst, off + 1, zigzag64(BigInt(m.value)));
  },
};
