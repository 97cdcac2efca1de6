/**
 * The persistence metrics: how many acknowledged changes are not on disk
 * yet, when the last commit happened, and whether a shard is failing.
 */
import assert from "node:assert/strict";
import { connect } from "../src/client/mod.ts";
import { withServer } from "./support.ts";
import { Resp, scrape, value } from "./ops_support.ts";

Deno.test("metrics show persistence lag falling to zero once SAVE has committed every write", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "evkv-persist-metrics-" });
  const startedAt = Math.floor(Date.now() / 1000);
  try {
    await withServer(
      { respPort: 0, persist: { mode: "everysec", dataDir }, ops: { metricsPort: 0 } },
      async (server) => {
        const port = server.addr.metricsPort!;
        const before = await scrape(port);
        assert.equal(value(before, "evkv_persistence_failing_shards"), 0);
        {
          await using kv = await connect({ port: server.addr.port });
          await Promise.all(Array.from({ length: 500 }, (_, i) => kv.put(`p:${i}`, "v")));
        }
        await using resp = await Resp.connect(server.addr.respPort!);
        assert.equal(await resp.send("SAVE"), "OK");
        const after = await scrape(port);
        assert.equal(value(after, "evkv_persistence_pending_changes"), 0);
        assert.ok(
          value(after, "evkv_persistence_last_commit_timestamp_seconds") >= startedAt,
          "a commit after the writes",
        );
        assert.equal(value(after, "evkv_persistence_failing_shards"), 0);
      },
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a server with --persist off has no persistence metrics", async () => {
  await withServer({ ops: { metricsPort: 0 } }, async (server) => {
    const s = await scrape(server.addr.metricsPort!);
    assert.equal(s.types.get("evkv_persistence_pending_changes"), undefined);
  });
});
