/**
 * How far this machine's caches reach, as the KV store sees them: a chain
 * of dependent loads, one per 64-byte line, in random order over working
 * sets from 32 KiB to 64 MiB. Each load waits for the one before, so the
 * time per load is the latency of wherever that line lives. On the shared
 * 2-vCPU VM the benchmark reports come from it read ~18 ns up to 2 MiB at
 * some times and ~81 ns at 1 MiB at others, as other tenants took more or
 * less of the shared cache; the store alone is ~1.5 MiB of records and table.
 *
 * Run: `deno run bench/cache_probe.ts`
 *
 * @module
 */

/** Nanoseconds per dependent load over a random cycle through `kib` KiB. */
export function latencyNs(kib: number, loads = 2_000_000): number {
  const lines = (kib * 1024) / 64;
  const words = new Int32Array(lines * 16);
  const order = Array.from({ length: lines }, (_, i) => i);
  let seed = 42;
  for (let i = lines - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (let i = 0; i < lines; i++) words[order[i] * 16] = order[(i + 1) % lines] * 16;
  let at = 0;
  for (let i = 0; i < lines; i++) at = words[at]; // warm: every line once
  const started = performance.now();
  for (let i = 0; i < loads; i++) at = words[at];
  const ns = ((performance.now() - started) * 1e6) / loads;
  return at < 0 ? -1 : ns;
}

if (import.meta.main) {
  for (const kib of [32, 256, 1024, 2048, 3072, 4096, 8192, 16384, 65536]) {
    console.log(`${String(kib).padStart(6)} KiB: ${latencyNs(kib).toFixed(1)} ns per load`);
  }
}
