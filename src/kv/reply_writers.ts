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
 * `GetReply { bool found = 1; bytes value = 2; }`.
 *
 * @example
 * ```ts
 * import { getReplyWriter } from "./reply_writers.ts";
 * const reply = { found: true, value: new Uint8Array([7]) };
 * const out = new Uint8Array(getReplyWriter.size(reply));
 * getReplyWriter.write(reply, out, 0); // [0x08, 1, 0x12, 1, 7]
 * ```
 */
export const getReplyWriter: BodyWriter<evkv.v1.IGetReply> = {
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
