/**
 * The watchdog and an honest shutdown, against real servers on loopback:
 * a handler that spins forever is replaced while other shards keep
 * answering and what its shard owed gets INTERNAL; a slow handler that
 * keeps finishing requests is left alone; a drain that times out with
 * resources held exits non-zero.
 */
import assert from "node:assert/strict";
import { KvMethod, pb, serve, Status } from "../mod.ts";
import { encodeFrame } from "../src/protocol/frame.ts";
import { connect } from "../src/client/mod.ts";
import { exitCodeFor } from "../src/kvserver/cli.ts";
import { StallMethod } from "./fixtures/stall_service.ts";
import { RawClient, sleep, utf8, withServer } from "./support.ts";

const STALL_SERVICE = new URL("./fixtures/stall_service.ts", import.meta.url);
/** A PingRequest body whose payload starts with `bytes` (Echo's shard is bytes[0]). */
const payload = (...bytes: number[]) =>
  pb.PingRequest.encode({ payload: new Uint8Array(bytes) }).finish();

for (const mode of ["pool", "inline"] as const) {
  Deno.test(`${mode}: a handler that spins forever is replaced while another shard keeps answering, and its owed requests get INTERNAL`, async () => {
    // Main-thread accept hands connections out in turn: IO worker 0, 1, 0,
    // 1. In inline mode shard 0 lives in IO worker 0, so the two clients
    // watched sit on IO worker 1, which survives.
    await withServer(
      {
        mode,
        accept: "main",
        ioThreads: 2,
        workers: 2,
        service: STALL_SERVICE,
        limits: { stallTimeoutMs: 600 },
      },
      async (server) => {
        using _first = await RawClient.connect(server);
        using stuck = await RawClient.connect(server);
        using _third = await RawClient.connect(server);
        using other = await RawClient.connect(server);
        for (const c of [stuck, other]) {
          assert.equal((await c.call(StallMethod.Echo, payload(1))).header.status, Status.OK);
        }
        await stuck.send(
          new Uint8Array([
            ...stuck.frame(StallMethod.Spin, payload(0), { id: 501 }),
            ...stuck.frame(StallMethod.Echo, payload(0), { id: 502 }), // queued behind it on shard 0
          ]),
        );
        const owed = stuck.readMany(2);
        let answered = 0;
        let settled = false;
        owed.finally(() => settled = true).catch(() => {});
        for (let i = 0; !settled && i < 400; i++) {
          const r = await other.call(StallMethod.Echo, payload(1)); // shard 1
          assert.equal(r.header.status, Status.OK, "shard 1 answers throughout");
          answered++;
          await sleep(20);
        }
        const replies = await owed;
        assert.ok(answered > 0);
        assert.deepEqual(replies.map((r) => r.header.requestId), [501, 502]);
        for (const r of replies) {
          assert.equal(r.header.status, Status.INTERNAL);
          assert.match(
            pb.Error.decode(r.body).message,
            /shard 0 was stuck \(no progress for \d+ ms\) and was replaced before replying/,
          );
        }
        const c = server.stats().counters;
        assert.equal(c.worker_stalls, 1);
        assert.equal(mode === "pool" ? c.worker_restarts : c.io_worker_restarts, 1);
        // The replacement serves shard 0 again.
        const again = await stuck.call(StallMethod.Echo, payload(0));
        assert.equal(again.header.status, Status.OK);
      },
    );
  });
}

Deno.test("a slow handler that keeps finishing requests is not mistaken for a stuck one", async () => {
  await withServer(
    {
      mode: "pool",
      ioThreads: 1,
      workers: 2,
      service: STALL_SERVICE,
      limits: { stallTimeoutMs: 400 },
    },
    async (server) => {
      using c = await RawClient.connect(server);
      // 16 requests of 100 ms each: shard 0 is busy for 1.6 s, four stall
      // timeouts, but finishes one request every 100 ms.
      const frames: number[] = [];
      for (let i = 0; i < 16; i++) frames.push(...c.frame(StallMethod.Slow, payload(10)));
      await c.send(new Uint8Array(frames));
      const replies = await c.readMany(16);
      assert.ok(replies.every((r) => r.header.status === Status.OK));
      const counters = server.stats().counters;
      assert.equal(counters.worker_stalls, 0);
      assert.equal(counters.worker_restarts, 0);
    },
  );
});

Deno.test("a drain that times out with a handler still stuck reports the kinds held, and the exit code is non-zero", async () => {
  const server = await serve({
    port: 0,
    mode: "pool",
    ioThreads: 1,
    workers: 1,
    service: STALL_SERVICE,
    drainTimeoutMs: 200,
    limits: { stallTimeoutMs: 0 }, // no watchdog: the handler stays stuck
  });
  using c = await RawClient.connect(server);
  await c.send(c.frame(StallMethod.Spin, payload(0)));
  for (let i = 0; i < 100 && server.stats().resources.task.alloc === 0; i++) await sleep(10);
  const report = await server.shutdown();
  assert.equal(report.forced, true);
  assert.ok(report.leaks.includes("task"), `leaks: ${report.leaks.join(", ")}`);
  assert.equal(exitCodeFor(report, false), 1, "non-zero without --strict-leaks");
  assert.equal(exitCodeFor(report, true), 1);
  assert.equal(exitCodeFor({ ...report, forced: false, leaks: [] }, false), 0);
  assert.equal(
    exitCodeFor({ ...report, forced: false }, false),
    0,
    "leaks alone need --strict-leaks",
  );
});

Deno.test("a handler blocked past the stall timeout is replaced, and when it returns late it cannot reply into its replacement's rings", async () => {
  await withServer(
    {
      mode: "pool",
      ioThreads: 1,
      workers: 2,
      service: STALL_SERVICE,
      limits: { stallTimeoutMs: 300 },
    },
    async (server) => {
      using c = await RawClient.connect(server);
      // Blocks 1.5 s in Atomics.wait, which terminate() cannot interrupt.
      const r = await c.call(StallMethod.Slow, payload(150));
      assert.equal(r.header.status, Status.INTERNAL);
      assert.match(pb.Error.decode(r.body).message, /shard 0 was stuck/);
      // Keep shard 0's replacement busy while the old thread wakes up.
      for (let i = 0; i < 40; i++) {
        const e = await c.call(StallMethod.Echo, payload(0, i));
        assert.equal(e.header.status, Status.OK);
        assert.deepEqual([...pb.PingReply.decode(e.body).payload!], [0, i]);
        await sleep(50);
      }
      assert.equal(server.stats().counters.worker_stalls, 1);
    },
  );
});

Deno.test("deno task serve exits 1 and names the kinds when its drain times out with resources held, without --strict-leaks", async () => {
  const cli = new URL("../src/kvserver/cli.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "--allow-net", "--allow-read", cli, "--port", "0"].concat(
      ["--io-threads", "1", "--workers", "1", "--drain-timeout", "300", "--max-output", "256MiB"],
      // Memory only: this test is about the drain, and persisting needs write access.
      ["--persist", "off"],
      ["--test-leak", "task"],
    ),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!/listening on [^:]+:(\d+)/.test(seen)) {
    const { value, done } = await reader.read();
    if (done) assert.fail(`server exited before listening: ${seen}${await stderr}`);
    seen += value;
  }
  const stdout = (async () => {
    let out = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return out;
      out += value;
    }
  })();
  const port = Number(/listening on [^:]+:(\d+)/.exec(seen)![1]);
  {
    await using kv = await connect({ port });
    await kv.put("big", new Uint8Array(1 << 20));
  }
  // A client that never reads 200 MiB of replies, more than loopback's socket
  // buffers take: the drain cannot finish.
  const hog = await Deno.connect({ hostname: "127.0.0.1", port });
  const get = encodeFrame(
    { flags: 0, code: KvMethod.Get, requestId: 1, status: 0, timeoutMs: 0 },
    pb.GetRequest.encode({ key: utf8("big") }).finish(),
  );
  await hog.write(new Uint8Array(Array.from({ length: 200 }, () => [...get]).flat()));
  await sleep(300);
  child.kill("SIGTERM");
  const [status, err, out] = await Promise.all([child.status, stderr, stdout]);
  hog.close();
  assert.equal(status.code, 1, err + out);
  assert.match(err, /drain timed out with resources still held: .*task \(held \d+ B/);
});
