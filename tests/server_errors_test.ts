/**
 * End-to-end: the error statuses that need a server in a particular state
 * (a small body limit, a busy shard, a drain), and what each does to the
 * connection, using the echo service from examples/.
 */
import assert from "node:assert/strict";
import { KvMethod, pb, serve, Status } from "../mod.ts";
import { Flags, MAGIC } from "../src/protocol/constants.ts";
import { writeHeader } from "../src/protocol/frame.ts";
import { EchoMethod } from "../examples/echo_service.ts";
import { ECHO_SERVICE, LAYOUTS, RawClient, sleep, utf8, withServer } from "./support.ts";

const payload = (bytes: number[] | Uint8Array) =>
  pb.PingRequest.encode({ payload: Uint8Array.from(bytes) }).finish();

for (const layout of LAYOUTS) {
  Deno.test(`${layout.name}: a body over the limit gets TOO_LARGE and then the connection closes`, async () => {
    await withServer({ ...layout.options, maxBody: 1024 }, async (server) => {
      using c = await RawClient.connect(server);
      using bystander = await RawClient.connect(server);
      const header = new Uint8Array(24);
      writeHeader(header, 0, 0, KvMethod.Put, 4242, 0, 1025, 0);
      await c.send(header); // no body follows: the header alone must be enough
      const r = (await c.read())!;
      assert.equal(r.header.status, Status.TOO_LARGE);
      assert.equal(r.header.requestId, 4242);
      assert.equal(r.header.code, KvMethod.Put);
      assert.equal(r.header.flags, Flags.REPLY | Flags.ERROR);
      assert.equal(pb.Error.decode(r.body).code, Status.TOO_LARGE);
      await c.expectClosed();
      const ok = await bystander.call(KvMethod.Ping, payload([1]));
      assert.equal(ok.header.status, 0);
      // Exactly at the limit is fine.
      const big = await bystander.call(KvMethod.Ping, payload(new Uint8Array(1000)));
      assert.equal(big.header.status, 0);
    });
  });

  Deno.test(`${layout.name}: a wrong magic or version closes only that connection, with no reply`, async () => {
    await withServer(layout.options, async (server) => {
      using bystander = await RawClient.connect(server);
      for (const bad of [utf8("GET / HTTP/1.1\r\n"), new Uint8Array([0x45, 0x56, 0x4b, 0x56, 2])]) {
        using c = await RawClient.connect(server);
        await c.send(bad);
        await c.expectClosed();
      }
      const good = new Uint8Array(24);
      writeHeader(good, 0, 0, KvMethod.Ping, 1, 0, 0, 0);
      assert.equal(new DataView(good.buffer).getUint32(0, true), MAGIC);
      const r = await bystander.call(KvMethod.Ping, new Uint8Array(0));
      assert.equal(r.header.status, 0);
    });
  });

  Deno.test(`${layout.name}: a throwing handler gets INTERNAL for that request only`, async () => {
    await withServer({ ...layout.options, service: ECHO_SERVICE }, async (server) => {
      using c = await RawClient.connect(server);
      const r = await c.call(EchoMethod.Fail, payload([1]));
      assert.equal(r.header.status, Status.INTERNAL);
      assert.match(pb.Error.decode(r.body).message, /always fails/);
      const echo = await c.call(EchoMethod.Echo, payload([5, 6]));
      assert.deepEqual(Array.from(pb.PingReply.decode(echo.body).payload), [5, 6]);
    });
  });

  Deno.test(`${layout.name}: a request still queued after its timeout gets DEADLINE_EXCEEDED and is not run`, async () => {
    await withServer({ ...layout.options, service: ECHO_SERVICE }, async (server) => {
      using c = await RawClient.connect(server);
      // Sleep always runs on shard 0: the second request waits behind the
      // first for ~150 ms, far past its 20 ms deadline.
      await c.send(
        new Uint8Array([
          ...c.frame(EchoMethod.Sleep, payload([15]), { id: 1 }),
          ...c.frame(EchoMethod.Sleep, payload([0, 9]), { id: 2, timeoutMs: 20 }),
          ...c.frame(EchoMethod.Sleep, payload([0, 8]), { id: 3, timeoutMs: 60_000 }),
        ]),
      );
      const byId = new Map((await c.readMany(3)).map((r) => [r.header.requestId, r]));
      assert.equal(byId.get(1)!.header.status, Status.OK);
      assert.equal(byId.get(2)!.header.status, Status.DEADLINE_EXCEEDED);
      assert.equal(pb.Error.decode(byId.get(2)!.body).code, Status.DEADLINE_EXCEEDED);
      assert.equal(byId.get(3)!.header.status, Status.OK);
      assert.equal((await c.call(EchoMethod.Echo, payload([1]))).header.status, Status.OK);
    });
  });

  Deno.test(`${layout.name}: requests that arrive during a drain get SHUTTING_DOWN, then the connection closes`, async () => {
    await withServer({ ...layout.options, service: ECHO_SERVICE }, async (server) => {
      using c = await RawClient.connect(server);
      await c.send(c.frame(EchoMethod.Delay, payload([20]), { id: 1 })); // 200 ms in flight
      await sleep(30);
      const stopping = server.shutdown();
      await sleep(30);
      await c.send(c.frame(EchoMethod.Echo, payload([2]), { id: 2 }));
      const byId = new Map((await c.readMany(2)).map((r) => [r.header.requestId, r]));
      assert.equal(byId.get(1)!.header.status, Status.OK, "the request in flight finishes");
      assert.equal(byId.get(2)!.header.status, Status.SHUTTING_DOWN);
      await c.expectClosed();
      const report = await stopping;
      assert.equal(report.forced, false);
    });
  });
}

for (const layout of LAYOUTS.filter((l) => l.options.mode === "pool")) {
  // In inline mode a request for the connection's own shard never waits in
  // a ring, so the ring can only fill in pool mode.
  Deno.test(`${layout.name}: a full task ring answers OVERLOADED at once and the server recovers`, async () => {
    await withServer(
      { ...layout.options, service: ECHO_SERVICE, maxBody: 512, ringBytes: 4096 },
      async (server) => {
        using c = await RawClient.connect(server);
        const frames: number[] = [...c.frame(EchoMethod.Sleep, payload([10]), { id: 1 })];
        for (let i = 0; i < 400; i++) {
          frames.push(...c.frame(EchoMethod.Sleep, payload([0]), { id: 100 + i }));
        }
        await c.send(new Uint8Array(frames));
        const replies = await c.readMany(401);
        const overloaded = replies.filter((r) => r.header.status === Status.OVERLOADED);
        const served = replies.filter((r) => r.header.status === Status.OK);
        assert.ok(overloaded.length > 0, "some requests are refused");
        assert.ok(served.length > 1, "the ones that fit are served");
        assert.equal(overloaded.length + served.length, 401);
        assert.match(pb.Error.decode(overloaded[0].body).message, /full/);
        const after = await c.call(EchoMethod.Sleep, payload([0]));
        assert.equal(after.header.status, Status.OK, "the server recovers once the ring drains");
        const stats = server.stats();
        assert.equal(stats.counters["errors.OVERLOADED"], overloaded.length);
      },
    );
  });
}

Deno.test("a start on a port already in use fails at once with the listen error, not a timeout", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  await assert.rejects(
    serve({ port, ioThreads: 1, workers: 1, persist: { mode: "off" } }),
    (e: Error) => {
      assert.match(e.message, /Start evkv-io-0: .*Address already in use/);
      return true;
    },
  );
});
