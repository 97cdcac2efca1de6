/**
 * The wire v1 codec (`docs/protocol.md`). A frame is a 24-byte header, a
 * protobuf body and its CRC-32; replies from shards are already whole wire
 * v1 frames, so they are copied to the socket as they are.
 *
 * @module
 */
import { Flags, HEADER_SIZE, Status } from "../../protocol/constants.ts";
import {
  BAD_PREAMBLE,
  checkFrame,
  claimedFrameSize,
  crcMatches,
  HeaderOffset,
  readU32,
} from "../../protocol/frame.ts";
import { Counter, Res } from "../../stats/resources.ts";
import {
  CLOSE_AFTER_REPLY,
  CLOSE_NOW,
  type Codec,
  type Dispatcher,
  type ReplySink,
} from "./connection.ts";
import type { Connection } from "./connection.ts";
import type { RequestBatch } from "../service.ts";
import { errorOutcome } from "../outcome.ts";

/** Answers of wire v1 requests: wire v1 frames, written as they are. */
export const wireSink: ReplySink = {
  frame(conn, frame) {
    const out = conn.output;
    if (!out.admit(frame.length)) return false;
    out.queueBytes(frame);
    return true;
  },
  outcome(conn, code, requestId, outcome) {
    conn.output.queueReply(code, requestId, outcome);
  },
};

function codeAt(buf: Uint8Array, off: number): number {
  return buf[off + HeaderOffset.code] | (buf[off + HeaderOffset.code + 1] << 8);
}

/**
 * The cheap check of the frame at `start` (see {@link Codec.take}'s
 * results); a frame over the body limit is answered TOO_LARGE here. A
 * whole frame is taken from here on: it counts as `in_packet` until the
 * channel copies it (see `Connection.packetBytes`).
 */
export function checkWireFrame(
  conn: Connection,
  buf: Uint8Array,
  start: number,
  end: number,
  maxBody: number,
): number {
  const total = checkFrame(buf, start, end, maxBody);
  if (total > 0) {
    conn.packetBytes = total;
    conn.stats.alloc(Res.in_packet, total);
  }
  if (total >= 0) return total;
  if (total === BAD_PREAMBLE) {
    // Without a trusted header there is no length to skip: the stream
    // is lost, and so is the connection (no reply, per the spec).
    conn.stats.count(Counter.bad_preambles);
    return CLOSE_NOW;
  }
  conn.stats.count(Counter["errors.TOO_LARGE"]);
  // A ONEWAY request never gets a reply, not even this one.
  if (!(buf[start + HeaderOffset.flags] & Flags.ONEWAY)) {
    const bodyLen = readU32(buf, start + HeaderOffset.bodyLen);
    conn.output.queueReply(
      codeAt(buf, start),
      readU32(buf, start + HeaderOffset.requestId),
      errorOutcome(
        Status.TOO_LARGE,
        `Read frame: body of ${bodyLen} bytes is over the ${maxBody}-byte limit`,
      ),
    );
  }
  return CLOSE_AFTER_REPLY;
}

/**
 * Dispatches the whole frame `buf[off, off + total)` that
 * {@link checkWireFrame} took: checks its CRC, reads its header, and calls
 * its method.
 */
export function dispatchWireFrame(
  conn: Connection,
  buf: Uint8Array,
  off: number,
  total: number,
  dispatcher: Dispatcher,
): void {
  const flags = buf[off + HeaderOffset.flags];
  const code = codeAt(buf, off);
  const requestId = readU32(buf, off + HeaderOffset.requestId);
  if (!crcMatches(buf, off, total)) {
    const o = errorOutcome(
      Status.CRC_MISMATCH,
      "Check frame: the body's CRC-32 does not match the trailer",
    );
    dispatcher.reject(conn, wireSink, code, requestId, flags, o);
    return;
  }
  const timeoutMs = readU32(buf, off + HeaderOffset.timeoutMs);
  const deadline = timeoutMs === 0 ? 0 : conn.readAt + timeoutMs;
  const bodyEnd = off + total - 4;
  dispatcher.call(
    conn,
    wireSink,
    code,
    requestId,
    flags,
    buf,
    off + HEADER_SIZE,
    bodyEnd,
    deadline,
    false,
  );
}

/** The wire v1 codec. */
export const wireCodec: Codec = {
  name: "evkv wire v1",

  open() {},

  take(conn, buf, start, end, maxBody, dispatcher): number {
    const total = checkWireFrame(conn, buf, start, end, maxBody);
    if (total > 0) dispatchWireFrame(conn, buf, start, total, dispatcher);
    return total;
  },

  sizeHint: claimedFrameSize,

  collect(buf: Uint8Array, start: number, end: number, maxBody: number, batch: RequestBatch): void {
    batch.reset(buf);
    for (let at = start;;) {
      const total = checkFrame(buf, at, end, maxBody);
      if (total <= 0 || !batch.add(codeAt(buf, at), at + HEADER_SIZE, at + total - 4)) return;
      at += total;
    }
  },
};
