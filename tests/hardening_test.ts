/**
 * Hardening: backpressure, fairness, timeouts, the connection cap and
 * worker faults, each against a real server on loopback. (OVERLOADED from
 * a full ring, expired deadlines and throwing handlers are covered in
 * server_errors_test.ts; hostile bytes in fuzz_test.ts.)
 */
import assert from "node:assert/strict";
import { DEFAULT_LIMITS, DEFAULT_MAX_BODY, KvMethod, outputBound, pb, Status } from "../mod.ts";
import { Flags } from "../src/protocol/constants.ts";
import { connect } from "../src/client/mod.ts";
import { EchoMethod } from "../examples/echo_service.ts";
import { ECHO_SERVICE, RawClient, sleep, utf8, withServer } from "./support.ts";

const ping = (n = 0) => pb.PingRequest.encode({ payload: new Uint8Array([n]) }).finish();

Deno.test("a client that never reads cannot grow the server's memory past its output bound, and others are still served", async () => {
  const maxOutputBytes = 256 * 1024;
  const maxInflightPerConnection = 64;
  const value = new Uint8Array(16 * 1024).fill(7);
  // The bound the README states: the cap or one reply, whichever is more,
  // plus one small error per request in flight.
  const bound = outputBound(
    { ...DEFAULT_LIMITS, maxOutputBytes, maxInflightPerConnection },
    DEFAULT_MAX_BODY,
  );
  await withServer(
    {
      mode: "pool",
      ioThreads: 1,
      workers: 1,
      limits: { maxOutputBytes, maxInflightPerConnection },
    },
    async (server) => {
      using setup = await RawClient.connect(server);
      const put = await setup.call(
        KvMethod.Put,
        pb.PutRequest.encode({ key: utf8("big"), value }).finish(),
      );
      assert.equal(put.header.status, 0);

      const hog = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      const get = setup.frame(KvMethod.Get, pb.GetRequest.encode({ key: utf8("big") }).finish());
      const burst = new Uint8Array(get.length * 4000); // 4000 Gets: ~64 MB of replies
      for (let i = 0; i < 4000; i++) burst.set(get, i * get.length);
      // The server stops reading, so this write may never finish: let it hang
      // in the background and close the socket at the end.
      const writing = (async () => {
        let off = 0;
        while (off < burst.length) off += await hog.write(burst.subarray(off));
      })().catch(() => {});

      let peak = 0;
      const bystander = await connect({ port: server.addr.port, timeoutMs: 5000 });
      for (let i = 0; i < 40; i++) {
        await sleep(25);
        peak = Math.max(peak, server.stats().resources.output_buffer.heldBytes);
        assert.equal((await bystander.ping(`still here ${i}`)).length > 0, true);
      }
      const snap = server.stats();
      assert.ok(snap.counters.reads_paused > 0, "the hog was paused");
      assert.ok(peak > 0, "replies really were queued for the hog");
      assert.ok(peak <= bound, `queued output ${peak} B stayed under ${bound} B`);
      await bystander.close();
      hog.close();
      await writing;
    },
  );
});

Deno.test("a client pipelining big values pauses itself instead of filling a ring others share", async () => {
  // 64 KiB bodies make 1 MiB rings; each connection may keep 256 KiB in them.
  await withServer(
    { mode: "pool", ioThreads: 1, workers: 1, maxBody: 64 * 1024 },
    async (server) => {
      const value = new Uint8Array(60 * 1024).fill(1);
      const heavy = await Promise.all(
        [1, 2].map(() => connect({ port: server.addr.port, timeoutMs: 20_000 })),
      );
      await using light = await connect({ port: server.addr.port, timeoutMs: 20_000 });
      let lightCalls = 0;
      const flood = Promise.all(
        heavy.map((kv, c) =>
          Promise.all(Array.from({ length: 120 }, (_, i) => kv.put(`big-${c}-${i}`, value)))
        ),
      );
      let done = false;
      flood.then(() => done = true, () => done = true);
      for (let i = 0; i < 2000 && !done; i++) {
        await light.put(`small-${i}`, "x"); // rejects on OVERLOADED
        lightCalls++;
      }
      const results = await flood;
      assert.ok(results.flat().every((replaced) => replaced === false), "every big Put succeeded");
      assert.ok(lightCalls > 0);
      const snap = server.stats();
      assert.equal(snap.counters["errors.OVERLOADED"], 0);
      assert.ok(snap.counters.reads_paused > 0, "the heavy clients were paused");
      for (const kv of heavy) await kv.close();
    },
  );
});

Deno.test("a connection pipelining a flood is served in turns, and a neighbour is not starved", async () => {
  await withServer(
    { mode: "inline", ioThreads: 1, service: ECHO_SERVICE, limits: { framesPerTurn: 4 } },
    async (server) => {
      using flood = await RawClient.connect(server);
      using neighbour = await RawClient.connect(server);
      const frames: number[] = [];
      for (let i = 0; i < 5000; i++) frames.push(...flood.frame(EchoMethod.Echo, ping()));
      await flood.send(new Uint8Array(frames));
      const r = await neighbour.call(EchoMethod.Echo, ping(9));
      assert.equal(r.header.status, 0);
      const replies = await flood.readMany(5000);
      assert.ok(replies.every((f) => f.header.status === 0));
      assert.ok(server.stats().counters.turns_yielded > 0, "the flood gave up its turn");
    },
  );
});

Deno.test("the idle timeout closes silent and half-sent connections, not busy ones", async () => {
  await withServer({ mode: "pool", limits: { idleTimeoutMs: 300 } }, async (server) => {
    using silent = await RawClient.connect(server);
    using half = await RawClient.connect(server);
    using busy = await RawClient.connect(server);
    const frame = half.frame(KvMethod.Ping, ping());
    await half.send(frame.subarray(0, 10)); // a peer that stopped mid-frame
    for (let i = 0; i < 12; i++) {
      await sleep(100);
      assert.equal((await busy.call(KvMethod.Ping, ping(i))).header.status, 0);
    }
    await silent.expectClosed();
    await half.expectClosed();
    assert.ok(server.stats().counters.connections_timed_out >= 2);
  });
});

Deno.test("connections past the limit are refused with an OVERLOADED frame, and room frees up", async () => {
  await withServer({ mode: "pool", limits: { maxConnections: 3 } }, async (server) => {
    const open = await Promise.all([1, 2, 3].map(() => RawClient.connect(server)));
    for (const c of open) assert.equal((await c.call(KvMethod.Ping, ping())).header.status, 0);
    using extra = await RawClient.connect(server);
    const refusal = await extra.read();
    assert.ok(refusal);
    assert.equal(refusal.header.status, Status.OVERLOADED);
    assert.equal(refusal.header.requestId, 0);
    assert.equal(refusal.header.flags, Flags.REPLY | Flags.ERROR);
    assert.match(pb.Error.decode(refusal.body).message, /limit of 3 connections/);
    await extra.expectClosed();
    assert.equal(server.stats().counters.connections_rejected, 1);
    open[0].close();
    let admitted = false;
    for (let i = 0; i < 50 && !admitted; i++) {
      await sleep(20);
      using again = await RawClient.connect(server);
      await again.send(again.frame(KvMethod.Ping, ping(), { id: 77 }));
      const r = await again.read();
      admitted = r !== null && r.header.requestId === 77 && r.header.status === 0;
    }
    assert.ok(admitted, "a slot frees once a connection closes");
    for (const c of open) c.close();
  });
});

for (const mode of ["pool", "inline"] as const) {
  Deno.test(`${mode}: a worker that throws outside any handler is restarted and the server keeps serving`, async () => {
    await withServer({ mode, service: ECHO_SERVICE }, async (server) => {
      // In inline mode shard 0 lives in IO worker 0, so its crash also closes
      // that worker's connections: use a fresh connection per call.
      {
        await using c = await connect({ port: server.addr.port });
        await c.call(EchoMethod.Crash, ping()).catch(() => {});
      }
      const which = mode === "pool" ? "worker_restarts" : "io_worker_restarts";
      for (let i = 0; i < 100 && server.stats().counters[which] === 0; i++) await sleep(20);
      assert.equal(server.stats().counters[which], 1, "the restart shows in stats");
      let served = 0;
      for (let i = 0; i < 100 && served < 5; i++) {
        try {
          await using c = await connect({ port: server.addr.port, timeoutMs: 2000 });
          const r = await c.call(EchoMethod.Sleep, ping()); // shard 0: the restarted one
          if (r.length > 0) served++;
        } catch {
          await sleep(20); // the restarted IO worker may still be starting
        }
      }
      assert.equal(served, 5);
      assert.equal(server.stats().counters[which], 1);
    });
  });
}

Deno.test("a killed task worker fails only the requests it held, loses its shard, and is restarted", async () => {
  await withServer({ mode: "pool", ioThreads: 2, workers: 2 }, async (server) => {
    await using kv = await connect({ port: server.addr.port });
    const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
    for (const k of keys) await kv.put(k, "v");
    await server.killWorker("task", 0);
    assert.equal(server.stats().counters.worker_restarts, 1);
    // The other shard kept its keys, the killed one lost them; nothing else broke.
    const kept = new Set<string>();
    for (const k of keys) if (await kv.get(k)) kept.add(k);
    assert.ok(kept.size > 0 && kept.size < keys.length, `kept ${kept.size} of ${keys.length}`);
    // Both shards take writes again; a Put replaces exactly the keys kept.
    for (const k of keys) assert.equal(await kv.put(k, "w"), kept.has(k), k);
    const rows = new Map((await kv.stats()).map((r) => [r.name, r.value]));
    assert.equal(rows.get("worker_restarts"), 1);
  });
});

Deno.test("requests queued for a killed task worker get INTERNAL, others are unaffected", async () => {
  await withServer(
    { mode: "pool", ioThreads: 1, workers: 2, service: ECHO_SERVICE },
    async (server) => {
      using c = await RawClient.connect(server);
      const frames = [...c.frame(EchoMethod.Sleep, ping(30), { id: 1 })]; // 300 ms on shard 0
      for (let i = 0; i < 5; i++) {
        frames.push(
          ...c.frame(EchoMethod.Sleep, ping(0), { id: 10 + i }),
        );
      }
      await c.send(new Uint8Array(frames));
      await sleep(60);
      const killed = server.killWorker("task", 0);
      const replies = await c.readMany(6);
      await killed;
      const byId = new Map(replies.map((r) => [r.header.requestId, r]));
      assert.equal(byId.get(1)!.header.status, Status.OK, "the running request finished");
      for (let i = 0; i < 5; i++) {
        const r = byId.get(10 + i)!;
        assert.equal(r.header.status, Status.INTERNAL);
        assert.match(pb.Error.decode(r.body).message, /died before replying/);
      }
      assert.equal((await c.call(EchoMethod.Sleep, ping(0))).header.status, Status.OK);
    },
  );
});

for (const mode of ["pool", "inline"] as const) {
  Deno.test(`${mode}: a killed IO worker closes only its connections, and the others keep serving`, async () => {
    await withServer({ mode, accept: "main", ioThreads: 2, workers: 2 }, async (server) => {
      // Main-thread accept hands connections out in turn: one per IO worker.
      using onFirst = await RawClient.connect(server);
      using onSecond = await RawClient.connect(server);
      for (const c of [onFirst, onSecond]) {
        assert.equal((await c.call(KvMethod.Ping, ping())).header.status, 0);
      }
      await server.killWorker("io", 1);
      await onSecond.expectClosed();
      const r = await onFirst.call(
        KvMethod.Put,
        pb.PutRequest.encode({ key: utf8("after"), value: utf8("x") }).finish(),
      );
      assert.equal(r.header.status, 0);
      assert.equal(server.stats().counters.io_worker_restarts, 1);
      // The replacement takes connections again.
      for (let i = 0; i < 4; i++) {
        using fresh = await RawClient.connect(server);
        assert.equal((await fresh.call(KvMethod.Ping, ping(i))).header.status, 0);
      }
    });
  });
}
