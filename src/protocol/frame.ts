/**
 * Frame layout (wire v1): a 24-byte little-endian header, the protobuf body,
 * and a CRC-32 of the body. Readers call {@link checkFrame} first, a cheap
 * look at the header that says whether a whole frame has arrived, and only
 * then read the fields they need; nothing here allocates except
 * {@link encodeFrame}.
 *
 * @module
 */
import { FRAME_OVERHEAD, HEADER_SIZE, MAGIC, VERSION } from "./constants.ts";
import { crc32, crc32Of } from "./crc32.ts";

/** Byte offsets of the header fields. */
export const HeaderOffset = {
  magic: 0,
  version: 4,
  flags: 5,
  code: 6,
  requestId: 8,
  status: 12,
  bodyLen: 16,
  timeoutMs: 20,
} as const;

/** {@link checkFrame}: the bytes so far are a valid prefix; read more. */
export const NEED_MORE: number = 0;
/** {@link checkFrame}: wrong magic or version; the stream cannot be trusted. */
export const BAD_PREAMBLE: number = -1;
/** {@link checkFrame}: `body_len` is over the limit. */
export const BODY_TOO_LARGE: number = -2;

/**
 * Reads a little-endian u32.
 *
 * @example
 * ```ts
 * import { readU32 } from "@evkv/evkv";
 * readU32(new Uint8Array([1, 0, 0, 0]), 0); // 1
 * ```
 */
export function readU32(buf: Uint8Array, off: number): number {
  return (buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16) | (buf[off + 3] << 24)) >>> 0;
}

/**
 * Writes a little-endian u32.
 *
 * @example
 * ```ts
 * import { writeU32 } from "@evkv/evkv";
 * const b = new Uint8Array(4);
 * writeU32(b, 0, 0x564b5645); // b is "EVKV"
 * ```
 */
export function writeU32(buf: Uint8Array, off: number, value: number): void {
  buf[off] = value;
  buf[off + 1] = value >>> 8;
  buf[off + 2] = value >>> 16;
  buf[off + 3] = value >>> 24;
}

/**
 * Says whether `buf[start, end)` begins with a whole frame, without parsing
 * the body. Returns the frame's total length when it has fully arrived,
 * {@link NEED_MORE} when more bytes are needed, {@link BAD_PREAMBLE} when the
 * magic or version is wrong (checked on as many bytes as have arrived, so
 * garbage is caught early), and {@link BODY_TOO_LARGE} when `body_len`
 * exceeds `maxBody`.
 *
 * @example
 * ```ts
 * import { checkFrame, encodeFrame } from "@evkv/evkv";
 * const f = encodeFrame({ flags: 0, code: 1, requestId: 7, status: 0, timeoutMs: 0 }, new Uint8Array(3));
 * checkFrame(f, 0, f.length, 1024); // 31
 * checkFrame(f, 0, 10, 1024); // 0: read more
 * ```
 */
export function checkFrame(buf: Uint8Array, start: number, end: number, maxBody: number): number {
  const avail = end - start;
  if (avail < HEADER_SIZE) {
    const n = avail < 5 ? avail : 5;
    for (let i = 0; i < n; i++) {
      const want = i === 4 ? VERSION : (MAGIC >>> (8 * i)) & 0xff;
      if (buf[start + i] !== want) return BAD_PREAMBLE;
    }
    return NEED_MORE;
  }
  if (readU32(buf, start) !== MAGIC || buf[start + 4] !== VERSION) return BAD_PREAMBLE;
  const bodyLen = readU32(buf, start + HeaderOffset.bodyLen);
  if (bodyLen > maxBody) return BODY_TOO_LARGE;
  const total = bodyLen + FRAME_OVERHEAD;
  return avail >= total ? total : NEED_MORE;
}

/**
 * The total length the wire v1 header at `start` claims for its frame
 * (`body_len` plus header and trailer), or 0 while the header is not all in
 * `buf[start, end)`. A claim, not a check: for sizing a receive buffer.
 *
 * @example
 * ```ts
 * import { claimedFrameSize } from "./frame.ts";
 * claimedFrameSize(new Uint8Array(10), 0, 10); // 0: no whole header yet
 * ```
 */
export function claimedFrameSize(buf: Uint8Array, start: number, end: number): number {
  if (end - start < HEADER_SIZE) return 0;
  return readU32(buf, start + HeaderOffset.bodyLen) + FRAME_OVERHEAD;
}

/**
 * The header fields a sender chooses; `magic`, `version` and `body_len` are
 * filled in from the protocol and the body.
 */
export interface FrameFields {
  /** Bits of {@link Flags}. */
  flags: number;
  /** Method code. */
  code: number;
  /** Chosen by the client; echoed by the reply. */
  requestId: number;
  /** 0 in requests; the reply status otherwise. */
  status: number;
  /** Client's deadline in ms, 0 for none; 0 in replies. */
  timeoutMs: number;
}

/**
 * Writes a header at `off`.
 *
 * @example
 * ```ts
 * import { writeHeader } from "@evkv/evkv";
 * const buf = new Uint8Array(24);
 * writeHeader(buf, 0, 1, 1, 42, 0, 0, 0);
 * ```
 */
export function writeHeader(
  buf: Uint8Array,
  off: number,
  flags: number,
  code: number,
  requestId: number,
  status: number,
  bodyLen: number,
  timeoutMs: number,
): void {
  writeU32(buf, off, MAGIC);
  buf[off + 4] = VERSION;
  buf[off + 5] = flags;
  buf[off + 6] = code;
  buf[off + 7] = code >>> 8;
  writeU32(buf, off + HeaderOffset.requestId, requestId);
  writeU32(buf, off + HeaderOffset.status, status);
  writeU32(buf, off + HeaderOffset.bodyLen, bodyLen);
  writeU32(buf, off + HeaderOffset.timeoutMs, timeoutMs);
}

/**
 * Writes a whole frame (header, `body`, crc) into `dst` at `off` and returns
 * the offset just past it. `dst` must have `body.length + 28` bytes free.
 *
 * @example
 * ```ts
 * import { encodeFrameInto } from "@evkv/evkv";
 * const dst = new Uint8Array(64);
 * const end = encodeFrameInto(dst, 0, { flags: 0, code: 1, requestId: 1, status: 0, timeoutMs: 0 }, new Uint8Array(0));
 * // end === 28
 * ```
 */
export function encodeFrameInto(
  dst: Uint8Array,
  off: number,
  f: FrameFields,
  body: Uint8Array,
): number {
  writeHeader(dst, off, f.flags, f.code, f.requestId, f.status, body.length, f.timeoutMs);
  dst.set(body, off + HEADER_SIZE);
  const crcAt = off + HEADER_SIZE + body.length;
  writeU32(dst, crcAt, body.length === 0 ? 0 : crc32(body));
  return crcAt + 4;
}

/**
 * Builds a whole frame in a new buffer.
 *
 * @example
 * ```ts
 * import { encodeFrame, Flags } from "@evkv/evkv";
 * const frame = encodeFrame({ flags: Flags.ONEWAY, code: 3, requestId: 9, status: 0, timeoutMs: 0 }, new Uint8Array([1]));
 * frame.length; // 29
 * ```
 */
export function encodeFrame(f: FrameFields, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + FRAME_OVERHEAD);
  encodeFrameInto(out, 0, f, body);
  return out;
}

/** A frame's header fields as read by {@link decodeHeader}. */
export interface FrameHeader extends FrameFields {
  /** Length of the body that follows the header. */
  bodyLen: number;
}

/**
 * Reads the header at `off` (after {@link checkFrame} said it is whole).
 *
 * @example
 * ```ts
 * import { decodeHeader, encodeFrame } from "@evkv/evkv";
 * const f = encodeFrame({ flags: 0, code: 2, requestId: 5, status: 0, timeoutMs: 100 }, new Uint8Array(0));
 * decodeHeader(f, 0).requestId; // 5
 * ```
 */
export function decodeHeader(buf: Uint8Array, off: number): FrameHeader {
  return {
    flags: buf[off + HeaderOffset.flags],
    code: buf[off + HeaderOffset.code] | (buf[off + HeaderOffset.code + 1] << 8),
    requestId: readU32(buf, off + HeaderOffset.requestId),
    status: readU32(buf, off + HeaderOffset.status),
    bodyLen: readU32(buf, off + HeaderOffset.bodyLen),
    timeoutMs: readU32(buf, off + HeaderOffset.timeoutMs),
  };
}

/**
 * Whether the trailer of the whole frame at `off` (of total length `total`)
 * matches its body.
 *
 * @example
 * ```ts
 * import { crcMatches, encodeFrame } from "@evkv/evkv";
 * const f = encodeFrame({ flags: 0, code: 1, requestId: 1, status: 0, timeoutMs: 0 }, new Uint8Array([7]));
 * crcMatches(f, 0, f.length); // true
 * ```
 */
export function crcMatches(buf: Uint8Array, off: number, total: number): boolean {
  const bodyStart = off + HEADER_SIZE;
  const bodyEnd = off + total - 4;
  const want = readU32(buf, bodyEnd);
  return (bodyEnd === bodyStart ? 0 : crc32Of(buf, bodyStart, bodyEnd)) === want;
}
