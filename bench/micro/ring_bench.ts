/**
 * The SPSC ring between IO workers and shards (src/server/ring.ts): push and
 * pop of request-sized records, one at a time and in batches of 64 (the way
 * an IO worker pushes a read's worth of requests before waking the shard).
 * Both ends run in this thread, so this is the ring's own cost, without the
 * cross-core cache traffic of real use.
 *
 * Run: `deno bench bench/micro/ring_bench.ts`
 *
 * @module
 */
import { createRingMemory, Ring } from "../../src/server/channel/ring.ts";

const PAYLOAD = new Uint8Array(64).fill(3);
const BIG = new Uint8Array(1024).fill(5);
const memory = createRingMemory(1 << 20);
const producer = new Ring(memory);
const consumer = new Ring(memory);

let sink = 0;

function push(payload: Uint8Array): void {
  const off = producer.reserve(payload.length);
  if (off < 0) throw new Error("ring full");
  producer.u8.set(payload, off);
  producer.commit();
}

function popAll(): number {
  let n = 0;
  let off: number;
  while ((off = consumer.next()) >= 0) {
    sink ^= consumer.u8[off];
    n++;
  }
  consumer.release();
  return n;
}

Deno.bench({
  name: "push + pop 1 x 64 B",
  group: "ring 64 B records",
  baseline: true,
  fn() {
    push(PAYLOAD);
    if (popAll() !== 1) throw new Error("lost a record");
  },
});

Deno.bench({
  name: "push 64 x 64 B, then pop all",
  group: "ring 64 B records",
  fn() {
    for (let i = 0; i < 64; i++) push(PAYLOAD);
    if (popAll() !== 64) throw new Error("lost a record");
  },
});

Deno.bench({
  name: "push 64 x 1 KiB, then pop all",
  group: "ring 1 KiB records",
  fn() {
    for (let i = 0; i < 64; i++) push(BIG);
    if (popAll() !== 64) throw new Error("lost a record");
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
