// Unit tests of the wire-v1 building blocks: frame header layout, CRC-32,
// checkFrame's incremental parsing, the generated protobuf types, the status
// table and key routing. ../shared/specs/wire-v1.md is the reference.
import assert from "node:assert/strict";
import { crc32 as zlibCrc32 } from "node:zlib";
import {
  DEFAULT_MAX_BODY,
  Flags,
  FRAME_OVERHEAD,
  HEADER_SIZE,
  KvMethod,
  MAGIC,
  Status,
  STATUS_NAMES,
  statusName,
  TRAILER_SIZE,
  VERSION,
} from "../src/protocol/constants.ts";
import {
  crc32,
  crc32Combine,
  crc32Js,
  crc32Range,
  ZLIB_CRC_THRESHOLD,
} from "../src/protocol/crc32.ts";
import {
  BAD_PREAMBLE,
  BODY_TOO_LARGE,
  checkFrame,
  crcMatches,
  decodeHeader,
  encodeFrame,
  encodeFrameInto,
  type FrameFields,
  HeaderOffset,
  NEED_MORE,
  readU32,
  writeHeader,
  writeU32,
} from "../src/protocol/frame.ts";
import { encodeError, pb } from "../src/protocol/messages.ts";
import { hashBytes, keyShard } from "../src/kv/route.ts";
import { concat, seededRandom } from "./support.ts";

const enc = new TextEncoder();

const prng = seededRandom;

function randomBytes(n: number, rand: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");
}

function fromHex(s: string): Uint8Array {
  return new Uint8Array(s.trim().split(/\s+/).map((h) => parseInt(h, 16)));
}

const REQ: FrameFields = { flags: 0, code: KvMethod.Get, requestId: 7, status: 0, timeoutMs: 0 };

// ---------------------------------------------------------------------------
// Constants

Deno.test("the constants match the spec's frame layout", () => {
  assert.equal(HEADER_SIZE, 24);
  assert.equal(TRAILER_SIZE, 4);
  assert.equal(FRAME_OVERHEAD, 28);
  assert.equal(VERSION, 1);
  assert.equal(DEFAULT_MAX_BODY, 4 * 1024 * 1024);
  const m = new Uint8Array(4);
  writeU32(m, 0, MAGIC);
  assert.equal(new TextDecoder().decode(m), "EVKV");
  assert.deepEqual({ ...Flags }, { REPLY: 1, ERROR: 2, ONEWAY: 4 });
  assert.deepEqual(
    { ...KvMethod },
    { Ping: 1, Get: 2, Put: 3, Delete: 4, Scan: 5, Stats: 6, Auth: 7, Incr: 8 },
  );
  assert.deepEqual({ ...HeaderOffset }, {
    magic: 0,
    version: 4,
    flags: 5,
    code: 6,
    requestId: 8,
    status: 12,
    bodyLen: 16,
    timeoutMs: 20,
  });
});

// ---------------------------------------------------------------------------
// Golden header bytes

Deno.test("writeHeader lays out every field little-endian at the spec's offsets", () => {
  const buf = new Uint8Array(24);
  writeHeader(buf, 0, 0x05, 0xabcd, 0xfffffffe, 0x00000008, 0x00010203, 0x80000001);
  assert.deepEqual(
    buf,
    new Uint8Array([
      0x45,
      0x56,
      0x4b,
      0x56, // magic "EVKV"
      0x01, // version
      0x05, // flags
      0xcd,
      0xab, // code 0xABCD
      0xfe,
      0xff,
      0xff,
      0xff, // request_id 0xFFFFFFFE
      0x08,
      0x00,
      0x00,
      0x00, // status 8
      0x03,
      0x02,
      0x01,
      0x00, // body_len 0x00010203
      0x01,
      0x00,
      0x00,
      0x80, // timeout_ms 0x80000001
    ]),
  );
});

Deno.test("writeHeader at an offset touches only its own 24 bytes", () => {
  const buf = new Uint8Array(32).fill(0xee);
  writeHeader(buf, 4, 0, 1, 1, 0, 0, 0);
  assert.deepEqual(buf.subarray(0, 4), new Uint8Array(4).fill(0xee));
  assert.deepEqual(buf.subarray(28), new Uint8Array(4).fill(0xee));
  assert.deepEqual(
    buf.subarray(4, 28),
    fromHex("45 56 4b 56 01 00 01 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
  );
});

Deno.test("encodeFrame produces the exact bytes of a Get request for key a", () => {
  const body = pb.GetRequest.encode({ key: enc.encode("a") }).finish();
  const frame = encodeFrame(REQ, body);
  assert.equal(
    hex(frame),
    "45 56 4b 56 01 00 02 00 07 00 00 00 00 00 00 00 03 00 00 00 00 00 00 00" +
      " 0a 01 61 4b 3c 78 d1",
  );
});

Deno.test("encodeFrame produces the exact bytes of a reply with high bits in every field", () => {
  const frame = encodeFrame(
    {
      flags: Flags.REPLY | Flags.ERROR,
      code: 0xabcd,
      requestId: 0xfffffffe,
      status: 4,
      timeoutMs: 0,
    },
    new Uint8Array(0),
  );
  assert.deepEqual(
    frame,
    fromHex(
      "45 56 4b 56 01 03 cd ab fe ff ff ff 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    ),
  );
});

Deno.test("encodeFrameInto writes at an offset and returns the end of the frame", () => {
  const body = new Uint8Array([1, 2, 3]);
  const dst = new Uint8Array(100).fill(0xaa);
  const end = encodeFrameInto(dst, 10, REQ, body);
  assert.equal(end, 10 + 24 + 3 + 4);
  assert.deepEqual(dst.subarray(10, end), encodeFrame(REQ, body));
  assert.equal(dst[9], 0xaa);
  assert.equal(dst[end], 0xaa);
});

Deno.test("readU32 and writeU32 round-trip values with the top bit set as unsigned numbers", () => {
  const b = new Uint8Array(8);
  for (const v of [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x12345678]) {
    writeU32(b, 3, v);
    assert.equal(readU32(b, 3), v);
  }
  writeU32(b, 0, 0x12345678);
  assert.deepEqual(b.subarray(0, 4), new Uint8Array([0x78, 0x56, 0x34, 0x12]));
});

// ---------------------------------------------------------------------------
// CRC-32

Deno.test("crc32 and crc32Js both give 0xCBF43926 for the check string 123456789", () => {
  const check = enc.encode("123456789");
  assert.equal(crc32(check), 0xcbf43926);
  assert.equal(crc32Js(check), 0xcbf43926);
  assert.equal(zlibCrc32(check) >>> 0, 0xcbf43926);
});

Deno.test("crc32Combine gives the CRC-32 of two parts joined, from the parts' CRCs", () => {
  const rand = prng(7);
  const data = randomBytes(5000, rand);
  for (let i = 0; i < 300; i++) {
    const cut = Math.floor(rand() * 200);
    const end = cut + Math.floor(rand() * 4000);
    const a = data.subarray(0, cut);
    const b = data.subarray(cut, end);
    const want = zlibCrc32(data.subarray(0, end)) >>> 0;
    assert.equal(crc32Combine(crc32(a), crc32(b), b.length), want, `${a.length} + ${b.length}`);
  }
  assert.equal(crc32Combine(0xcbf43926, 0, 0), 0xcbf43926, "an empty tail changes nothing");
});

Deno.test("crc32 and crc32Js agree with node:zlib for every length from 0 to 600", () => {
  const rand = prng(1);
  const data = randomBytes(600, rand);
  for (let n = 0; n <= 600; n++) {
    const b = data.subarray(0, n);
    const want = zlibCrc32(b) >>> 0;
    assert.equal(crc32Js(b), want, `crc32Js, length ${n}`);
    assert.equal(crc32(b), want, `crc32, length ${n}`);
  }
  for (let start = 1; start < 5; start++) {
    for (let n = 0; n <= 64; n++) {
      const want = zlibCrc32(data.subarray(start, start + n)) >>> 0;
      assert.equal(crc32Range(data, start, start + n), want, `crc32Range at ${start}, length ${n}`);
    }
  }
});

Deno.test("crc32 gives the same answer just below, at and just above ZLIB_CRC_THRESHOLD", () => {
  const rand = prng(2);
  for (let n = ZLIB_CRC_THRESHOLD - 9; n <= ZLIB_CRC_THRESHOLD + 9; n++) {
    const b = randomBytes(n, rand);
    const want = zlibCrc32(b) >>> 0;
    assert.equal(crc32(b), want, `length ${n}`);
    assert.equal(crc32Js(b), want, `length ${n}`);
  }
});

Deno.test("crc32 agrees with node:zlib on large random buffers", () => {
  const rand = prng(3);
  for (const n of [4096, 65_537, 1_000_003]) {
    const b = randomBytes(n, rand);
    const want = zlibCrc32(b) >>> 0;
    assert.equal(crc32(b), want, `crc32, length ${n}`);
    assert.equal(crc32Js(b), want, `crc32Js, length ${n}`);
  }
});

Deno.test("crc32 of a subarray view covers only the view's bytes, on both paths", () => {
  const rand = prng(4);
  const big = randomBytes(5000, rand);
  for (const [start, len] of [[3, 10], [5, 300], [1, 4000]]) {
    const view = big.subarray(start, start + len);
    const copy = view.slice();
    const want = zlibCrc32(copy) >>> 0;
    assert.equal(crc32(view), want, `view at ${start}, length ${len}`);
    assert.equal(crc32Js(view), want, `view at ${start}, length ${len}`);
  }
});

Deno.test("an empty body has crc 0 and a trailer of four zero bytes", () => {
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(crc32Js(new Uint8Array(0)), 0);
  const frame = encodeFrame(REQ, new Uint8Array(0));
  assert.equal(frame.length, 28);
  assert.deepEqual(frame.subarray(24), new Uint8Array(4));
});

Deno.test("the trailer is the body's crc written little-endian", () => {
  const body = enc.encode("123456789");
  const frame = encodeFrame(REQ, body);
  assert.deepEqual(frame.subarray(24 + 9), new Uint8Array([0x26, 0x39, 0xf4, 0xcb]));
});

// ---------------------------------------------------------------------------
// checkFrame

function sampleFrame(): Uint8Array {
  return encodeFrame(
    { flags: 0, code: KvMethod.Put, requestId: 0xfffffffe, status: 0, timeoutMs: 250 },
    pb.PutRequest.encode({ key: enc.encode("k"), value: enc.encode("some value"), ttlMs: 9 })
      .finish(),
  );
}

Deno.test("checkFrame asks for more bytes on every proper prefix of a valid frame", () => {
  const frame = sampleFrame();
  for (let n = 0; n < frame.length; n++) {
    assert.equal(checkFrame(frame, 0, n, 1024), NEED_MORE, `prefix of ${n} bytes`);
  }
});

Deno.test("checkFrame returns the total length once the whole frame has arrived", () => {
  const frame = sampleFrame();
  assert.equal(checkFrame(frame, 0, frame.length, 1024), frame.length);
  const empty = encodeFrame(REQ, new Uint8Array(0));
  assert.equal(checkFrame(empty, 0, empty.length, 1024), 28);
});

Deno.test("checkFrame ignores bytes that follow a whole frame, even garbage", () => {
  const frame = sampleFrame();
  const buf = concat(frame, new Uint8Array([0, 1, 2, 0xff, 0xff, 0xff, 0xff, 0x42]));
  for (let end = frame.length; end <= buf.length; end++) {
    assert.equal(checkFrame(buf, 0, end, 1024), frame.length);
  }
});

Deno.test("checkFrame works on a frame that starts at an offset in the buffer", () => {
  const frame = sampleFrame();
  const buf = concat(new Uint8Array([9, 9, 9]), frame);
  for (let end = 3; end < buf.length; end++) {
    assert.equal(checkFrame(buf, 3, end, 1024), NEED_MORE);
  }
  assert.equal(checkFrame(buf, 3, buf.length, 1024), frame.length);
});

Deno.test("checkFrame reports a wrong magic byte as soon as it arrives", () => {
  const frame = sampleFrame();
  for (let i = 0; i < 4; i++) {
    const bad = frame.slice();
    bad[i] ^= 0x20;
    for (let n = i + 1; n <= bad.length; n++) {
      assert.equal(checkFrame(bad, 0, n, 1024), BAD_PREAMBLE, `byte ${i} wrong, ${n} arrived`);
    }
    // Before the bad byte arrives the prefix still looks fine.
    assert.equal(checkFrame(bad, 0, i, 1024), NEED_MORE);
  }
});

Deno.test("checkFrame reports a wrong version as soon as byte 4 arrives", () => {
  const frame = sampleFrame();
  for (const v of [0, 2, 0xff]) {
    const bad = frame.slice();
    bad[4] = v;
    assert.equal(checkFrame(bad, 0, 4, 1024), NEED_MORE);
    for (let n = 5; n <= bad.length; n++) {
      assert.equal(checkFrame(bad, 0, n, 1024), BAD_PREAMBLE, `version ${v}, ${n} arrived`);
    }
  }
});

Deno.test("checkFrame does not judge flags, code or other header bytes before the header is whole", () => {
  const frame = sampleFrame();
  frame[5] = 0xff; // unknown flag bits are ignored on receipt
  frame[6] = 0xff;
  frame[7] = 0xff;
  for (let n = 0; n < frame.length; n++) {
    assert.equal(checkFrame(frame, 0, n, 1024), NEED_MORE);
  }
  assert.equal(checkFrame(frame, 0, frame.length, 1024), frame.length);
});

Deno.test("checkFrame reports BODY_TOO_LARGE from the header alone, and body_len equal to the limit is fine", () => {
  const body = new Uint8Array(100);
  const frame = encodeFrame(REQ, body);
  assert.equal(checkFrame(frame, 0, frame.length, 100), frame.length);
  assert.equal(checkFrame(frame, 0, 24, 100), NEED_MORE);
  assert.equal(checkFrame(frame, 0, 24, 99), BODY_TOO_LARGE);
  assert.equal(checkFrame(frame, 0, frame.length, 99), BODY_TOO_LARGE);
  assert.equal(checkFrame(frame, 0, frame.length, 0), BODY_TOO_LARGE);

  // A header that claims 4 GiB - 1 is refused without waiting for the body.
  const huge = new Uint8Array(24);
  writeHeader(huge, 0, 0, 2, 1, 0, 0xffffffff, 0);
  assert.equal(checkFrame(huge, 0, 24, DEFAULT_MAX_BODY), BODY_TOO_LARGE);
  // Exactly the default limit is allowed (and then we wait for the body).
  writeHeader(huge, 0, 0, 2, 1, 0, DEFAULT_MAX_BODY, 0);
  assert.equal(checkFrame(huge, 0, 24, DEFAULT_MAX_BODY), NEED_MORE);
  writeHeader(huge, 0, 0, 2, 1, 0, DEFAULT_MAX_BODY + 1, 0);
  assert.equal(checkFrame(huge, 0, 24, DEFAULT_MAX_BODY), BODY_TOO_LARGE);
});

Deno.test("checkFrame parses several frames back to back in one buffer one after another", () => {
  const rand = prng(5);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 20; i++) {
    const len = i % 5 === 0 ? 0 : (rand() * 400) | 0;
    frames.push(
      encodeFrame(
        { flags: i & 7, code: (i % 6) + 1, requestId: i * 1000, status: 0, timeoutMs: i },
        randomBytes(len, rand),
      ),
    );
  }
  const buf = concat(...frames);
  let off = 0;
  for (let i = 0; i < frames.length; i++) {
    const total = checkFrame(buf, off, buf.length, 1024);
    assert.equal(total, frames[i].length, `frame ${i}`);
    const h = decodeHeader(buf, off);
    assert.equal(h.requestId, i * 1000);
    assert.equal(h.bodyLen, frames[i].length - 28);
    assert.ok(crcMatches(buf, off, total));
    off += total;
  }
  assert.equal(off, buf.length);
  assert.equal(checkFrame(buf, off, buf.length, 1024), NEED_MORE);
});

Deno.test("checkFrame fed one byte at a time finds each pipelined frame exactly when it completes", () => {
  const frames = [
    encodeFrame(REQ, new Uint8Array(0)),
    sampleFrame(),
    encodeFrame({ ...REQ, requestId: 8 }, new Uint8Array([0x0a, 0x01, 0x62])),
  ];
  const buf = concat(...frames);
  const found: number[] = [];
  let start = 0;
  for (let end = 0; end <= buf.length; end++) {
    const r = checkFrame(buf, start, end, 1024);
    assert.ok(r >= 0, `no error at ${end}`);
    if (r > 0) {
      found.push(r);
      start += r;
      assert.equal(start, end);
    }
  }
  assert.deepEqual(found, frames.map((f) => f.length));
});

// ---------------------------------------------------------------------------
// decodeHeader and crcMatches

Deno.test("decodeHeader reads back every field encodeFrame wrote, including high bits", () => {
  const cases: FrameFields[] = [
    { flags: 0, code: 1, requestId: 0, status: 0, timeoutMs: 0 },
    { flags: 7, code: 0xabcd, requestId: 0xfffffffe, status: 8, timeoutMs: 0xffffffff },
    { flags: 0xff, code: 0xffff, requestId: 0x80000000, status: 0xffffffff, timeoutMs: 1 },
  ];
  for (const f of cases) {
    const body = new Uint8Array(f.flags % 17);
    const frame = encodeFrame(f, body);
    assert.deepEqual(decodeHeader(frame, 0), { ...f, bodyLen: body.length });
    const shifted = concat(new Uint8Array(5), frame);
    assert.deepEqual(decodeHeader(shifted, 5), { ...f, bodyLen: body.length });
  }
});

Deno.test("crcMatches accepts an intact frame and rejects one flipped bit in the body or trailer", () => {
  const frame = sampleFrame();
  assert.equal(crcMatches(frame, 0, frame.length), true);
  const bodyBits = (frame.length - 28) * 8;
  for (let bit = 0; bit < bodyBits; bit += 7) {
    const bad = frame.slice();
    bad[24 + (bit >> 3)] ^= 1 << (bit & 7);
    assert.equal(crcMatches(bad, 0, bad.length), false, `body bit ${bit}`);
  }
  for (let bit = 0; bit < 32; bit++) {
    const bad = frame.slice();
    bad[frame.length - 4 + (bit >> 3)] ^= 1 << (bit & 7);
    assert.equal(crcMatches(bad, 0, bad.length), false, `trailer bit ${bit}`);
  }
});

Deno.test("crcMatches checks an empty body against a zero trailer", () => {
  const frame = encodeFrame(REQ, new Uint8Array(0));
  assert.equal(crcMatches(frame, 0, 28), true);
  frame[27] = 1;
  assert.equal(crcMatches(frame, 0, 28), false);
});

Deno.test("crcMatches works on a frame in the middle of a buffer, on both crc paths", () => {
  const rand = prng(6);
  for (const len of [10, ZLIB_CRC_THRESHOLD + 50]) {
    const frame = encodeFrame(REQ, randomBytes(len, rand));
    const buf = concat(randomBytes(13, rand), frame, randomBytes(9, rand));
    assert.equal(crcMatches(buf, 13, frame.length), true);
    buf[13 + 24] ^= 0x80;
    assert.equal(crcMatches(buf, 13, frame.length), false);
  }
});

// ---------------------------------------------------------------------------
// Protobuf messages

interface Codec<I, M> {
  encode(message: I): { finish(): Uint8Array };
  decode(reader: Uint8Array): M;
}

/** A decoded message as a plain tree of own fields, for deepStrictEqual. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}

function roundTrip<I, M>(type: Codec<I, M>, msg: I): M {
  const bytes = type.encode(msg).finish();
  const back = type.decode(bytes);
  assert.deepStrictEqual(plain(back), plain(msg));
  // Encoding the decoded message gives the same bytes again.
  assert.deepStrictEqual(type.encode(back as unknown as I).finish(), bytes);
  return back;
}

const K = enc.encode("user:42");
const V = new Uint8Array([0, 1, 2, 0xfe, 0xff]);

Deno.test("every KV message round-trips through encode and decode", () => {
  roundTrip(pb.Error, { code: 4, message: "Body is too large" });
  roundTrip(pb.PingRequest, { payload: V });
  roundTrip(pb.PingReply, { payload: V });
  roundTrip(pb.GetRequest, { key: K });
  roundTrip(pb.GetReply, { found: true, value: V });
  roundTrip(pb.PutRequest, { key: K, value: V, ttlMs: 0xffffffff });
  roundTrip(pb.PutReply, { replaced: true });
  roundTrip(pb.DeleteRequest, { key: K });
  roundTrip(pb.DeleteReply, { deleted: true });
  roundTrip(pb.ScanRequest, { prefix: enc.encode("user:"), startAfter: K, limit: 1000 });
  roundTrip(pb.Entry, { key: K, value: V });
  roundTrip(pb.ScanReply, {
    entries: [{ key: K, value: V }, { key: enc.encode("user:43"), value: new Uint8Array(0) }],
    more: true,
  });
  roundTrip(pb.StatsRequest, {});
  roundTrip(pb.Counter, { name: "requests.total", value: 123456789 });
  roundTrip(pb.StatsReply, {
    counters: [{ name: "a", value: 1 }, { name: "b", value: 2 ** 40 + 3 }],
  });
});

Deno.test("messages without fields encode to an empty body, which decodes to the defaults", () => {
  assert.equal(pb.GetReply.encode({}).finish().length, 0);
  assert.equal(pb.StatsRequest.encode({}).finish().length, 0);
  // protobufjs writes a field that is set explicitly even to its default;
  // proto3 decoders read that back as the default, so both forms are valid.
  const explicit = pb.GetReply.encode({ found: false, value: new Uint8Array(0) }).finish();
  assert.equal(hex(explicit), "08 00 12 00");
  assert.equal(pb.GetReply.decode(explicit).found, false);
  assert.equal(pb.GetReply.decode(explicit).value.length, 0);
  const g = pb.GetReply.decode(new Uint8Array(0));
  assert.equal(g.found, false);
  assert.equal(g.value.length, 0);
  const s = pb.ScanReply.decode(new Uint8Array(0));
  assert.deepEqual(s.entries, []);
  assert.equal(s.more, false);
  const p = pb.PutRequest.decode(new Uint8Array(0));
  assert.equal(p.key.length, 0);
  assert.equal(p.ttlMs, 0);
});

Deno.test("messages use the spec's field numbers on the wire", () => {
  const a = enc.encode("a");
  const b = enc.encode("b");
  const cases: [string, Uint8Array, string][] = [
    ["GetRequest", pb.GetRequest.encode({ key: a }).finish(), "0a 01 61"],
    ["PingRequest", pb.PingRequest.encode({ payload: a }).finish(), "0a 01 61"],
    ["PingReply", pb.PingReply.encode({ payload: a }).finish(), "0a 01 61"],
    ["GetReply", pb.GetReply.encode({ found: true, value: b }).finish(), "08 01 12 01 62"],
    [
      "PutRequest",
      pb.PutRequest.encode({ key: a, value: b, ttlMs: 300 }).finish(),
      "0a 01 61 12 01 62 18 ac 02",
    ],
    ["PutReply", pb.PutReply.encode({ replaced: true }).finish(), "08 01"],
    ["DeleteRequest", pb.DeleteRequest.encode({ key: a }).finish(), "0a 01 61"],
    ["DeleteReply", pb.DeleteReply.encode({ deleted: true }).finish(), "08 01"],
    [
      "ScanRequest",
      pb.ScanRequest.encode({ prefix: a, startAfter: b, limit: 5 }).finish(),
      "0a 01 61 12 01 62 18 05",
    ],
    [
      "ScanReply",
      pb.ScanReply.encode({ entries: [{ key: a, value: b }], more: true }).finish(),
      "0a 06 0a 01 61 12 01 62 10 01",
    ],
    [
      "StatsReply",
      pb.StatsReply.encode({ counters: [{ name: "n", value: 1 }] }).finish(),
      "0a 05 0a 01 6e 10 01",
    ],
    ["Error", pb.Error.encode({ code: 1, message: "x" }).finish(), "08 01 12 01 78"],
    ["encodeError", encodeError(3, "x"), "08 03 12 01 78"],
  ];
  for (const [name, got, want] of cases) assert.equal(hex(got), want, name);
  assert.deepEqual(pb.GetRequest.encode({ key: a }).finish(), new Uint8Array([0x0a, 0x01, 0x61]));
});

Deno.test("a uint64 counter decodes as a plain JS number, not a Long", () => {
  const body = pb.StatsReply.encode({ counters: [{ name: "big", value: 2 ** 40 + 3 }] }).finish();
  const c = pb.StatsReply.decode(body).counters[0];
  assert.equal(typeof c.value, "number");
  assert.equal(c.value, 2 ** 40 + 3);
  // And a hand-written varint for 2^40 + 3 decodes the same way.
  const hand = fromHex("10 83 80 80 80 80 20");
  assert.equal(pb.Counter.decode(hand).value, 2 ** 40 + 3);
});

Deno.test("bytes fields decode as plain Uint8Array, not Buffer", () => {
  const g = pb.GetReply.decode(pb.GetReply.encode({ found: true, value: V }).finish());
  assert.equal(g.value.constructor, Uint8Array);
  const s = pb.ScanReply.decode(
    pb.ScanReply.encode({ entries: [{ key: K, value: V }] }).finish(),
  );
  const e = pb.Entry.create(s.entries[0]);
  assert.equal(e.key.constructor, Uint8Array);
  assert.equal(e.value.constructor, Uint8Array);
  // An empty bytes field that is present on the wire.
  assert.equal(pb.PingReply.decode(fromHex("0a 00")).payload.constructor, Uint8Array);
  assert.equal(pb.GetRequest.encode({ key: K }).finish().constructor, Uint8Array);
});

// gen/kv.js computes its bytes defaults at load; pb_runtime.ts must have
// turned Buffer off before that, or absent fields read as a shared Buffer.
Deno.test({
  name: "bytes fields absent from the body also read as plain Uint8Array, not Buffer",
  fn() {
    const absent: [string, Uint8Array][] = [
      ["PingRequest.payload", pb.PingRequest.decode(new Uint8Array(0)).payload],
      ["PingReply.payload", pb.PingReply.decode(new Uint8Array(0)).payload],
      ["GetRequest.key", pb.GetRequest.decode(new Uint8Array(0)).key],
      ["GetReply.value", pb.GetReply.decode(fromHex("08 01")).value],
      ["PutRequest.key", pb.PutRequest.decode(new Uint8Array(0)).key],
      ["PutRequest.value", pb.PutRequest.decode(new Uint8Array(0)).value],
      ["DeleteRequest.key", pb.DeleteRequest.decode(new Uint8Array(0)).key],
      ["ScanRequest.prefix", pb.ScanRequest.decode(new Uint8Array(0)).prefix],
      ["ScanRequest.startAfter", pb.ScanRequest.decode(new Uint8Array(0)).startAfter],
      ["Entry.key", pb.Entry.decode(new Uint8Array(0)).key],
      ["Entry.value", pb.Entry.decode(new Uint8Array(0)).value],
    ];
    for (const [name, v] of absent) assert.equal(v.constructor, Uint8Array, name);
    assert.deepStrictEqual(pb.GetReply.decode(fromHex("08 01")).value, new Uint8Array(0));
  },
});

// ---------------------------------------------------------------------------
// Status table

Deno.test("the status table matches the spec's codes 0 to 11", () => {
  const spec = [
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
  ];
  assert.deepEqual([...STATUS_NAMES], spec);
  assert.deepEqual({ ...Status }, Object.fromEntries(spec.map((n, i) => [n, i])));
  for (let i = 0; i < spec.length; i++) assert.equal(statusName(i), spec[i]);
  assert.ok(Object.isFrozen(Status));
});

Deno.test("statusName names a code the spec does not define STATUS_<n>", () => {
  assert.equal(statusName(12), "STATUS_12");
  assert.equal(statusName(1000), "STATUS_1000");
});

// ---------------------------------------------------------------------------
// keyShard

/** The routing rule, restated: a non-empty `{tag}` (first `{`, first `}` after it) decides. */
function shardOfKey(key: Uint8Array, shards: number): number {
  const open = key.indexOf(0x7b);
  const close = open < 0 ? -1 : key.indexOf(0x7d, open + 1);
  if (close > open + 1) return hashBytes(key, open + 1, close) % shards;
  return hashBytes(key, 0, key.length) % shards;
}

Deno.test("keyShard sends the same key to the same shard whatever the method and other fields", () => {
  const rand = prng(7);
  for (let i = 0; i < 200; i++) {
    const key = randomBytes(1 + ((rand() * 40) | 0), rand);
    for (const shards of [2, 3, 4, 7, 16]) {
      const want = shardOfKey(key, shards);
      const bodies = [
        pb.GetRequest.encode({ key }).finish(),
        pb.DeleteRequest.encode({ key }).finish(),
        pb.PutRequest.encode({ key, value: randomBytes(20, rand), ttlMs: 5 }).finish(),
        pb.PutRequest.encode({ key, value: new Uint8Array(300), ttlMs: 0xffffffff }).finish(),
      ];
      for (const body of bodies) assert.equal(keyShard(body, shards), want);
    }
  }
});

Deno.test("keyShard finds the key when other fields come before it", () => {
  const a = enc.encode("a");
  const want = shardOfKey(a, 8);
  // PutRequest written by hand in reverse field order: ttl_ms=1, value="b", key="a".
  assert.equal(keyShard(fromHex("18 01 12 01 62 0a 01 61"), 8), want);
  // Value first, then key.
  assert.equal(keyShard(fromHex("12 01 62 0a 01 61"), 8), want);
  // Unknown fields of every wire type first: varint, fixed64, bytes, fixed32.
  assert.equal(
    keyShard(
      fromHex("f8 07 ff ff 03 21 01 02 03 04 05 06 07 08 aa 01 02 0a 0a 2d 01 02 03 04 0a 01 61"),
      8,
    ),
    want,
  );
  // A value whose length needs a two-byte varint before the key.
  const long = pb.PutRequest.encode({ value: new Uint8Array(200).fill(0x0a) }).finish();
  assert.equal(keyShard(concat(long, fromHex("0a 01 61")), 8), want);
});

Deno.test("keyShard routes by the last key field, as a proto3 decoder reads it", () => {
  const body = fromHex("0a 01 78 0a 01 61"); // key "x" then key "a"
  assert.deepEqual(pb.GetRequest.decode(body).key, enc.encode("a"));
  for (const shards of [2, 3, 4, 5, 8, 16, 31]) {
    assert.equal(keyShard(body, shards), shardOfKey(enc.encode("a"), shards));
  }
});

Deno.test("keyShard handles a 1024-byte key whose length takes two varint bytes", () => {
  const key = randomBytes(1024, prng(8));
  const body = pb.PutRequest.encode({ key, value: new Uint8Array(5000) }).finish();
  assert.equal(keyShard(body, 13), shardOfKey(key, 13));
});

Deno.test("keyShard sends a body without a key to shard 0", () => {
  for (const shards of [1, 2, 4, 16]) {
    assert.equal(keyShard(new Uint8Array(0), shards), 0);
    assert.equal(keyShard(pb.PutRequest.encode({ value: V, ttlMs: 3 }).finish(), shards), 0);
    assert.equal(keyShard(fromHex("08 01"), shards), 0); // field 1 as a varint is not a key
  }
});

Deno.test("keyShard never throws and stays in range on truncated or garbage bodies", () => {
  const rand = prng(9);
  for (let i = 0; i < 2000; i++) {
    const body = randomBytes((rand() * 40) | 0, rand);
    const shards = 1 + ((rand() * 9) | 0);
    const s = keyShard(body, shards);
    assert.ok(Number.isInteger(s) && s >= 0 && s < shards, `shard ${s} of ${shards}`);
  }
  // Declared key length past the end of the body.
  const s = keyShard(fromHex("0a 7f 61 62"), 4);
  assert.ok(s >= 0 && s < 4);
});

Deno.test("keyShard always returns an integer in [0, shards)", () => {
  const rand = prng(10);
  for (let shards = 1; shards <= 33; shards++) {
    for (let i = 0; i < 100; i++) {
      const key = randomBytes(1 + ((rand() * 64) | 0), rand);
      const s = keyShard(pb.GetRequest.encode({ key }).finish(), shards);
      assert.ok(Number.isInteger(s) && s >= 0 && s < shards, `shard ${s} of ${shards}`);
    }
  }
});

Deno.test("keyShard spreads 10000 similar keys over 4 shards with more than 20% each", () => {
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 10_000; i++) {
    counts[keyShard(pb.GetRequest.encode({ key: enc.encode(`user:${i}`) }).finish(), 4)]++;
  }
  for (let s = 0; s < 4; s++) assert.ok(counts[s] > 2000, `shard ${s} got ${counts[s]}`);
});

Deno.test("hashBytes hashes only the given range", () => {
  const k = enc.encode("user:1");
  const framed = concat(enc.encode("xx"), k, enc.encode("yy"));
  assert.equal(hashBytes(framed, 2, 2 + k.length), hashBytes(k, 0, k.length));
  const h = hashBytes(k, 0, k.length);
  assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
});
