/**
 * End-to-end: the client library and kvclient against real servers.
 */
import assert from "node:assert/strict";
import { connect, EvkvError, Status } from "../src/client/mod.ts";
import { main as kvclient } from "../src/client/cli.ts";
import { EchoMethod } from "../examples/echo_service.ts";
import { pb } from "../mod.ts";
import { ECHO_SERVICE, LAYOUTS, text, withServer } from "./support.ts";

for (const layout of LAYOUTS.filter((l) => l.options.accept === "reuseport")) {
  Deno.test(`${layout.name}: the client library drives every KV method`, async () => {
    await withServer(layout.options, async (server) => {
      await using client = await connect({ port: server.addr.port });
      assert.equal(text(await client.ping("hello")), "hello");
      assert.equal(await client.put("a", "1"), false);
      assert.equal(await client.put("a", "2"), true);
      assert.equal(text(await client.get("a")), "2");
      assert.equal(await client.get("missing"), undefined);
      // Many calls in flight on one connection.
      const puts = await Promise.all(
        Array.from(
          { length: 500 },
          (_, i) => client.put(`k/${String(i).padStart(3, "0")}`, `${i}`),
        ),
      );
      assert.ok(puts.every((r) => r === false));
      const keys: string[] = [];
      for await (const e of client.scanAll("k/", { limit: 33 })) keys.push(text(e.key));
      assert.equal(keys.length, 500);
      assert.deepEqual(keys, [...keys].sort());
      assert.equal(await client.delete("a"), true);
      await assert.rejects(client.get(""), (e: unknown) => {
        assert.ok(e instanceof EvkvError);
        assert.equal(e.status, Status.BAD_REQUEST);
        return true;
      });
      const rows = new Map((await client.stats()).map((r) => [r.name, r.value]));
      assert.ok(rows.get("requests")! > 500);
    });
  });

  Deno.test(`${layout.name}: a client timeout reaches the server as timeout_ms`, async () => {
    await withServer({ ...layout.options, service: ECHO_SERVICE }, async (server) => {
      await using client = await connect({ port: server.addr.port });
      const body = (n: number) => pb.PingRequest.encode({ payload: new Uint8Array([n]) }).finish();
      const slow = client.call(EchoMethod.Sleep, body(10)); // 100 ms on shard 0
      // Queued behind the sleeper past its deadline: the server refuses to
      // start it, whatever the client does.
      const late = client.call(EchoMethod.Sleep, body(0), { timeoutMs: 30 });
      await assert.rejects(late, (e: unknown) => {
        assert.ok(e instanceof EvkvError);
        assert.equal(e.status, Status.DEADLINE_EXCEEDED);
        return true;
      });
      assert.equal((await slow)[0], 0x0a);
    });
  });
}

Deno.test("kvclient puts, gets and prints JSON against a real server", async () => {
  await withServer({ mode: "pool" }, async (server) => {
    const port = String(server.addr.port);
    const out: string[] = [];
    const err: string[] = [];
    const log = console.log;
    const error = console.error;
    console.log = (...a: unknown[]) => out.push(a.join(" "));
    console.error = (...a: unknown[]) => err.push(a.join(" "));
    try {
      assert.equal(await kvclient(["--port", port, "put", "cli-key", "cli-value"]), 0);
      assert.equal(await kvclient(["--port", port, "get", "cli-key"]), 0);
      assert.equal(await kvclient(["--port", port, "--json", "get", "cli-key"]), 0);
      assert.equal(await kvclient(["--port", port, "get", "no-such-key"]), 1);
      assert.equal(await kvclient(["--port", port, "stats"]), 0);
    } finally {
      console.log = log;
      console.error = error;
    }
    assert.ok(out.includes("cli-value"), out.join("\n"));
    const json = out.map((l) => l.trim()).find((l) => l.startsWith("{") && l.includes("cli-key"));
    assert.ok(json, "a JSON line for the get");
    assert.equal(JSON.parse(json).value, "cli-value");
    assert.ok(out.some((l) => /requests/.test(l)), "stats prints the requests counter");
  });
});
