/**
 * Numbers fixed by the wire spec (`docs/protocol.md`, wire v1): header
 * layout, flags and status codes. Nothing here is configurable.
 *
 * @module
 */

/** The four bytes `EVKV` read as a little-endian u32. */
export const MAGIC = 0x564b5645;
/** The only protocol version this server speaks. */
export const VERSION = 1;
/** Bytes in a frame header. */
export const HEADER_SIZE = 24;
/** Bytes in the CRC-32 trailer after the body. */
export const TRAILER_SIZE = 4;
/** Bytes a frame takes beyond its body. */
export const FRAME_OVERHEAD: number = HEADER_SIZE + TRAILER_SIZE;
/** Default limit on `body_len`, 4 MiB, as the spec states. */
export const DEFAULT_MAX_BODY = 4 * 1024 * 1024;
/**
 * How far a reply body may exceed the request body limit. A Put of a value
 * right at the limit is legal, and the reply that returns it (a Get, or a
 * Scan entry) wraps it in its key and a few bytes of protobuf framing; 4 KiB
 * covers the longest key (1 KiB) and the framing. Clients accept replies up
 * to their limit plus this.
 */
export const REPLY_SLACK = 4096;

/**
 * Bits of the header's `flags` byte.
 *
 * @example
 * ```ts
 * import { Flags } from "@evkv/evkv";
 * const isErrorReply = (flags: number) => (flags & Flags.ERROR) !== 0;
 * ```
 */
export const Flags = {
  /** Set on every reply. */
  REPLY: 1,
  /** The reply body is an `evkv.v1.Error`. */
  ERROR: 2,
  /** The request wants no reply. */
  ONEWAY: 4,
} as const;

/**
 * Status names in code order: the index of a name is its code. This one
 * list drives the `Status` table, `statusName` and the `errors.*` counters.
 */
export const STATUS_NAMES = [
  "OK",
  "BAD_REQUEST",
  "CRC_MISMATCH",
  "UNKNOWN_METHOD",
  "TOO_LARGE",
  "OVERLOADED",
  "DEADLINE_EXCEEDED",
  "INTERNAL",
  "SHUTTING_DOWN",
  "NO_MEMORY",
  "UNAUTHENTICATED",
  "PERMISSION_DENIED",
] as const;

/** One of the spec's status names. */
export type StatusName = typeof STATUS_NAMES[number];

/**
 * Status codes of replies, by name.
 *
 * @example
 * ```ts
 * import { Status } from "@evkv/evkv";
 * console.log(Status.TOO_LARGE); // 4
 * ```
 */
export const Status: { readonly [K in StatusName]: number } = Object.freeze(
  Object.fromEntries(STATUS_NAMES.map((name, code) => [name, code])) as {
    [K in StatusName]: number;
  },
);

/**
 * The name of a status code, or `STATUS_<n>` for a code the spec does not
 * define.
 *
 * @example
 * ```ts
 * import { statusName } from "@evkv/evkv";
 * console.log(statusName(2)); // "CRC_MISMATCH"
 * ```
 */
export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `STATUS_${code}`;
}

/**
 * Method codes of the KV service (package `evkv.v1`).
 *
 * @example
 * ```ts
 * import { KvMethod } from "@evkv/evkv";
 * console.log(KvMethod.Get); // 2
 * ```
 */
export const KvMethod = {
  Ping: 1,
  Get: 2,
  Put: 3,
  Delete: 4,
  Scan: 5,
  Stats: 6,
  Auth: 7,
  Incr: 8,
} as const;

/**
 * Internal methods of the KV service: not part of wire v1 (the wire v1 port
 * answers UNKNOWN_METHOD), used by the RESP front door.
 *
 * @example
 * ```ts
 * import { KvInternalMethod } from "@evkv/evkv";
 * console.log(KvInternalMethod.Count.toString(16)); // "8002"
 * ```
 */
export const KvInternalMethod = {
  /** Put only if absent or present (SET NX / XX). */
  PutIf: 0x8001,
  /** Number of keys (DBSIZE). */
  Count: 0x8002,
} as const;
