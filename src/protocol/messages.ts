/**
 * The KV service's protobuf message types, generated from
 * `proto/evkv/v1/kv.proto` (see `deno task gen`), under short names.
 *
 * @module
 */
// Must come first: it configures protobufjs before gen/kv.js loads.
import "./pb_runtime.ts";
import { evkv } from "./gen/kv.js";

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
