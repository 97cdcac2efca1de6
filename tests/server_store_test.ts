/**
 * End-to-end: the store's memory cap, eviction and active expiry through a
 * real server, on wire v1 and RESP.
 */
import assert from "node:assert/strict";
import { KvMethod, parseServeFlags, pb, Status } from "../mod.ts";
import { LAYOUTS, RawClient, sleep, text, utf8, withServer } from "./support.ts";

const VALUE = "v".repeat(100);
const put = (key: string, value = VALUE, ttlMs = 0) =>
  pb.PutRequest.encode({ key: utf8(key), value: utf8(value), ttlMs }).finish();
const get = (key: string) => pb.GetRequest.encode({ key: utf8(key) }).finish();
const del = (key: string) => pb.DeleteRequest.encode({ key: utf8(key) }).finish();

async function stats(c: RawClient): Promise<Map<string, number>> {
  const reply = await c.call(KvMethod.Stats, pb.StatsRequest.encode({}).finish());
  assert.equal(reply.header.status, Status.OK);
  return new Map(
    pb.StatsReply.decode(reply.body).counters.map((r) => [r.name ?? "", Number(r.value)]),
  );
}

/** Sends `bodies` as Put requests in one write and returns the reply statuses. */
async function putMany(c: RawClient, bodies: Uint8Array[]): Promise<number[]> {
  const frames = bodies.map((b) => c.frame(KvMethod.Put, b));
  const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let off = 0;
  for (const f of frames) {
    all.set(f, off);
    off += f.length;
  }
  await c.send(all);
  return (await c.readMany(bodies.length)).map((r) => r.header.status);
}

/** Polls Stats until `pred` holds (or about 10 s pass); returns the last rows. */
async function statsUntil(
  c: RawClient,
  pred: (rows: Map<string, number>) => boolean,
): Promise<Map<string, number>> {
  let rows = await stats(c);
  for (let i = 0; i < 200 && !pred(rows); i++) {
    await sleep(50);
    rows = await stats(c);
  }
  return rows;
}

Deno.test("--max-memory and --eviction parse into the service options, and bad ones are refused", () => {
  const flags = parseServeFlags(["--max-memory", "64MiB", "--eviction", "allkeys-lru"]);
  assert.deepEqual(flags.options.serviceOptions, {
    maxMemory: 64 << 20,
    eviction: "allkeys-lru",
  });
  assert.deepEqual(parseServeFlags([]).options.serviceOptions, {});
  assert.throws(() => parseServeFlags(["--eviction", "lru"]), /--eviction: "lru" is not one of/);
  assert.throws(() => parseServeFlags(["--max-memory", "lots"]), /not a size/);
});

for (const layout of [LAYOUTS[0], LAYOUTS[1]]) {
  Deno.test(`${layout.name}: at the cap under noeviction a Put gets NO_MEMORY, writes nothing, and reads and deletes still work`, async () => {
    const serviceOptions = { maxMemory: 4 << 20, eviction: "noeviction" };
    await withServer({ ...layout.options, serviceOptions, respPort: 0 }, async (server) => {
      using c = await RawClient.connect(server);
      let refused = -1;
      for (let i = 0; i < 100_000 && refused < 0; i++) {
        const r = await c.call(KvMethod.Put, put(`key:${i}`));
        if (r.header.status !== Status.OK) {
          assert.equal(r.header.status, Status.NO_MEMORY);
          assert.match(pb.Error.decode(r.body).message, /memory cap/);
          refused = i;
        }
      }
      assert.ok(refused > 1000, `refused at key ${refused}`);
      const missing = await c.call(KvMethod.Get, get(`key:${refused}`));
      assert.equal(
        pb.GetReply.decode(missing.body).found,
        false,
        "the refused key was not written",
      );
      const first = await c.call(KvMethod.Get, get("key:0"));
      assert.equal(text(pb.GetReply.decode(first.body).value), VALUE);
      const rows = await stats(c);
      assert.equal(rows.get("maxmemory"), 4 << 20);
      assert.ok(rows.get("used_memory")! <= 4 << 20, `used_memory ${rows.get("used_memory")}`);
      assert.equal(rows.get("keys"), refused);
      assert.equal(rows.get("evicted_keys"), 0);
      assert.ok(rows.get("errors.NO_MEMORY")! >= 1);

      // RESP: Redis's OOM line, and nothing stored.
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.respPort! });
      try {
        const key = `resp:${"x".repeat(8)}`;
        const cmd =
          `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${VALUE.length}\r\n${VALUE}\r\n`;
        await conn.write(utf8(cmd + `*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`));
        let seen = "";
        const buf = new Uint8Array(4096);
        while (!seen.includes("$-1\r\n") && seen.split("\r\n").length < 3) {
          const n = await conn.read(buf);
          assert.ok(n !== null, "the RESP connection closed");
          seen += text(buf.subarray(0, n));
        }
        assert.equal(seen, "-OOM command not allowed when used memory > 'maxmemory'.\r\n$-1\r\n");
      } finally {
        conn.close();
      }

      // Deleting makes room again.
      for (let i = 0; i < 100; i++) await c.call(KvMethod.Delete, del(`key:${i}`));
      const again = await c.call(KvMethod.Put, put(`key:${refused}`));
      assert.equal(again.header.status, Status.OK);
    });
  });
}

Deno.test("under allkeys-lru a stream of new keys stays within the cap and evicts old keys", async () => {
  const serviceOptions = { maxMemory: 4 << 20, eviction: "allkeys-lru" };
  await withServer({ ...LAYOUTS[1].options, serviceOptions }, async (server) => {
    using c = await RawClient.connect(server);
    for (let i = 0; i < 60_000; i += 500) {
      const statuses = await putMany(c, Array.from({ length: 500 }, (_, j) => put(`key:${i + j}`)));
      assert.deepEqual(new Set(statuses), new Set([Status.OK]));
    }
    const rows = await stats(c);
    assert.ok(rows.get("used_memory")! <= 4 << 20);
    assert.ok(rows.get("evicted_keys")! > 20_000, `evicted ${rows.get("evicted_keys")}`);
    assert.equal(rows.get("keys")! + rows.get("evicted_keys")!, 60_000);
    const last = await c.call(KvMethod.Get, get("key:59999"));
    assert.equal(pb.GetReply.decode(last.body).found, true, "the newest key is kept");
  });
});

for (const layout of [LAYOUTS[0], LAYOUTS[1]]) {
  Deno.test(`${layout.name}: keys with a TTL are swept without any read, and Stats counts them`, async () => {
    await withServer(layout.options, async (server) => {
      using c = await RawClient.connect(server);
      const bodies = [];
      for (let i = 0; i < 2000; i++) bodies.push(put(`ttl:${i}`, VALUE, 300));
      for (let i = 0; i < 500; i++) bodies.push(put(`keep:${i}`));
      for (let i = 0; i < bodies.length; i += 250) {
        assert.deepEqual(new Set(await putMany(c, bodies.slice(i, i + 250))), new Set([Status.OK]));
      }
      const loaded = await statsUntil(c, (r) => r.get("keys") === 2500);
      assert.equal(loaded.get("keys"), 2500);
      assert.equal(loaded.get("keys_with_ttl"), 2000);
      // No Get, Scan or Delete from here on: only Stats, which reads no key.
      const rows = await statsUntil(c, (r) => r.get("keys") === 500);
      assert.equal(rows.get("keys"), 500);
      assert.equal(rows.get("keys_with_ttl"), 0);
      assert.equal(rows.get("expired_keys"), 2000);
    });
  });
}
