/**
 * Outcome writes a protobufjs Writer's operations straight into the reply's
 * destination; these tests pin that to the bytes `finish()` would give.
 */
import assert from "node:assert/strict";
import { pb } from "../mod.ts";
import { Outcome, writeReplyFrame } from "../src/server/executor.ts";
import { decodeHeader } from "../mod.ts";
import { crc32 } from "../mod.ts";

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

for (const [name, type, message] of samples) {
  Deno.test(`an encoded ${name} outcome writes the same bytes as protobufjs's finish()`, () => {
    const want = type.encode(message as never).finish();
    const outcome = Outcome.encoded(0, type.encode(message as never));
    assert.equal(outcome.size, want.length);
    const dst = new Uint8Array(want.length + 10).fill(0xee);
    outcome.writeBody(dst, 5);
    assert.deepEqual(dst.subarray(5, 5 + want.length), want);
    assert.equal(dst[4], 0xee, "nothing written before the offset");
    assert.equal(dst[5 + want.length], 0xee, "nothing written past the body");
    assert.throws(() => outcome.writeBody(dst, 0), /already written/, "ops run once only");
    const fresh = Outcome.encoded(0, type.encode(message as never));
    assert.deepEqual(fresh.body, want, "the body, made on demand, is the same");
    assert.deepEqual(fresh.body, want, "and stays the same when asked again");
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
