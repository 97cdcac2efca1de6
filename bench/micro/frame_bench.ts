/**
 * Frame check and parse: what an IO worker does to every request before it
 * routes it, on a typical Get request and on a read buffer of 64 frames.
 *
 * Run: `deno bench bench/micro/frame_bench.ts`
 *
 * @module
 */
import { DEFAULT_MAX_BODY, KvMethod, pb } from "../../mod.ts";
import {
  checkFrame,
  crcMatches,
  decodeHeader,
  encodeFrame,
  HeaderOffset,
  readU32,
} from "../../src/protocol/frame.ts";

const key = new TextEncoder().encode("bench:00001234");
const get = encodeFrame(
  { flags: 0, code: KvMethod.Get, requestId: 7, status: 0, timeoutMs: 0 },
  pb.GetRequest.encode({ key }).finish(),
);
const put = encodeFrame(
  { flags: 0, code: KvMethod.Put, requestId: 8, status: 0, timeoutMs: 0 },
  pb.PutRequest.encode({ key, value: new Uint8Array(100).fill(7) }).finish(),
);
const BATCH = 64;
const stream = new Uint8Array(BATCH * put.length);
let streamEnd = 0;
for (let i = 0; i < BATCH; i++) {
  const f = i % 2 ? put : get;
  stream.set(f, streamEnd);
  streamEnd += f.length;
}

// Results feed this so that the JIT cannot drop the work.
let sink = 0;

Deno.bench({
  name: "checkFrame (whole Get frame)",
  group: "frame check",
  baseline: true,
  fn() {
    sink ^= checkFrame(get, 0, get.length, DEFAULT_MAX_BODY);
  },
});

Deno.bench({
  name: "checkFrame (partial header)",
  group: "frame check",
  fn() {
    sink ^= checkFrame(get, 0, 10, DEFAULT_MAX_BODY);
  },
});

Deno.bench({
  name: "decodeHeader (object)",
  group: "frame parse",
  baseline: true,
  fn() {
    sink ^= decodeHeader(get, 0).requestId;
  },
});

Deno.bench({
  name: "read fields in place (no object)",
  group: "frame parse",
  fn() {
    sink ^= readU32(get, HeaderOffset.requestId) ^ get[HeaderOffset.flags] ^
      readU32(get, HeaderOffset.timeoutMs);
  },
});

Deno.bench({
  name: "crcMatches (Get, 16 B body)",
  group: "frame parse",
  fn() {
    sink ^= crcMatches(get, 0, get.length) ? 1 : 0;
  },
});

Deno.bench({
  name: "crcMatches (Put, 118 B body)",
  group: "frame parse",
  fn() {
    sink ^= crcMatches(put, 0, put.length) ? 1 : 0;
  },
});

Deno.bench({
  name: `cut ${BATCH} frames: check + fields + crc`,
  group: "read buffer",
  baseline: true,
  fn() {
    let off = 0;
    while (off < streamEnd) {
      const len = checkFrame(stream, off, streamEnd, DEFAULT_MAX_BODY);
      if (len <= 0) throw new Error("bad stream");
      sink ^= readU32(stream, off + HeaderOffset.requestId);
      if (!crcMatches(stream, off, len)) throw new Error("bad crc");
      off += len;
    }
  },
});

Deno.bench({
  name: `cut ${BATCH} frames: check + decodeHeader + crc`,
  group: "read buffer",
  fn() {
    let off = 0;
    while (off < streamEnd) {
      const len = checkFrame(stream, off, streamEnd, DEFAULT_MAX_BODY);
      if (len <= 0) throw new Error("bad stream");
      sink ^= decodeHeader(stream, off).requestId;
      if (!crcMatches(stream, off, len)) throw new Error("bad crc");
      off += len;
    }
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
