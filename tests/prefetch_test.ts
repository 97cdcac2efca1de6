/**
 * The prefetch path: the wire v1 codec collects a read's requests, the
 * executor hands them to the service's hook (inline mode only, and a hook
 * that throws changes nothing), the KV hook finds the keys, and the store
 * reads their memory without changing anything.
 */
import assert from "node:assert/strict";
import { KvMethod, pb, RequestBatch } from "../mod.ts";
import { prefetchKeys } from "../src/kv/request_readers.ts";
import kvService from "../src/kv/service.ts";
import { keyToString, ShardStore } from "../src/kv/store.ts";
import type { HandlerContext } from "../src/server/service.ts";
import { wireCodec } from "../src/server/io/wire_codec.ts";
import { encodeFrame } from "../src/protocol/frame.ts";
import { concat, RawClient, seededRandom, text, utf8, withServer } from "./support.ts";
import { ProbeMethod, type Seen } from "./fixtures/prefetch_service.ts";

const PROBE_SERVICE = new URL("./fixtures/prefetch_service.ts", import.meta.url);
/** How the KV service routes a Get body over `shards` shards. */
const KV_ROUTE = kvService.methods[KvMethod.Get].route as (b: Uint8Array, n: number) => number;

const frame = (code: number, body: Uint8Array, requestId = 1) =>
  encodeFrame({ flags: 0, code, requestId, status: 0, timeoutMs: 0 }, body);

/** Every key, value and expiry the store holds, in key order. */
function contents(store: ShardStore): string[] {
  const page = store.scan({
    prefix: new Uint8Array(0),
    startAfter: new Uint8Array(0),
    limit: 1000,
    maxBytes: 1e12,
  });
  return page.entries.map((e) => `${keyToString(e.key)}=${Array.from(e.value).join(",")}`);
}

Deno.test("store prefetch reads present, missing, large and odd keys and changes nothing", () => {
  let t = 1000;
  const store = new ShardStore(() => t);
  const rnd = seededRandom(11);
  for (let i = 0; i < 300; i++) {
    const n = i % 50 === 0 ? 20_000 : Math.floor(rnd() * 200);
    store.put(utf8(`k${i}`), new Uint8Array(n).fill(i & 0xff), i % 7 === 0 ? 50 : 0);
  }
  const before = contents(store);
  const size = store.size;
  const keys = concat(...Array.from({ length: 400 }, (_, i) => utf8(`k${i}`)));
  const starts = new Int32Array(400);
  const ends = new Int32Array(400);
  for (let i = 0, at = 0; i < 400; i++) {
    starts[i] = at;
    at += `k${i}`.length;
    ends[i] = at;
  }
  t = 2000; // the keys with a TTL have expired: prefetch must not remove them
  assert.ok(Number.isFinite(store.prefetch(keys, starts, ends, 400)));
  // Empty and out-of-range keys are only read, too.
  store.prefetch(
    keys,
    new Int32Array([0, 5, keys.length]),
    new Int32Array([0, 5, keys.length + 9]),
    3,
  );
  assert.equal(store.size, size);
  t = 1000;
  assert.deepEqual(contents(store), before);
  assert.equal(new ShardStore().prefetch(keys, starts, ends, 400), 0, "an empty store");
});

/** A context whose store records the keys it is asked to prefetch. */
function recordingContext(shard: number, shards: number): {
  ctx: HandlerContext<ShardStore>;
  keys: string[];
} {
  const keys: string[] = [];
  const store = new ShardStore();
  store.prefetch = (bytes, starts, ends, n) => {
    for (let i = 0; i < n; i++) keys.push(text(bytes.subarray(starts[i], ends[i])));
    return 0;
  };
  const ctx: HandlerContext<ShardStore> = {
    state: store,
    shard,
    shards,
    maxBody: 1 << 20,
    stats: () => {
      throw new Error("not used");
    },
    uptimeMs: () => 0,
  };
  return { ctx, keys };
}

/** A batch over the bodies, laid end to end in one buffer. */
function batchOf(...requests: [number, Uint8Array][]): RequestBatch {
  const batch = new RequestBatch(requests.length);
  batch.reset(concat(...requests.map(([, body]) => body)));
  let at = 0;
  for (const [code, body] of requests) {
    batch.add(code, at, at + body.length);
    at += body.length;
  }
  return batch;
}

Deno.test("the KV prefetch hook passes the key of every Get, Put and Delete, and nothing else", () => {
  const { ctx, keys } = recordingContext(0, 1);
  const longKey = "x".repeat(300); // a two-byte length
  prefetchKeys(
    batchOf(
      [KvMethod.Get, pb.GetRequest.encode({ key: utf8("a") }).finish()],
      [KvMethod.Put, pb.PutRequest.encode({ key: utf8("b"), value: utf8("v") }).finish()],
      [KvMethod.Delete, pb.DeleteRequest.encode({ key: utf8(longKey) }).finish()],
      [KvMethod.Scan, pb.ScanRequest.encode({ prefix: utf8("s") }).finish()],
      [KvMethod.Ping, pb.PingRequest.encode({ payload: utf8("p") }).finish()],
      [KvMethod.Get, new Uint8Array(0)],
      // The value first: not the shape the hook looks for, so left alone.
      [KvMethod.Put, new Uint8Array([0x12, 1, 0x76, 0x0a, 1, 0x6b])],
      // A length past the body's end.
      [KvMethod.Get, new Uint8Array([0x0a, 9, 0x61])],
    ),
    ctx,
  );
  assert.deepEqual(keys, ["a", "b", longKey]);
});

Deno.test("with several shards the KV prefetch hook passes only this shard's keys", () => {
  const names = Array.from({ length: 40 }, (_, i) => `key-${i}`);
  const batch = batchOf(
    ...names.map((k): [number, Uint8Array] => [
      KvMethod.Get,
      pb.GetRequest.encode({ key: utf8(k) }).finish(),
    ]),
  );
  const seen: string[][] = [];
  for (let shard = 0; shard < 3; shard++) {
    const { ctx, keys } = recordingContext(shard, 3);
    prefetchKeys(batch, ctx);
    seen.push(keys);
    for (const k of keys) {
      const body = pb.GetRequest.encode({ key: utf8(k) }).finish();
      assert.equal(KV_ROUTE(body, 3), shard, `${k} routes to shard ${shard}`);
    }
  }
  assert.deepEqual(seen.flat().sort(), [...names].sort(), "every key on exactly one shard");
  assert.ok(seen.every((keys) => keys.length > 0), "40 keys spread over all three shards");
});

Deno.test("the wire v1 codec collects whole frames up to the batch's capacity, and stops at a partial one", () => {
  const bodies = [utf8("one"), new Uint8Array(0), utf8("three")];
  const frames = bodies.map((b, i) => frame(10 + i, b, i));
  const stream = concat(new Uint8Array(5), ...frames);
  const batch = new RequestBatch(8);
  // Starting past some bytes already handled, ending inside the last frame.
  wireCodec.collect!(stream, 5, stream.length - 1, 1 << 20, batch);
  assert.equal(batch.bytes, stream);
  assert.equal(batch.length, 2);
  assert.deepEqual(Array.from(batch.codes.subarray(0, 2)), [10, 11]);
  assert.equal(text(stream.subarray(batch.starts[0], batch.ends[0])), "one");
  assert.equal(batch.starts[1], batch.ends[1], "an empty body");
  // All three when whole; one when that is all the batch holds.
  wireCodec.collect!(stream, 5, stream.length, 1 << 20, batch);
  assert.equal(batch.length, 3);
  assert.equal(text(stream.subarray(batch.starts[2], batch.ends[2])), "three");
  const one = new RequestBatch(1);
  wireCodec.collect!(stream, 5, stream.length, 1 << 20, one);
  assert.equal(one.length, 1);
  // A bad preamble or a body over the limit ends the batch, as it ends dispatch.
  const bad = concat(frames[0], new Uint8Array(30).fill(0xee), frames[2]);
  wireCodec.collect!(bad, 0, bad.length, 1 << 20, batch);
  assert.equal(batch.length, 1);
  wireCodec.collect!(stream, 5, stream.length, 4, batch);
  assert.equal(batch.length, 2, "the third body is over a 4-byte limit");
});

async function seen(c: RawClient): Promise<Seen> {
  const r = await c.call(ProbeMethod.Seen, new Uint8Array(0));
  assert.equal(r.header.status, 0);
  return JSON.parse(text(pb.PingReply.decode(r.body).payload));
}

Deno.test("inline: the prefetch hook sees every request of a read before it runs, and its throws change nothing", async () => {
  await withServer(
    { mode: "inline", ioThreads: 1, service: PROBE_SERVICE },
    async (server) => {
      using c = await RawClient.connect(server);
      const ids = Array.from({ length: 32 }, () => c.id());
      await c.send(
        concat(
          ...ids.map((id, i) => c.frame(ProbeMethod.Echo, new Uint8Array([0x0a, 1, i]), { id })),
        ),
      );
      const replies = await c.readMany(32);
      replies.forEach((r, i) => {
        assert.equal(r.header.requestId, ids[i]);
        assert.equal(r.header.status, 0);
        assert.deepEqual(pb.PingReply.decode(r.body).payload, new Uint8Array([i]));
      });
      const s = await seen(c);
      // Each request once, in order: collected with the read it came in.
      assert.deepEqual(s.firstBytes, ids.map((_, i) => i));
      assert.ok(s.batches >= 2 && s.batches <= 33, `${s.batches} batches`);
    },
  );
});

Deno.test("pool: the IO worker hosts no shard, so the prefetch hook is not called", async () => {
  await withServer(
    { mode: "pool", ioThreads: 1, workers: 1, service: PROBE_SERVICE },
    async (server) => {
      using c = await RawClient.connect(server);
      const r = await c.call(ProbeMethod.Echo, new Uint8Array([0x0a, 1, 7]));
      assert.deepEqual(pb.PingReply.decode(r.body).payload, new Uint8Array([7]));
      assert.deepEqual(await seen(c), { batches: 0, firstBytes: [] });
    },
  );
});
