/**
 * The paired comparison's pieces that need no server: reading a checkout's
 * serve entry, the alternating order of rounds, and the per-case medians.
 *
 * @module
 */
import assert from "node:assert/strict";
import { memoryOnly, serveEntry } from "../bench/checkout.ts";
import { alternate } from "../bench/paired.ts";
import { type Sample, type Samples, summarise } from "../bench/compare.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("compare: a checkout's server runs through its own deno task serve entry", () => {
  const entry = serveEntry(ROOT);
  assert.ok(entry.script.endsWith("/cli.ts"), entry.script);
  Deno.statSync(entry.script);
  assert.ok(entry.flags.includes("--unstable-net"), entry.flags.join(" "));
  assert.deepEqual(memoryOnly(ROOT), ["--persist", "off"]);
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(
      `${dir}/deno.json`,
      JSON.stringify({ tasks: { serve: { command: "deno run -A src/entry.ts --mode pool" } } }),
    );
    assert.deepEqual(serveEntry(dir), { script: `${dir}/src/entry.ts`, flags: ["-A"] });
    assert.deepEqual(memoryOnly(dir), [], "no src/persist: no --persist flag");
    Deno.writeTextFileSync(
      `${dir}/deno.json`,
      JSON.stringify({ tasks: { serve: "deno run a.ts && deno run b.ts" } }),
    );
    assert.throws(() => serveEntry(dir), /not a plain "deno run \.\.\. SCRIPT" command line/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("compare: rounds alternate which side goes first and pair in side order", async () => {
  const order: string[] = [];
  const pairs = await alternate(["a", "b"], 3, (side, round) => {
    order.push(`${side}${round}`);
    return Promise.resolve(`${side}${round}`);
  });
  assert.deepEqual(order, ["a0", "b0", "b1", "a1", "a2", "b2"]);
  assert.deepEqual(pairs, [["a0", "b0"], ["a1", "b1"], ["a2", "b2"]]);
});

Deno.test("compare: each case is judged on the median of its per-round ratios", () => {
  const sample = (opsPerSec: number, p50Ms = 1): Sample => ({
    opsPerSec,
    p50Ms,
    p99Ms: 2 * p50Ms,
    cpuUs: 1_000_000 / opsPerSec,
    errors: {},
  });
  const round = (base: number, here: number): [Samples, Samples] => [
    new Map([["x", sample(base)]]),
    new Map([["x", sample(here)], ["only here", sample(1)]]),
  ];
  // Drift moves both sides together; the ratios are 1.1, 0.9 and 1.0.
  const [x, lone] = summarise([round(100, 110), round(200, 180), round(50, 50)]);
  assert.equal(x.name, "x");
  assert.equal(x.rounds, 3);
  assert.deepEqual(x.opsPerSec, [100, 110]);
  assert.ok(Math.abs(x.ratio - 1) < 1e-9, `ratio ${x.ratio}`);
  assert.ok(Math.abs(x.spread[0] - 0.9) < 1e-9 && Math.abs(x.spread[1] - 1.1) < 1e-9);
  assert.ok(Math.abs(x.cpuRatio - 1) < 1e-9, `cpu ratio ${x.cpuRatio}`);
  assert.deepEqual(x.errors, [0, 0]);
  assert.equal(lone.rounds, 0, "a case one side lacks has no pairs");
});
