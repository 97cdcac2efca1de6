/** The memtier scenario's parsing of memtier_benchmark's output. */
import assert from "node:assert/strict";
import { parseMemtierTotals } from "../bench/memtier.ts";

Deno.test("the memtier scenario reads ops/s and p99 from memtier's Totals row", () => {
  const out = [
    "ALL STATS",
    "=========================",
    "Type         Ops/sec     Hits/sec   Misses/sec    Avg. Latency     p50 Latency     p99 Latency   p99.9 Latency       KB/sec ",
    "-------------------------",
    "Sets          4075.81          ---          ---         0.04612         0.03900         0.11100         2.81500       589.44 ",
    "Totals      44833.87         2.00     40755.52         0.04558         0.03900         0.11100         2.81500      1901.62 ",
  ].join("\n");
  assert.deepEqual(parseMemtierTotals(out), { opsPerSec: 44833.87, p99Ms: 0.111 });
  assert.throws(() => parseMemtierTotals("no table"), /no Totals row/);
});
