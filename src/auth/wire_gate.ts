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
import type { CallSite, Codec } from "../server/io/connection.ts";
import type { Connection } from "../server/io/connection.ts";
import type { Outcome } from "../server/outcome.ts";
import { wireCodec, wireSink } from "../server/io/wire_codec.ts";
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

  dispatch(conn: Connection, buf: Uint8Array, off: number, total: number, site: CallSite): void {
    const auth = conn.auth;
    const code = buf[off + HeaderOffset.code] | (buf[off + HeaderOffset.code + 1] << 8);
    if (
      auth !== null && (auth.restricted || code === KvMethod.Auth) && crcMatches(buf, off, total)
    ) {
      const refusal = wireGate(auth, code, buf, off + HEADER_SIZE, off + total - 4);
      if (refusal !== null) {
        const requestId = readU32(buf, off + HeaderOffset.requestId);
        site.reject(conn, wireSink, code, requestId, buf[off + HeaderOffset.flags], refusal);
        return;
      }
    }
    wireCodec.dispatch(conn, buf, off, total, site);
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
