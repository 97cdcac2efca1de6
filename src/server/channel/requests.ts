/**
 * Requests, IO worker → shard: the layout of a request record in a
 * {@link Ring}, written here at the IO end ({@link writeRequest}) and read
 * here at the shard end ({@link readRequest}). A record carries what the
 * executor needs: the frame's header fields, the deadline and the body (its
 * CRC was checked by the IO worker). Offsets are bytes from the payload
 * start; word indexes are `(payload >>> 2) + field`.
 *
 * @module
 */
import type { Ring } from "./ring.ts";

/** Request record: u32 words, then an f64 deadline, then the body. */
export const Req = {
  /** Word: IO-worker-local connection id. */
  conn: 0,
  /** Word: the frame's request_id. */
  requestId: 1,
  /** Word: code (low 16 bits) | flags << 16. */
  codeFlags: 2,
  /** Word: body length. */
  bodyLen: 3,
  /** f64 at byte 16: Date.now() deadline, 0 for none. */
  deadlineByte: 16,
  /** Word: fan-out id (0 when the request runs on one shard). */
  fanout: 6,
  /** Word: the connection's receive buffer size, for {@link CallerFootprint}. */
  receiveBytes: 7,
  /** Word: the sending IO worker's generation, echoed in the reply. */
  generation: 8,
} as const;
/** Bytes before the body of a request record (8-aligned). */
export const REQUEST_HEADER = 40;

/**
 * A request record's fields as {@link readRequest} found them. A consumer
 * keeps one and reuses it for every record, so reading allocates nothing.
 *
 * @example
 * ```ts ignore
 * const r = new RequestRecord();
 * readRequest(ring, off, r);
 * r.code; // the method code
 * ```
 */
export class RequestRecord {
  /** IO-worker-local connection id. */
  conn = 0;
  /** The frame's request_id. */
  requestId = 0;
  /** Method code. */
  code = 0;
  /** The frame's flags. */
  flags = 0;
  /** Body length. */
  bodyLen = 0;
  /** Fan-out id, 0 when the request runs on one shard. */
  fanout = 0;
  /** The sending IO worker's generation, to echo in the reply. */
  generation = 0;
  /** The connection's receive buffer size when the request was pushed. */
  receiveBytes = 0;
  /** Date.now() deadline, 0 for none. */
  deadline = 0;
  /** Where the body starts in the ring's bytes (`ring.u8`). */
  bodyAt = 0;
}

/**
 * Writes a request record at `off`, a payload of
 * `REQUEST_HEADER + body.length` bytes reserved in `ring`; the caller
 * commits it.
 *
 * @example
 * ```ts ignore
 * const off = ring.reserve(REQUEST_HEADER + body.length);
 * if (off >= 0) writeRequest(ring, off, 1, 16384, 7, 1, 0, body, 0, 0, 1);
 * ring.commit();
 * ```
 */
export function writeRequest(
  ring: Ring,
  off: number,
  conn: number,
  receiveBytes: number,
  requestId: number,
  code: number,
  flags: number,
  body: Uint8Array,
  deadline: number,
  fanout: number,
  generation: number,
): void {
  const w = off >>> 2;
  const u32 = ring.u32;
  u32[w + Req.conn] = conn;
  u32[w + Req.receiveBytes] = receiveBytes;
  u32[w + Req.requestId] = requestId;
  u32[w + Req.codeFlags] = code | (flags << 16);
  u32[w + Req.bodyLen] = body.length;
  u32[w + Req.fanout] = fanout;
  u32[w + Req.generation] = generation;
  ring.f64[(off + Req.deadlineByte) >>> 3] = deadline;
  ring.u8.set(body, off + REQUEST_HEADER);
}

/**
 * Reads the request record at `off` (from `ring.next()`) into `r`.
 *
 * @example
 * ```ts ignore
 * for (let off; (off = ring.next()) >= 0;) readRequest(ring, off, r);
 * ```
 */
export function readRequest(ring: Ring, off: number, r: RequestRecord): void {
  const w = off >>> 2;
  const u32 = ring.u32;
  r.conn = u32[w + Req.conn];
  r.requestId = u32[w + Req.requestId];
  const codeFlags = u32[w + Req.codeFlags];
  r.code = codeFlags & 0xffff;
  r.flags = codeFlags >>> 16;
  r.bodyLen = u32[w + Req.bodyLen];
  r.fanout = u32[w + Req.fanout];
  r.generation = u32[w + Req.generation];
  r.receiveBytes = u32[w + Req.receiveBytes];
  r.deadline = ring.f64[(off + Req.deadlineByte) >>> 3];
  r.bodyAt = off + REQUEST_HEADER;
}
