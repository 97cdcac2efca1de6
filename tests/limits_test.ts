/**
 * Memory bounds that hold whatever one client sends: the output cap counts
 * replies still owed, receive buffers follow the bytes that arrived, and
 * the server-wide client memory cap closes the largest client first. Each
 * against a real server on loopback.
 */
import assert from "node:assert/strict";
import { DEFAULT_LIMITS, DEFAULT_MAX_BODY, KvMethod, outputBound, pb, Status } from "../mod.ts";
import { connect } from "../src/client/mod.ts";
import { INITIAL_RECEIVE_BYTES } from "../src/server/io/connection.ts";
import { RawClient, sleep, utf8, withServer } from "./support.ts";

/** Waits until `ok()` holds, for at most `ms`; returns whether it did. */
async function until(ok: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(10)) if (ok()) return true;
  return ok();
}

Deno.test("a client pipelining Gets of 1 MiB values and never reading stays within the output bound while another client is served", async () => {
  await withServer({ mode: "pool", ioThreads: 1, workers: 2 }, async (server) => {
    const bound = outputBound(DEFAULT_LIMITS, DEFAULT_MAX_BODY);
    using setup = await RawClient.connect(server);
    const value = new Uint8Array(1 << 20).fill(7);
    const put = await setup.call(
      KvMethod.Put,
      pb.PutRequest.encode({ key: utf8("big"), value }).finish(),
    );
    assert.equal(put.header.status, 0);
    await setup.call(
      KvMethod.Put,
      pb.PutRequest.encode({ key: utf8("small"), value: utf8("s") }).finish(),
    );
    const rssBefore = Deno.memoryUsage().rss;

    // 4000 Gets of 1 MiB: 4 GiB of replies if the server queued them all.
    const hog = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    const get = setup.frame(KvMethod.Get, pb.GetRequest.encode({ key: utf8("big") }).finish());
    const burst = new Uint8Array(get.length * 4000);
    for (let i = 0; i < 4000; i++) burst.set(get, i * get.length);
    const writing = (async () => {
      let off = 0;
      while (off < burst.length) off += await hog.write(burst.subarray(off));
    })().catch(() => {});

    await using bystander = await connect({ port: server.addr.port, timeoutMs: 5000 });
    let peak = 0;
    let rssPeak = 0;
    for (let i = 0; i < 40; i++) {
      await sleep(25);
      peak = Math.max(peak, server.stats().resources.output_buffer.heldBytes);
      rssPeak = Math.max(rssPeak, Deno.memoryUsage().rss);
      const got = await bystander.get("small");
      assert.equal(got?.length, 1, "the other client is still served");
    }
    const snap = server.stats();
    assert.ok(snap.counters.reads_paused > 0, "the hog was paused");
    assert.ok(peak > 2 * value.length, `replies really were queued for the hog (${peak} B)`);
    assert.ok(peak <= bound, `queued output ${peak} B stayed within ${bound} B`);
    // The whole process (server and this test) grew by little more than the
    // bound, where queueing every reply owed (1024 in flight) would take 1 GiB.
    const grew = rssPeak - rssBefore;
    assert.ok(grew < 8 * bound, `RSS grew by ${grew} B`);
    hog.close();
    await writing;
  });
});

Deno.test("replies past the output cap become OVERLOADED errors for that client only, in order", async () => {
  const maxOutputBytes = 256 * 1024;
  await withServer(
    { mode: "pool", ioThreads: 1, workers: 2, limits: { maxOutputBytes } },
    async (server) => {
      using c = await RawClient.connect(server);
      const value = new Uint8Array(100 * 1024).fill(3);
      const put = await c.call(
        KvMethod.Put,
        pb.PutRequest.encode({ key: utf8("v"), value }).finish(),
      );
      assert.equal(put.header.status, 0);
      // Sent in one write before reading anything: the server cannot know the
      // size of the first replies, so some arrive past the cap.
      const ids: number[] = [];
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 20; i++) {
        const id = c.id();
        ids.push(id);
        frames.push(
          c.frame(KvMethod.Get, pb.GetRequest.encode({ key: utf8("v") }).finish(), { id }),
        );
      }
      await c.send(new Uint8Array(frames.flatMap((f) => [...f])));
      await until(() => server.stats().counters.replies >= 21);
      const replies = await c.readMany(20);
      assert.deepEqual(replies.map((r) => r.header.requestId), ids, "replies keep request order");
      const ok = replies.filter((r) => r.header.status === Status.OK);
      const refused = replies.filter((r) => r.header.status === Status.OVERLOADED);
      assert.equal(ok.length + refused.length, 20);
      assert.ok(ok.length >= 2, `at least the cap's worth was delivered (${ok.length})`);
      for (const r of ok) assert.equal(pb.GetReply.decode(r.body).value?.length, value.length);
      for (const r of refused) {
        assert.match(pb.Error.decode(r.body).message, /past 262144 bytes; read replies/);
      }
      const counters = server.stats().counters;
      assert.equal(counters.output_overflows, refused.length);
      // Once it reads, the same client is served in full again.
      const again = await c.call(KvMethod.Get, pb.GetRequest.encode({ key: utf8("v") }).finish());
      assert.equal(again.header.status, Status.OK);
    },
  );
});

Deno.test("200 connections that claim 4 MiB bodies and send only headers hold only small receive buffers", async () => {
  await withServer({ mode: "pool", ioThreads: 2, workers: 2 }, async (server) => {
    const before = server.stats();
    const liars: RawClient[] = [];
    try {
      for (let i = 0; i < 200; i++) {
        const c = await RawClient.connect(server);
        liars.push(c);
        const body = new Uint8Array(4 * 1024 * 1024 - 64);
        const frame = c.frame(KvMethod.Put, body);
        await c.send(frame.subarray(0, 24)); // the header alone, claiming the whole body
      }
      const arrived = await until(() =>
        server.stats().counters.bytes_in - before.counters.bytes_in >= 200 * 24
      );
      assert.ok(arrived, "the server read every header");
      const held = server.stats().resources.receive_buffer.heldBytes;
      assert.ok(
        held <= 200 * INITIAL_RECEIVE_BYTES,
        `receive buffers hold ${held} B, not the 800 MiB claimed`,
      );
      // A sender that does send its big body is still served.
      using honest = await RawClient.connect(server);
      const value = new Uint8Array(3 * 1024 * 1024).fill(9);
      const r = await honest.call(
        KvMethod.Put,
        pb.PutRequest.encode({ key: utf8("honest"), value }).finish(),
      );
      assert.equal(r.header.status, Status.OK);
    } finally {
      for (const c of liars) c.close();
    }
  });
});

Deno.test("past --max-client-memory the connection holding the most is closed first, and a counter says so", async () => {
  const maxClientMemory = 700 * 1024;
  await withServer(
    { mode: "pool", ioThreads: 1, workers: 1, limits: { maxClientMemory } },
    async (server) => {
      using small = await RawClient.connect(server);
      assert.equal((await small.call(KvMethod.Ping, new Uint8Array(0))).header.status, 0);
      using big = await RawClient.connect(server);
      using medium = await RawClient.connect(server);
      const putFrame = (c: RawClient, key: string, bytes: number) =>
        c.frame(
          KvMethod.Put,
          pb.PutRequest.encode({ key: utf8(key), value: new Uint8Array(bytes) }).finish(),
        );
      // big: 400 KiB of a 2 MiB Put, so its receive buffer grows to ~512 KiB.
      const bigFrame = putFrame(big, "big", 2 * 1024 * 1024);
      await big.send(bigFrame.subarray(0, 400 * 1024));
      await until(() => server.stats().counters.bytes_in >= 400 * 1024);
      assert.equal(server.stats().counters.connections_evicted, 0, "under the cap so far");
      // medium: 200 KiB of a 300 KiB Put takes the total past the cap.
      const mediumFrame = putFrame(medium, "medium", 300 * 1024);
      await medium.send(mediumFrame.subarray(0, 200 * 1024));
      assert.ok(await until(() => server.stats().counters.connections_evicted === 1));
      await big.expectClosed();
      await medium.send(mediumFrame.subarray(200 * 1024));
      const r = await medium.read();
      assert.equal(r?.header.status, Status.OK, "the client that grew last was kept");
      assert.equal((await small.call(KvMethod.Ping, new Uint8Array(0))).header.status, 0);
      assert.equal(server.stats().counters.connections_evicted, 1);
    },
  );
});
