/**
 * `/metrics`, `/healthz` and SLOWLOG on real servers: the scrape must be
 * valid text format with every family, and each counter must move by what
 * the load did.
 */
import assert from "node:assert/strict";
import { Logger, serve, type Server } from "../mod.ts";
import {
  createOpsMemory,
  LATENCY_BOUNDS_S,
  readRequestTotals,
  readSlowlog,
  Recorder,
  recorder,
} from "../src/ops/recorder.ts";
import { RespTrack } from "../src/ops/resp_track.ts";
import { startMetricsServer } from "../src/ops/metrics.ts";
import { connect, EvkvError } from "../src/client/mod.ts";
import { LAYOUTS, sleep, withServer } from "./support.ts";
import { Resp, type RespValue, type Scrape, scrape, value } from "./ops_support.ts";
const metricValue = value;
import { RESOURCE_KINDS } from "../src/stats/resources.ts";

/** Every family the issue asks for, by name. */
const FAMILIES: Record<string, string> = {
  evkv_requests_total: "counter",
  evkv_resp_commands_total: "counter",
  evkv_errors_total: "counter",
  evkv_connections_open: "gauge",
  evkv_connections_accepted_total: "counter",
  evkv_connections_rejected_total: "counter",
  evkv_received_bytes_total: "counter",
  evkv_sent_bytes_total: "counter",
  evkv_keys: "gauge",
  evkv_keys_with_ttl: "gauge",
  evkv_memory_used_bytes: "gauge",
  evkv_memory_max_bytes: "gauge",
  evkv_evicted_keys_total: "counter",
  evkv_expired_keys_total: "counter",
  evkv_worker_restarts_total: "counter",
  evkv_resource_held_bytes: "gauge",
  evkv_resource_live: "gauge",
  evkv_resource_allocations_total: "counter",
  evkv_request_duration_seconds: "histogram",
  evkv_uptime_seconds: "gauge",
  evkv_draining: "gauge",
};

function metricsPort(server: Server): number {
  const port = server.addr.metricsPort;
  assert.ok(port !== undefined && port > 0, "the server serves metrics");
  return port;
}

/** Waits for the shards' gauges (published every 250 ms) to show `want`. */
async function scrapeUntil(port: number, ok: (s: Scrape) => boolean): Promise<Scrape> {
  let s = await scrape(port);
  for (let i = 0; i < 40 && !ok(s); i++) {
    await sleep(100);
    s = await scrape(port);
  }
  return s;
}

for (const layout of [LAYOUTS[0], LAYOUTS[1], LAYOUTS[3]]) {
  Deno.test(`${layout.name}: a scrape under load has every family and each counter moves by what the load did`, async () => {
    await withServer(
      { ...layout.options, respPort: 0, ops: { metricsPort: 0, slowlog: { thresholdUs: -1 } } },
      async (server) => {
        const port = metricsPort(server);
        const before = await scrape(port);
        for (const [name, type] of Object.entries(FAMILIES)) {
          assert.equal(before.types.get(name), type, `family ${name} is present as a ${type}`);
        }
        for (const kind of RESOURCE_KINDS) {
          assert.ok(
            before.samples.some((s) =>
              s.name === "evkv_resource_held_bytes" && s.labels.kind === kind
            ),
            `held bytes of ${kind}`,
          );
        }

        const N = 200;
        await using kv = await connect({ port: server.addr.port });
        await Promise.all(
          Array.from(
            { length: N },
            (_, i) => kv.put(`m:${i}`, "v".repeat(100), i < 50 ? { ttlMs: 60_000 } : {}),
          ),
        );
        await Promise.all(Array.from({ length: N }, (_, i) => kv.get(`m:${i}`)));
        await assert.rejects(kv.call(999, new Uint8Array(0)), EvkvError);
        // Two keys that expire, then are read: counted as expired.
        await kv.put("gone:1", "x", { ttlMs: 20 });
        await kv.put("gone:2", "x", { ttlMs: 20 });
        await sleep(60);
        assert.equal(await kv.get("gone:1"), undefined);
        assert.equal(await kv.get("gone:2"), undefined);

        await using resp = await Resp.connect(server.addr.respPort!);
        for (let i = 0; i < 10; i++) assert.equal(await resp.send("SET", `r:${i}`, "v"), "OK");
        assert.equal(await resp.send("GET", "r:1"), "v");
        assert.ok(typeof (await resp.send("NOSUCH")) === "object");

        const during = await scrapeUntil(port, (s) => value(s, "evkv_keys") === N + 10);
        const delta = (name: string, labels: Record<string, string> = {}) =>
          value(during, name, labels) - value(before, name, labels);

        const wire = { protocol: "wire" };
        assert.equal(delta("evkv_requests_total", { ...wire, method: "Put", status: "OK" }), N + 2);
        assert.equal(delta("evkv_requests_total", { ...wire, method: "Get", status: "OK" }), N + 2);
        // Codes past the counted range share one "other" series.
        assert.equal(
          delta("evkv_requests_total", { ...wire, method: "other", status: "UNKNOWN_METHOD" }),
          1,
        );
        assert.equal(delta("evkv_errors_total", { status: "UNKNOWN_METHOD" }), 1);
        assert.equal(delta("evkv_resp_commands_total", { command: "set", status: "ok" }), 10);
        assert.equal(delta("evkv_resp_commands_total", { command: "get", status: "ok" }), 1);
        assert.equal(delta("evkv_resp_commands_total", { command: "unknown", status: "error" }), 1);
        const latency = (protocol: string) =>
          delta("evkv_request_duration_seconds_count", { protocol });
        assert.equal(latency("wire"), 2 * N + 5);
        assert.equal(latency("resp"), 12);
        assert.ok(delta("evkv_request_duration_seconds_sum", { protocol: "wire" }) > 0);
        assert.equal(value(during, "evkv_connections_open"), 2);
        assert.equal(delta("evkv_connections_accepted_total"), 2);
        assert.ok(delta("evkv_received_bytes_total") > N * 100, "request bytes counted");
        assert.ok(delta("evkv_sent_bytes_total") > N * 100, "reply bytes counted");
        assert.equal(value(during, "evkv_keys"), N + 10);
        assert.equal(value(during, "evkv_keys_with_ttl"), 50);
        assert.ok(value(during, "evkv_memory_used_bytes") > N * 100, "used memory");
        assert.equal(delta("evkv_expired_keys_total"), 2);
        assert.ok(delta("evkv_resource_allocations_total", { kind: "request" }) >= 2 * N);
        assert.equal(value(during, "evkv_resource_live", { kind: "connection" }), 2);

        // A worker that dies is counted, and its shard's keys (lost with it)
        // leave the key count.
        await server.killWorker(layout.options.mode === "inline" ? "io" : "task", 1);
        await using again = await Resp.connect(server.addr.respPort!);
        const left = await again.send("DBSIZE");
        assert.ok(typeof left === "number" && left < N + 10, `shard 1's keys are gone: ${left}`);
        const after = await scrapeUntil(port, (s) => value(s, "evkv_keys") === left);
        assert.equal(value(after, "evkv_keys"), left);
        const kind = layout.options.mode === "inline" ? "io" : "task";
        assert.equal(
          value(after, "evkv_worker_restarts_total", { kind }) -
            value(before, "evkv_worker_restarts_total", { kind }),
          1,
        );
      },
    );
  });
}

Deno.test("healthz answers 200 while serving and 503 while draining, and unknown paths 404", async () => {
  let draining = false;
  const m = startMetricsServer({
    stats: () => ({ resources: {}, counters: {} }) as never,
    ops: {} as never,
    methodNames: {},
    commandNames: [],
    startedAt: Date.now(),
    maxConnections: 1,
    draining: () => draining,
  }, { hostname: "127.0.0.1", port: 0 });
  try {
    const get = async (path: string) => {
      const r = await fetch(`http://127.0.0.1:${m.port}${path}`);
      await r.body?.cancel();
      return r.status;
    };
    assert.equal(await get("/healthz"), 200);
    draining = true;
    assert.equal(await get("/healthz"), 503);
    assert.equal(await get("/nope"), 404);
  } finally {
    await m.close();
  }
});

Deno.test("a server without --metrics-port opens no metrics port", async () => {
  await withServer({}, (server) => {
    assert.equal(server.addr.metricsPort, undefined);
    return Promise.resolve();
  });
});

function entries(v: RespValue): RespValue[][] {
  assert.ok(Array.isArray(v));
  return v as RespValue[][];
}

Deno.test("SLOWLOG keeps requests over the threshold, newest first, bounded, and RESET empties it", async () => {
  await withServer(
    { mode: "pool", respPort: 0, ops: { slowlog: { thresholdUs: 0, maxLen: 4 } } },
    async (server) => {
      await using resp = await Resp.connect(server.addr.respPort!);
      assert.equal(await resp.send("SLOWLOG", "RESET"), "OK");
      for (let i = 0; i < 3; i++) await resp.send("SET", `s:${i}`, "v");
      await using kv = await connect({ port: server.addr.port });
      await kv.get("s:0");
      const got = entries(await resp.send("SLOWLOG", "GET", "3"));
      assert.equal(got.length, 3);
      // Newest first: the wire Get, then the SETs.
      assert.deepEqual(got[0][3], ["Get"]);
      assert.deepEqual(got[1][3], ["set"]);
      assert.ok((got[0][0] as number) > (got[1][0] as number), "ids increase");
      assert.ok(typeof got[0][2] === "number" && got[0][2] >= 0, "duration in µs");
      assert.match(got[0][4] as string, /^127\.0\.0\.1:\d+$/);
      // At most maxLen per IO worker, and the whole log stays bounded.
      for (let i = 0; i < 20; i++) await resp.send("PING");
      const len = await resp.send("SLOWLOG", "LEN");
      assert.ok(typeof len === "number" && len <= 4, `bounded: ${len}`);
      assert.equal(await resp.send("SLOWLOG", "RESET"), "OK");
      // The RESET itself is the one entry left, as in Redis.
      assert.ok((await resp.send("SLOWLOG", "LEN")) as number <= 1);
      assert.deepEqual(await resp.send("SLOWLOG", "NOPE"), {
        error: "ERR unknown subcommand or wrong number of arguments for 'NOPE'. Try SLOWLOG HELP.",
      });
    },
  );
});

Deno.test("SLOWLOG stays empty below the threshold", async () => {
  await withServer(
    { mode: "inline", respPort: 0, ops: { slowlog: { thresholdUs: 60_000_000 } } },
    async (server) => {
      await using resp = await Resp.connect(server.addr.respPort!);
      for (let i = 0; i < 5; i++) await resp.send("SET", `q:${i}`, "v");
      assert.equal(await resp.send("SLOWLOG", "LEN"), 0);
      assert.deepEqual(await resp.send("SLOWLOG", "GET"), []);
    },
  );
});

Deno.test("inline with one IO worker, a fan-out command (DBSIZE) is answered once and nothing is freed twice", async () => {
  await withServer({ mode: "inline", ioThreads: 1, respPort: 0 }, async (server) => {
    await using resp = await Resp.connect(server.addr.respPort!);
    assert.equal(await resp.send("SET", "a", "1"), "OK");
    assert.equal(await resp.send("DBSIZE"), 1);
    assert.equal(await resp.send("PING"), "PONG");
    const r = server.stats().resources;
    assert.equal(r.fanout.alloc, r.fanout.free);
    assert.equal(r.request.alloc - r.request.free, 0);
  });
});

Deno.test("kvclient slowlog prints, counts and resets the slow log over the RESP port", async () => {
  const CLIENT = new URL("../src/client/cli.ts", import.meta.url).pathname;
  const run = async (...args: string[]) => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-read", CLIENT, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
  };
  await withServer(
    { mode: "pool", respPort: 0, ops: { slowlog: { thresholdUs: 0 } } },
    async (server) => {
      const port = String(server.addr.respPort);
      await using kv = await connect({ port: server.addr.port });
      await kv.put("k", "v");
      const json = await run("slowlog", "--resp-port", port, "get", "5", "--json");
      assert.equal(json.code, 0, json.err);
      const entries = JSON.parse(json.out).entries;
      assert.ok(entries.some((e: { command: string }) => e.command === "Put"), json.out);
      const table = await run("slowlog", "--resp-port", port);
      assert.match(table.out, /^ +id +time +duration_us +command +client$/m);
      assert.equal((await run("slowlog", "--resp-port", port, "reset")).out, "OK\n");
      const len = await run("slowlog", "--resp-port", port, "len");
      assert.match(len.out, /^[01]\n$/);
      const bad = await run("slowlog", "--resp-port", port, "frobnicate");
      assert.equal(bad.code, 2);
    },
  );
});

Deno.test("the recorder puts latencies in their buckets and slow ones in the slow log", () => {
  const mem = createOpsMemory(1, { thresholdUs: 1_000_000, maxLen: 2 });
  const rec = new Recorder();
  rec.bind(mem, 0);
  const now = performance.now();
  rec.wire(2, 0, now - 2000, "127.0.0.1:1"); // 2 s: the (1, 2.5] bucket
  rec.wire(2, 0, now - 7000, "127.0.0.1:2"); // 7 s: +Inf
  rec.resp(3, true, now - 1500, "127.0.0.1:3");
  rec.endOfBatch();
  const t = readRequestTotals(mem);
  const le = (s: number) => LATENCY_BOUNDS_S.indexOf(s);
  assert.equal(t.latency[0].cumulative[le(1)], 0);
  assert.equal(t.latency[0].cumulative[le(2.5)], 1);
  assert.equal(t.latency[0].cumulative[LATENCY_BOUNDS_S.length], 2);
  assert.ok(t.latency[0].sum >= 9 && t.latency[0].sum < 10, `sum ${t.latency[0].sum}`);
  assert.equal(t.latency[1].count, 1);
  assert.equal(t.wire[2 * 16 + 0], 2);
  assert.equal(t.resp[3 * 2 + 1], 1);
  // All three were over 1 s; the log keeps the newest 2 of this worker.
  const slow = readSlowlog(mem);
  assert.deepEqual(slow.map((e) => e.client), ["127.0.0.1:3", "127.0.0.1:2"]);
  assert.equal(slow[0].protocol, "resp");
  assert.ok(slow[1].durationUs >= 7_000_000);
});

Deno.test("a metrics port that is taken fails the start with a clear error and starts no worker", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    await assert.rejects(
      serve({ port: 0, ioThreads: 1, workers: 1, ops: { metricsPort: port } }),
      new RegExp(`^Error: Start metrics endpoint on 127\\.0\\.0\\.1:${port}: `),
    );
  } finally {
    taken.close();
  }
});

Deno.test("RESP replies are matched to their commands in order, past the FIFO's first size", () => {
  const mem = createOpsMemory(1, { thresholdUs: -1 });
  recorder.bind(mem, 0);
  const track = new RespTrack();
  const now = performance.now();
  for (let i = 0; i < 40; i++) track.begin(1 + (i % 3), now);
  assert.equal(track.pending, 40);
  for (let i = 0; i < 40; i++) track.written(i % 2 === 1, "c", now);
  // A reply with no command (a protocol error) counts as an unknown command.
  track.written(true, "c", now);
  recorder.endOfBatch();
  const t = readRequestTotals(mem);
  const count = (cmd: number, failed: number) => t.resp[cmd * 2 + failed];
  assert.equal(count(1, 0) + count(1, 1), 14);
  assert.equal(count(2, 0) + count(2, 1), 13);
  assert.equal(count(3, 0) + count(3, 1), 13);
  assert.equal(count(0, 1), 1);
  assert.equal(t.latency[1].count, 41);
});

Deno.test("scrapes taken while clients keep loading the server parse, and their counters move between them", async () => {
  await withServer(
    { mode: "pool", respPort: 0, ops: { metricsPort: 0, slowlog: { thresholdUs: -1 } } },
    async (server) => {
      const port = metricsPort(server);
      await using kv = await connect({ port: server.addr.port });
      await using resp = await Resp.connect(server.addr.respPort!);
      let stop = false;
      const wire = (async () => {
        for (let i = 0; !stop; i++) {
          await Promise.all(
            Array.from({ length: 64 }, (_, j) => kv.put(`l:${(i * 64 + j) % 500}`, "v")),
          );
        }
      })();
      const redis = (async () => {
        while (!stop) await resp.send("GET", "l:1");
      })();
      try {
        const first = await scrapeUntil(port, (s) => value(s, "evkv_keys") > 0);
        await sleep(200);
        const second = await scrape(port);
        const put = { protocol: "wire", method: "Put", status: "OK" };
        assert.ok(
          value(second, "evkv_requests_total", put) > value(first, "evkv_requests_total", put),
        );
        assert.ok(
          value(second, "evkv_resp_commands_total", { command: "get", status: "ok" }) >
            value(first, "evkv_resp_commands_total", { command: "get", status: "ok" }),
        );
        for (const protocol of ["wire", "resp"]) {
          const count = (s: Scrape) =>
            value(s, "evkv_request_duration_seconds_count", { protocol });
          assert.ok(count(second) > count(first), `${protocol} latency observations grow`);
        }
        assert.ok(
          value(second, "evkv_received_bytes_total") > value(first, "evkv_received_bytes_total"),
        );
        assert.equal(value(second, "evkv_connections_open"), 2);
      } finally {
        stop = true;
        await Promise.all([wire, redis]);
      }
    },
  );
});

Deno.test("under a memory cap, evictions show in the metrics and the log says once that they started", async () => {
  const lines: string[] = [];
  const logger = new Logger("info", "text", (_l, s) => lines.push(s));
  const cap = 8 * 1024 * 1024;
  await withServer(
    {
      mode: "pool",
      serviceOptions: { maxMemory: cap, eviction: "allkeys-lru" },
      ops: { metricsPort: 0, logger },
    },
    async (server) => {
      const port = metricsPort(server);
      await using kv = await connect({ port: server.addr.port });
      const value = "v".repeat(200);
      for (let i = 0; i < 60_000; i += 500) {
        await Promise.all(Array.from({ length: 500 }, (_, j) => kv.put(`e:${i + j}`, value)));
      }
      const s = await scrapeUntil(port, (x) => metricValue(x, "evkv_evicted_keys_total") > 0);
      assert.ok(metricValue(s, "evkv_evicted_keys_total") > 0, "keys were evicted");
      const max = metricValue(s, "evkv_memory_max_bytes");
      assert.ok(max > 0 && max <= cap, `the cap, split over shards: ${max}`);
      assert.ok(metricValue(s, "evkv_memory_used_bytes") <= max, "used memory stays under the cap");
      for (let i = 0; i < 30 && !lines.some((l) => l.includes("eviction started")); i++) {
        await sleep(100);
      }
    },
  );
  assert.equal(lines.filter((l) => l.includes("eviction started")).length, 1, lines.join("\n"));
});
