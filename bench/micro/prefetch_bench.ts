/**
 * What the store's prefetch buys a batch of Gets whose records are not in
 * the CPU cache: 16 lookups of random keys one after another, against one
 * {@link ShardStore.prefetch} of the 16 keys followed by the same lookups.
 * 200,000 keys of 100 bytes (~26 MiB of records) keep nearly every lookup
 * a miss, whatever else the machine runs.
 *
 * Run: `deno bench bench/micro/prefetch_bench.ts`
 *
 * @module
 */
import { ShardStore } from "../../src/kv/store.ts";

const KEYS = 200_000;
const BATCH = 16;
const enc = new TextEncoder();
const store = new ShardStore();
const value = new Uint8Array(100).fill(7);
const keyBytes: Uint8Array[] = [];
for (let i = 0; i < KEYS; i++) {
  const key = enc.encode(`bench:${String(i).padStart(6, "0")}`);
  keyBytes.push(key);
  store.put(key, value, 0);
}

// The keys of many batches, end to end, as a read's frames hold them.
const BATCHES = 4096;
const keyLen = keyBytes[0].length;
const stream = new Uint8Array(BATCHES * BATCH * keyLen);
let seed = 12345;
for (let i = 0; i < BATCHES * BATCH; i++) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  stream.set(keyBytes[seed % KEYS], i * keyLen);
}
const starts = new Int32Array(BATCH);
const ends = new Int32Array(BATCH);
let next = 0;
let sink = 0;

/** The next batch's keys as views (what the Get handler gets) and ranges. */
function nextBatch(): Uint8Array[] {
  const base = next * BATCH * keyLen;
  next = (next + 1) % BATCHES;
  const keys: Uint8Array[] = [];
  for (let i = 0; i < BATCH; i++) {
    starts[i] = base + i * keyLen;
    ends[i] = starts[i] + keyLen;
    keys.push(stream.subarray(starts[i], ends[i]));
  }
  return keys;
}

Deno.bench({
  name: "16 Gets, one after another",
  group: "16 Gets over 200,000 keys",
  baseline: true,
  fn() {
    for (const key of nextBatch()) sink += store.get(key)!.length;
  },
});

Deno.bench({
  name: "prefetch the 16 keys, then 16 Gets",
  group: "16 Gets over 200,000 keys",
  fn() {
    const keys = nextBatch();
    sink ^= store.prefetch(stream, starts, ends, BATCH);
    for (const key of keys) sink += store.get(key)!.length;
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
