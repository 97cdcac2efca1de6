/**
 * End-to-end: the KV service over real sockets, on every server layout,
 * checked against wire v1 with raw frames.
 */
import assert from "node:assert/strict";
import { KvMethod, pb, Status } from "../mod.ts";
import { Flags } from "../src/protocol/constants.ts";
import { LAYOUTS, RawClient, type RawFrame, sleep, text, utf8, withServer } from "./support.ts";

function ok(reply: RawFrame, code: number): void {
  assert.equal(
    reply.header.status,
    Status.OK,
    `status ${reply.header.status}: ${errorText(reply)}`,
  );
  assert.equal(reply.header.flags, Flags.REPLY);
  assert.equal(reply.header.code, code);
  assert.equal(reply.header.timeoutMs, 0);
}

function errorText(reply: RawFrame): string {
  return reply.header.status === 0 ? "" : pb.Error.decode(reply.body).message;
}

const put = (key: string | Uint8Array, value: string, ttlMs = 0) =>
  pb.PutRequest.encode({
    key: typeof key === "string" ? utf8(key) : key,
    value: utf8(value),
    ttlMs,
  }).finish();
const get = (key: string | Uint8Array) =>
  pb.GetRequest.encode({ key: typeof key === "string" ? utf8(key) : key }).finish();
const del = (key: string) => pb.DeleteRequest.encode({ key: utf8(key) }).finish();
const scan = (prefix: Uint8Array, startAfter: Uint8Array, limit: number) =>
  pb.ScanRequest.encode({ prefix, startAfter, limit }).finish();

for (const layout of LAYOUTS) {
  Deno.test(`${layout.name}: every KV method answers as the spec says`, async () => {
    await withServer(layout.options, async (server) => {
      using c = await RawClient.connect(server);
      const ping = await c.call(
        KvMethod.Ping,
        pb.PingRequest.encode({ payload: utf8("hi") }).finish(),
      );
      ok(ping, KvMethod.Ping);
      assert.equal(text(pb.PingReply.decode(ping.body).payload), "hi");

      const put1 = await c.call(KvMethod.Put, put("k1", "v1"));
      ok(put1, KvMethod.Put);
      assert.equal(pb.PutReply.decode(put1.body).replaced, false);
      const put2 = await c.call(KvMethod.Put, put("k1", "v2"));
      assert.equal(pb.PutReply.decode(put2.body).replaced, true);

      const got = pb.GetReply.decode((await c.call(KvMethod.Get, get("k1"))).body);
      assert.equal(got.found, true);
      assert.equal(text(got.value), "v2");
      const missing = await c.call(KvMethod.Get, get("nope"));
      ok(missing, KvMethod.Get);
      assert.equal(pb.GetReply.decode(missing.body).found, false);

      assert.equal(
        pb.DeleteReply.decode((await c.call(KvMethod.Delete, del("k1"))).body).deleted,
        true,
      );
      assert.equal(
        pb.DeleteReply.decode((await c.call(KvMethod.Delete, del("k1"))).body).deleted,
        false,
      );
      assert.equal(pb.GetReply.decode((await c.call(KvMethod.Get, get("k1"))).body).found, false);

      const stats = await c.call(KvMethod.Stats, pb.StatsRequest.encode({}).finish());
      ok(stats, KvMethod.Stats);
      const rows = new Map(pb.StatsReply.decode(stats.body).counters.map((r) => [r.name, r.value]));
      for (
        const name of [
          "uptime_ms",
          "connections",
          "requests",
          "errors.BAD_REQUEST",
          "res.connection.alloc",
        ]
      ) {
        assert.ok(rows.has(name), `Stats lacks ${name}`);
      }
      assert.equal(rows.get("connections"), 1);
      assert.ok(rows.get("requests")! >= 9);
    });
  });

  Deno.test(`${layout.name}: pipelined requests on one key take effect in the order sent`, async () => {
    await withServer(layout.options, async (server) => {
      using c = await RawClient.connect(server);
      const frames: Uint8Array[] = [];
      const expect = new Map<number, string>();
      for (let i = 0; i < 300; i++) {
        const key = `key-${i % 7}`;
        frames.push(c.frame(KvMethod.Put, put(key, `v${i}`)));
        const id = c.id();
        frames.push(c.frame(KvMethod.Get, get(key), { id }));
        expect.set(id, `v${i}`);
      }
      const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
      let off = 0;
      for (const f of frames) {
        all.set(f, off);
        off += f.length;
      }
      await c.send(all);
      const replies = await c.readMany(frames.length);
      let gets = 0;
      for (const r of replies) {
        assert.equal(r.header.status, 0);
        const want = expect.get(r.header.requestId);
        if (want === undefined) continue;
        gets++;
        assert.equal(text(pb.GetReply.decode(r.body).value), want, `Get ${r.header.requestId}`);
      }
      assert.equal(gets, 300);
    });
  });

  Deno.test(`${layout.name}: a key with a TTL behaves as missing once it expires`, async () => {
    await withServer(layout.options, async (server) => {
      using c = await RawClient.connect(server);
      ok(await c.call(KvMethod.Put, put("ttl", "x", 80)), KvMethod.Put);
      ok(await c.call(KvMethod.Put, put("ttl-forever", "y", 0)), KvMethod.Put);
      assert.equal(pb.GetReply.decode((await c.call(KvMethod.Get, get("ttl"))).body).found, true);
      await sleep(200);
      assert.equal(pb.GetReply.decode((await c.call(KvMethod.Get, get("ttl"))).body).found, false);
      const page = pb.ScanReply.decode(
        (await c.call(KvMethod.Scan, scan(utf8("ttl"), new Uint8Array(0), 0))).body,
      );
      assert.deepEqual(page.entries.map((e) => text(e.key)), ["ttl-forever"]);
      assert.equal(
        pb.DeleteReply.decode((await c.call(KvMethod.Delete, del("ttl"))).body).deleted,
        false,
      );
      assert.equal(
        pb.PutReply.decode((await c.call(KvMethod.Put, put("ttl", "z"))).body).replaced,
        false,
      );
    });
  });

  Deno.test(`${layout.name}: Scan returns keys in byte order across shards and pages without gaps`, async () => {
    await withServer(layout.options, async (server) => {
      using c = await RawClient.connect(server);
      const keys: Uint8Array[] = [];
      for (let i = 0; i < 240; i++) {
        keys.push(utf8(`p/${String(i * 7919 % 1000).padStart(4, "0")}`));
      }
      keys.push(
        new Uint8Array([0x70, 0x2f, 0x00]),
        new Uint8Array([0x70, 0x2f, 0xff]),
        new Uint8Array([0x70, 0x2f, 0x80]),
      );
      for (const k of keys) {
        c.send(c.frame(KvMethod.Put, pb.PutRequest.encode({ key: k, value: k }).finish()));
      }
      await c.send(c.frame(KvMethod.Put, put("q/outside", "x")));
      const puts = await c.readMany(keys.length + 1);
      assert.ok(puts.every((r) => r.header.status === 0));
      const want = keys.map((k) => Array.from(k)).sort(compareBytes);
      for (const limit of [7, 1000, 0]) {
        const seen: number[][] = [];
        let after: Uint8Array = new Uint8Array(0);
        for (let page = 0; page < 100; page++) {
          const r = await c.call(KvMethod.Scan, scan(utf8("p/"), after, limit));
          ok(r, KvMethod.Scan);
          const reply = pb.ScanReply.decode(r.body);
          if (limit > 0) assert.ok(reply.entries.length <= limit);
          for (const e of reply.entries) {
            assert.deepEqual(Array.from(e.value!), Array.from(e.key!));
            seen.push(Array.from(e.key!));
          }
          if (!reply.more) break;
          after = reply.entries[reply.entries.length - 1].key!;
        }
        assert.deepEqual(seen, want, `paging with limit ${limit}`);
      }
    });
  });

  Deno.test(`${layout.name}: a ONEWAY request takes effect and gets no reply`, async () => {
    await withServer(layout.options, async (server) => {
      using c = await RawClient.connect(server);
      await c.send(c.frame(KvMethod.Put, put("quiet", "yes"), { flags: Flags.ONEWAY }));
      await c.send(c.frame(KvMethod.Get, get(""), { flags: Flags.ONEWAY })); // an error, still silent
      const r = await c.call(KvMethod.Get, get("quiet"));
      assert.equal(text(pb.GetReply.decode(r.body).value), "yes");
      const p = await c.call(KvMethod.Ping, new Uint8Array(0));
      ok(p, KvMethod.Ping);
    });
  });

  Deno.test(`${layout.name}: frames split anywhere or packed many per write are served`, async () => {
    await withServer(layout.options, async (server) => {
      using c = await RawClient.connect(server);
      const stream = new Uint8Array([
        ...c.frame(KvMethod.Put, put("split", "one"), { id: 1001 }),
        ...c.frame(KvMethod.Get, get("split"), { id: 1002 }),
        ...c.frame(KvMethod.Ping, new Uint8Array(0), { id: 1003 }),
      ]);
      // One byte at a time.
      for (let i = 0; i < stream.length; i++) {
        await c.send(stream.subarray(i, i + 1));
        if (i % 16 === 0) await sleep(1);
      }
      const ids = (await c.readMany(3)).map((r) => r.header.requestId).sort();
      assert.deepEqual(ids, [1001, 1002, 1003]);
      // Split at every position of the stream, in two writes.
      for (let cut = 1; cut < stream.length; cut += 5) {
        await c.send(stream.subarray(0, cut));
        await sleep(0);
        await c.send(stream.subarray(cut));
        const got = await c.readMany(3);
        assert.ok(got.every((r) => r.header.status === 0), `cut at ${cut}`);
      }
      // Many frames in one write.
      const many: number[] = [];
      for (let i = 0; i < 500; i++) {
        many.push(
          ...c.frame(KvMethod.Ping, pb.PingRequest.encode({ payload: utf8(`p${i}`) }).finish()),
        );
      }
      await c.send(new Uint8Array(many));
      const replies = await c.readMany(500);
      assert.equal(
        new Set(replies.map((r) => text(pb.PingReply.decode(r.body).payload))).size,
        500,
      );
    });
  });

  Deno.test(`${layout.name}: bad requests get their status and the connection stays open`, async () => {
    await withServer(layout.options, async (server) => {
      using c = await RawClient.connect(server);
      const cases: [string, Uint8Array, number][] = [
        ["empty key", c.frame(KvMethod.Get, get("")), Status.BAD_REQUEST],
        [
          "key over 1024 bytes",
          c.frame(KvMethod.Put, put(new Uint8Array(1025), "v")),
          Status.BAD_REQUEST,
        ],
        [
          "body that is not protobuf",
          c.frame(KvMethod.Get, new Uint8Array([0xff, 0xff, 0xff])),
          Status.BAD_REQUEST,
        ],
        ["unknown method", c.frame(77, new Uint8Array(0)), Status.UNKNOWN_METHOD],
      ];
      const crcBad = c.frame(KvMethod.Get, get("k"));
      crcBad[crcBad.length - 1] ^= 0x01;
      cases.push(["corrupt trailer", crcBad, Status.CRC_MISMATCH]);
      for (const [what, frame, status] of cases) {
        await c.send(frame);
        const r = (await c.read())!;
        assert.equal(r.header.status, status, what);
        assert.equal(r.header.flags, Flags.REPLY | Flags.ERROR, what);
        const err = pb.Error.decode(r.body);
        assert.equal(err.code, status, what);
        assert.ok(err.message.length > 0, what);
        ok(await c.call(KvMethod.Ping, new Uint8Array(0)), KvMethod.Ping);
      }
      const key1024 = await c.call(KvMethod.Put, put(new Uint8Array(1024).fill(7), "v"));
      ok(key1024, KvMethod.Put);
    });
  });
}

function compareBytes(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
