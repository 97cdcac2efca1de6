/**
 * The KV service's protobuf message types, generated from
 * `proto/evkv/v1/kv.proto` (see `deno task gen`), under short names.
 *
 * @module
 */
import $protobuf from "protobufjs/minimal";
import { evkv } from "./gen/kv.js";

// Under Deno, protobufjs finds Node's Buffer and the "long" package. Turn
// both off: uint64 then decodes to a plain number (counters stay far below
// 2^53), and bytes fields are plain Uint8Array views, as users and
// `assert.deepStrictEqual` expect, instead of Buffer subclasses.
$protobuf.util.Long = null as unknown as typeof $protobuf.util.Long;
$protobuf.util.Buffer = null as unknown as typeof $protobuf.util.Buffer;
$protobuf.configure();

/** `evkv.v1` message classes, as generated. */
export const pb: typeof evkv.v1 = evkv.v1;
/** Namespace of the generated `evkv.v1` types, for type positions. */
export type { evkv };

/**
 * Encodes an `evkv.v1.Error` body.
 *
 * @example
 * ```ts
 * import { encodeError } from "@evkv/evkv";
 * const body = encodeError(1, "Get needs a key of 1 to 1024 bytes");
 * ```
 */
export function encodeError(code: number, message: string): Uint8Array {
  return evkv.v1.Error.encode({ code, message }).finish();
}
