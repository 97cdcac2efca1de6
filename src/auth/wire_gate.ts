/**
 * wire v1 for servers with passwords or ACL users: the plain wire v1 codec with
 * the auth gate in front of every call. Servers with neither use the plain
 * wire v1 codec, whose dispatch has no check at all (measured: a check
 * there cost a few percent of CPU per request in the served path, where
 * V8 inlines the dispatch); their `Auth` calls reach the dispatcher as an
 * unknown method and are answered by its fallback ({@link wireAuthFallback}).
 *
 * @module
 */
import { KvMethod } from "../protocol/constants.ts";
import { crcMatches, HeaderOffset, readU32 } from "../protocol/frame.ts";
import type { Codec } from "../server/io/connection.ts";
import type { Connection } from "../server/io/connection.ts";
import type { Outcome } from "../server/outcome.ts";
import { checkWireFrame, dispatchWireFrame, wireCodec, wireSink } from "../server/io/wire_codec.ts";
import { wireGate } from "./guard.ts";

const HEADER_SIZE = 24;

/**
 * The wire v1 codec behind the auth gate. The gate runs only after the
 * frame's CRC matched (a corrupted `Auth` must never be tried), so a
 * restricted connection's frames have their CRC computed twice; an
 * unrestricted one's go straight through.
 *
 * @example
 * ```ts
 * import { guardedWireCodec } from "./wire_gate.ts";
 * console.log(guardedWireCodec.name);
 * ```
 */
export const guardedWireCodec: Codec = {
  ...wireCodec,
  name: "evkv wire v1, authenticated",

  take(conn, buf, start, end, maxBody, dispatcher): number {
    const total = checkWireFrame(conn, buf, start, end, maxBody);
    if (total <= 0) return total;
    const auth = conn.auth;
    const code = buf[start + HeaderOffset.code] | (buf[start + HeaderOffset.code + 1] << 8);
    if (
      auth !== null && (auth.restricted || code === KvMethod.Auth) && crcMatches(buf, start, total)
    ) {
      const refusal = wireGate(auth, code, buf, start + HEADER_SIZE, start + total - 4);
      if (refusal !== null) {
        const requestId = readU32(buf, start + HeaderOffset.requestId);
        dispatcher.reject(
          conn,
          wireSink,
          code,
          requestId,
          buf[start + HeaderOffset.flags],
          refusal,
        );
        return total;
      }
    }
    dispatchWireFrame(conn, buf, start, total, dispatcher);
    return total;
  },
};

/**
 * The dispatcher's answer to a call no method takes, on a server with a
 * guard: `Auth` on an ungated connection (a server with no password),
 * answered as the spec says; null for anything else.
 *
 * @example
 * ```ts
 * // new Dispatcher({ ..., fallback: wireAuthFallback })
 * ```
 */
export function wireAuthFallback(
  conn: Connection,
  code: number,
  bytes: Uint8Array,
  start: number,
  end: number,
): Outcome | null {
  if (code !== KvMethod.Auth || conn.auth === null) return null;
  return wireGate(conn.auth, code, bytes, start, end);
}
