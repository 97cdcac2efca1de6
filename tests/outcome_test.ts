/**
 * Outcome writes a protobufjs Writer's operations straight into the reply's
 * destination; these tests pin that to the bytes `finish()` would give.
 */
import assert from "node:assert/strict";
import { pb } from "../mod.ts";
import { Outcome, writeReplyFrame } from "../src/server/outcome.ts";
import { decodeHeader } from "../src/protocol/frame.ts";
import type { BodyWriter } from "../mod.ts";
import { crc32 } from "../src/protocol/crc32.ts";
import { boolReplyWriter, getReplyWriter } from "../src/kv/reply_writers.ts";

const bytes = (n: number, seed = 1) =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

const samples: [string, { encode(m: never): { finish(): Uint8Array } }, unknown][] = [
  ["PingReply", pb.PingReply, { payload: bytes(5) }],
  ["GetReply found", pb.GetReply, { found: true, value: bytes(300) }],
  ["GetReply missing", pb.GetReply, { found: false }],
  ["PutReply", pb.PutReply, { replaced: true }],
  ["DeleteReply", pb.DeleteReply, { deleted: false }],
  ["ScanReply", pb.ScanReply, {
    entries: [{ key: bytes(3), value: bytes(200_000) }, { key: bytes(1024, 7), value: bytes(0) }],
    more: true,
  }],
  ["StatsReply", pb.StatsReply, { counters: [{ name: "requests", value: 2 ** 40 + 1 }] }],
  ["Error", pb.Error, { code: 7, message: "Run Get: boom, with ünïcödé" }],
];

/**
 * Checks that `make()` gives an outcome whose body is exactly `want`, written
 * in place at an offset, once only, or made on demand.
 */
function assertWritesOnce(make: () => Outcome, want: Uint8Array, what: string): void {
  const outcome = make();
  assert.equal(outcome.size, want.length, what);
  const dst = new Uint8Array(want.length + 10).fill(0xee);
  outcome.writeBody(dst, 5);
  assert.deepEqual(dst.subarray(5, 5 + want.length), want, what);
  assert.equal(dst[4], 0xee, "nothing written before the offset");
  assert.equal(dst[5 + want.length], 0xee, "nothing written past the body");
  assert.throws(() => outcome.writeBody(dst, 0), /already written/, "written once only");
  const fresh = make();
  assert.deepEqual(fresh.body, want, "the body, made on demand, is the same");
  assert.deepEqual(fresh.body, want, "and stays the same when asked again");
}

for (const [name, type, message] of samples) {
  Deno.test(`an encoded ${name} outcome writes the same bytes as protobufjs's finish()`, () => {
    const want = type.encode(message as never).finish();
    assertWritesOnce(() => Outcome.encoded(0, type.encode(message as never)), want, name);
  });
}

Deno.test("a reply frame written from an encoded outcome carries the body's CRC", () => {
  const msg = { found: true, value: bytes(1000) };
  const outcome = Outcome.encoded(0, pb.GetReply.encode(msg));
  const frame = new Uint8Array(outcome.size + 28);
  writeReplyFrame(frame, 0, 2, 99, outcome);
  const h = decodeHeader(frame, 0);
  assert.equal(h.bodyLen, outcome.size);
  assert.equal(h.requestId, 99);
  const body = frame.subarray(24, 24 + h.bodyLen);
  assert.deepEqual(body, pb.GetReply.encode(msg).finish());
  const trailer = new DataView(frame.buffer).getUint32(24 + h.bodyLen, true);
  assert.equal(trailer, crc32(body));
});

const writerSamples: [
  string,
  { encode(m: never): { finish(): Uint8Array } },
  BodyWriter<never>,
  unknown[],
][] = [
  ["GetReply", pb.GetReply, getReplyWriter as BodyWriter<never>, [
    { found: true, value: bytes(100) },
    { found: true, value: bytes(0) },
    { found: true, value: bytes(127) },
    { found: true, value: bytes(128) },
    { found: true, value: bytes(16_384) },
    { found: true, value: bytes(2_097_152) },
    { found: false },
    {},
  ]],
  ["PutReply", pb.PutReply, boolReplyWriter("replaced") as BodyWriter<never>, [
    { replaced: true },
    { replaced: false },
    {},
  ]],
  ["DeleteReply", pb.DeleteReply, boolReplyWriter("deleted") as BodyWriter<never>, [
    { deleted: true },
    { deleted: false },
    {},
  ]],
];

for (const [name, type, writer, messages] of writerSamples) {
  Deno.test(`the hand-written ${name} writer gives protobufjs's bytes for every shape`, () => {
    for (const message of messages) {
      const want = type.encode(message as never).finish();
      const what = `${name} with ${JSON.stringify(Object.keys(message as object))}`;
      assertWritesOnce(
        () => Outcome.written(0, writer as BodyWriter<unknown>, message),
        want,
        what,
      );
    }
  });
}

Deno.test("the GetReply writer gives the body's CRC from the value's CRC for every shape", () => {
  const shapes = [0, 1, 100, 127, 128, 4095, 4096, 16_384, 70_000];
  for (const found of [true, false, undefined]) {
    for (const n of shapes) {
      const value = bytes(n, n + 3);
      const m = { found, value, valueCrc: crc32(value) };
      const body = new Uint8Array(getReplyWriter.size(m));
      getReplyWriter.write(m, body, 0);
      // Twice: the second answer comes from the cache of head terms.
      for (let i = 0; i < 2; i++) {
        assert.equal(getReplyWriter.crc!(m), crc32(body), `found ${found}, ${n} bytes`);
      }
    }
  }
  assert.equal(getReplyWriter.crc!({ found: true, value: bytes(5) }), -1, "no valueCrc");
  assert.equal(getReplyWriter.crc!({ found: false, valueCrc: 1 }), -1, "no value");
});

Deno.test("a reply frame carries the CRC its writer knows, and computes it when the writer does not", () => {
  const body = bytes(40);
  let said = 0x12345678;
  const writer: BodyWriter<Uint8Array> = {
    size: (m) => m.length,
    write: (m, dst, off) => dst.set(m, off),
    crc: () => said,
  };
  const trailer = () => {
    const frame = new Uint8Array(body.length + 28);
    writeReplyFrame(frame, 0, 2, 1, Outcome.written(0, writer as BodyWriter<unknown>, body));
    assert.deepEqual(frame.subarray(24, 24 + body.length), body);
    return new DataView(frame.buffer).getUint32(24 + body.length, true);
  };
  // Taken as given: the server does not read the body again to check it.
  assert.equal(trailer(), 0x12345678);
  said = -1;
  assert.equal(trailer(), crc32(body));
});
