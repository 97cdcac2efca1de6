/**
 * wire v1's Incr (method 8), byte for byte as the spec states it, through
 * raw frames and through the client library.
 */
import assert from "node:assert/strict";
import { KvMethod, pb, Status } from "../mod.ts";
import { connect, EvkvError } from "../src/client/mod.ts";
import { incrRequestReader } from "../src/kv/request_readers.ts";
import { incrReplyWriter } from "../src/kv/reply_writers.ts";
import { concat, LAYOUTS, RawClient, text, utf8, withServer } from "./support.ts";

/** Varint bytes of a non-negative BigInt. */
function varint(n: bigint): number[] {
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return out;
}
const zz = (v: bigint) => (v >= 0n ? v << 1n : ((-v) << 1n) - 1n);

function incrBody(key: string, delta: bigint, ttlMs = 0): Uint8Array {
  const k = utf8(key);
  const parts = [0x0a, ...varint(BigInt(k.length)), ...k];
  if (delta !== 0n) parts.push(0x10, ...varint(zz(delta)));
  if (ttlMs !== 0) parts.push(0x18, ...varint(BigInt(ttlMs)));
  return Uint8Array.from(parts);
}

function replyBytes(value: bigint): number[] {
  return [0x08, ...varint(zz(value))];
}

Deno.test("the Incr reader decodes 64-bit deltas exactly, skipping unknown fields", () => {
  const max = (1n << 63n) - 1n;
  const body = concat(incrBody("k", -max - 1n, 5), Uint8Array.from([0x22, 1, 0x41, 0x10, 1]));
  // Field 2 again (last wins): delta -1; field 4 is unknown and skipped.
  const r = incrRequestReader.read(body, 0, body.length)!;
  assert.equal(text(r.key), "k");
  assert.equal(r.delta, -1n);
  assert.equal(r.ttlMs, 5);
  const exact = incrBody("k", max);
  assert.equal(incrRequestReader.read(exact, 0, exact.length)!.delta, max);
  assert.throws(() => incrRequestReader.read(Uint8Array.from([0x10, 0x80]), 0, 2));
  const out = new Uint8Array(incrReplyWriter.size({ value: max }));
  incrReplyWriter.write({ value: max }, out, 0);
  assert.deepEqual([...out], replyBytes(max));
});

for (const layout of LAYOUTS.slice(0, 2)) {
  Deno.test(`${layout.name}: Incr adds exactly, refuses non-integers and overflow unchanged`, async () => {
    await withServer(layout.options, async (server) => {
      using c = await RawClient.connect(server);
      const call = (body: Uint8Array) => c.call(KvMethod.Incr, body);
      let r = await call(incrBody("n", 5n));
      assert.equal(r.header.status, Status.OK);
      assert.deepEqual([...r.body], replyBytes(5n));
      r = await call(incrBody("n", -7n));
      assert.deepEqual([...r.body], replyBytes(-2n));
      // The counter is ASCII decimal, as a Get sees it.
      const got = pb.GetReply.decode(
        (await c.call(KvMethod.Get, pb.GetRequest.encode({ key: utf8("n") }).finish())).body,
      );
      assert.equal(text(got.value), "-2");

      const max = (1n << 63n) - 1n;
      r = await call(incrBody("big", max));
      assert.deepEqual([...r.body], replyBytes(max));
      r = await call(incrBody("big", 1n));
      assert.equal(r.header.status, Status.BAD_REQUEST);
      r = await call(incrBody("big", 0n));
      assert.deepEqual([...r.body], replyBytes(max), "the value is unchanged after an overflow");

      await c.call(
        KvMethod.Put,
        pb.PutRequest.encode({ key: utf8("s"), value: utf8("12a") }).finish(),
      );
      r = await call(incrBody("s", 1n));
      assert.equal(r.header.status, Status.BAD_REQUEST);
      for (const bad of ["007", "+1", " 1", "-0", ""]) {
        await c.call(
          KvMethod.Put,
          pb.PutRequest.encode({ key: utf8("s"), value: utf8(bad) }).finish(),
        );
        assert.equal(
          (await call(incrBody("s", 1n))).header.status,
          Status.BAD_REQUEST,
          `value "${bad}"`,
        );
      }
      r = await call(incrBody("", 1n));
      assert.equal(r.header.status, Status.BAD_REQUEST);
    });
  });
}

Deno.test("the client's incr keeps a TTL only from creation and is exact past 2^53", async () => {
  await withServer(LAYOUTS[0].options, async (server) => {
    await using kv = await connect({ port: server.addr.port });
    assert.equal(await kv.incr("c"), 1n);
    assert.equal(await kv.incr("c", 2n ** 60n), 2n ** 60n + 1n);
    assert.equal(await kv.incr("c", -(2n ** 60n) - 1n), 0n);
    assert.equal(await kv.incr("t", 1, { ttlMs: 60_000 }), 1n);
    await assert.rejects(kv.incr("c", 2n ** 63n), RangeError);
    await kv.put("word", "abc");
    await assert.rejects(
      kv.incr("word"),
      (e) => e instanceof EvkvError && e.status === Status.BAD_REQUEST,
    );
    assert.equal(text(await kv.get("word")), "abc");
  });
});
