/**
 * The benchmark tooling on a real server: the load generator measures real
 * traffic (no timing assertions, only that the numbers are real and
 * consistent), its JSON has the documented fields, and the chart writer
 * makes a well-formed SVG.
 *
 * @module
 */
import assert from "node:assert/strict";
import { serve } from "../mod.ts";
import { connect } from "../src/client/client.ts";
import { BENCH_JSON_FIELDS, benchArgs, benchMain, runBench } from "../src/loadgen/bench.ts";
import { renderChart } from "../bench/svg.ts";

Deno.test("bench: runBench measures a real server", async () => {
  const server = await serve({ port: 0, ioThreads: 1, workers: 1, drainTimeoutMs: 2000 });
  try {
    const r = await runBench({
      port: server.addr.port,
      connections: 4,
      pipeline: 4,
      durationS: 1,
      keys: 200,
      valueSize: 32,
      threads: 1,
    });
    assert.ok(r.ops > 0, "no OK replies");
    assert.ok(r.opsPerSec > 0);
    assert.ok(r.mbPerSec > 0);
    assert.ok(r.txBytes > 0 && r.rxBytes > 0);
    assert.equal(r.sent.get + r.sent.put, r.ops, "every request sent got an OK reply");
    assert.ok(r.sent.get > 0 && r.sent.put > 0, "9:1 mix sends both Gets and Puts");
    assert.deepEqual(r.errors, {});
    assert.deepEqual(r.fill, { keys: 200, seconds: r.fill.seconds, errors: {} });
    const l = r.latencyMs;
    assert.ok(l.min > 0, `min ${l.min}`);
    assert.ok(
      l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max,
      `percentiles out of order: ${JSON.stringify(l)}`,
    );
    // The server counted the same traffic: fill Puts plus the timed phase.
    const served = server.stats().counters.requests;
    assert.ok(served >= r.ops + r.fill.keys, `server saw ${served} requests`);
    // The frames are assembled per request: the keys they name are the ones
    // the fill stored, bench:000 to bench:199, each with a 32-byte value.
    await using client = await connect({ port: server.addr.port });
    const page = await client.scan("bench:", { limit: 1000 });
    const dec = new TextDecoder();
    assert.deepEqual(
      page.entries.map((e) => dec.decode(e.key)),
      Array.from({ length: 200 }, (_, i) => `bench:${String(i).padStart(3, "0")}`),
    );
    assert.ok(page.entries.every((e) => e.value.length === 32));
  } finally {
    const report = await server.shutdown();
    assert.deepEqual(report.leaks, []);
  }
});

Deno.test("bench: --json prints the documented fields", async () => {
  const server = await serve({ port: 0, ioThreads: 1, workers: 1, drainTimeoutMs: 2000 });
  const printed: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => printed.push(args.map(String).join(" "));
  let code: number;
  try {
    code = await benchMain([
      "--port",
      String(server.addr.port),
      "--connections",
      "2",
      "--pipeline",
      "2",
      "--requests",
      "2000",
      "--keys",
      "50",
      "--ratio",
      "1:1",
      "--threads",
      "0",
      "--json",
    ]);
  } finally {
    console.log = log;
    await server.shutdown();
  }
  assert.equal(code, 0);
  assert.equal(printed.length, 1);
  const json = JSON.parse(printed[0]);
  assert.deepEqual(Object.keys(json).sort(), [...BENCH_JSON_FIELDS].sort());
  assert.equal(json.ops, 2000);
  assert.equal(json.config.requests, 2000);
  assert.equal(json.config.durationS, null);
  assert.deepEqual(json.config.ratio, { get: 1, put: 1 });
  for (const k of ["p50", "p90", "p99", "p999", "max", "min", "mean"]) {
    assert.equal(typeof json.latencyMs[k], "number", `latencyMs.${k}`);
  }
  assert.ok(json.latencyMs.p50 <= json.latencyMs.p99 && json.latencyMs.p99 <= json.latencyMs.max);
  assert.deepEqual(json.errors, {});
  assert.equal(typeof json.histogram, "string");
});

Deno.test("bench: the kvclient command line finds bench after global options", () => {
  assert.deepEqual(benchArgs(["bench", "--pipeline", "8"]), ["--pipeline", "8"]);
  assert.deepEqual(
    benchArgs(["--port", "7380", "--timeout", "9", "--json", "bench", "--threads", "2"]),
    ["--port", "7380", "--json", "--threads", "2"],
  );
  assert.equal(benchArgs(["get", "bench"]), null);
  assert.equal(benchArgs(["put", "k", "v"]), null);
});

/** Checks that every tag is closed in order; returns the element names seen. */
function checkWellFormed(xml: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = tag.exec(xml)) !== null) {
    const between = xml.slice(last, m.index);
    assert.ok(!/[<>]/.test(between), `stray markup before ${m[0]}: ${between}`);
    assert.ok(!/&(?!(amp|lt|gt|quot|apos);)/.test(between), `bare & in: ${between}`);
    last = tag.lastIndex;
    const [, close, name, , selfClose] = m;
    if (close) {
      assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    } else {
      names.push(name);
      if (!selfClose) stack.push(name);
    }
    if (stack.length === 0) {
      assert.equal(xml.slice(last).trim(), "", "content after the root element");
      break;
    }
  }
  assert.deepEqual(stack, [], "unclosed elements");
  return names;
}

Deno.test("bench: the chart is a well-formed SVG with one bar per run", () => {
  const rows = [
    { scenario: "1 conn", target: "inline/main", opsPerSec: 12000, p99Ms: 0.2 },
    { scenario: "1 conn", target: "echo/1t", opsPerSec: 15000, p99Ms: 0.1 },
    { scenario: "50 x 16 <&>", target: 'pool/"reuse"', opsPerSec: 450000, p99Ms: 4.1 },
    { scenario: "50 x 16 <&>", target: "echo/1t", opsPerSec: 0, p99Ms: 0 },
  ];
  const svg = renderChart(rows, "test & <chart>");
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  const names = checkWellFormed(svg);
  assert.equal(names[0], "svg");
  assert.equal(svg.match(/class="bar ops"/g)?.length, rows.length);
  assert.equal(svg.match(/class="bar p99"/g)?.length, rows.length);
  assert.ok(!/NaN|Infinity|undefined/.test(svg), "bad numbers in the SVG");
  assert.ok(svg.includes("test &amp; &lt;chart&gt;"));
});

Deno.test("redis-benchmark -q output is parsed into requests per second and p50", async () => {
  const { parseRedisBenchmark } = await import("../bench/resp.ts");
  const out = "SET: rps=219509.9 (overall: 218645.7) avg_msec=3.505\r" +
    "SET: 245700.25 requests per second, p50=2.655 msec\n" +
    "GET: 210970.47 requests per second, p50=2.863 msec\n";
  const run = parseRedisBenchmark("evkv", out);
  assert.deepEqual(run.rps, { SET: 245700.25, GET: 210970.47 });
  assert.deepEqual(run.p50Ms, { SET: 2.655, GET: 2.863 });
});

Deno.test("bench: a repeated scenario is judged on the median of its paired rounds", async () => {
  const { ceilingRatios, SCENARIOS, TARGETS } = await import("../bench/run.ts");
  type Row = Parameters<typeof ceilingRatios>[0][number];
  const target = (name: string) => TARGETS.find((t) => t.name === name)!;
  const row = (scenario: number, name: string, ops: number, round = 0): Row => ({
    scenario: SCENARIOS[scenario],
    target: target(name),
    round,
    result: { opsPerSec: ops, latencyMs: { p50: ops / 1e6, p99: ops / 1e5 } } as Row["result"],
  });
  const rows = [
    row(0, "inline/reuseport", 12_000),
    row(0, "echo/2t", 15_000),
    row(2, "inline/reuseport", 600_000),
    row(2, "pool/reuseport", 500_000),
    row(2, "echo/1t", 1_200_000),
    row(2, "echo/2t", 1_300_000),
    // Ratios by round: 0.46, 0.56, 0.59, 0.57, 0.48 (round 5 has no echo run).
    ...[700_000, 650_000, 680_000, 620_000, 900_000].map((ops, i) =>
      row(2, "inline/reuseport", ops, i + 1)
    ),
    ...[1_250_000, 1_100_000, 1_200_000, 1_300_000].map((ops, i) => row(2, "echo/2t", ops, i + 1)),
  ];
  const [latency, pipelined] = ceilingRatios(rows);
  assert.equal(latency.runs, 1);
  assert.equal(latency.ratio, 12_000 / 15_000);
  assert.equal(pipelined.best, "inline/reuseport");
  assert.equal(pipelined.echo, "echo/2t");
  assert.equal(pipelined.runs, 5, "only rounds where both ran");
  assert.equal(pipelined.ratio, 700_000 / 1_250_000, "round 1 holds the median ratio");
  assert.equal(pipelined.evkvOps, 700_000);
  assert.equal(pipelined.echoOps, 1_250_000);
  assert.equal(pipelined.evkvP50, 0.7, "latencies come from the same round");
});
