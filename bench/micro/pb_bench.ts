/**
 * Protobuf encode and decode of every KV message: the static code generated
 * into src/protocol/gen (`pb.*`) against protobufjs reflection, a Root built
 * at run time from proto/evkv/v1/kv.proto with `protobuf.parse`. Both go
 * through the same protobufjs runtime, configured by pb_runtime.ts (no
 * Buffer, no Long), so the difference is the code, not the runtime.
 *
 * Run: `deno bench --allow-read bench/micro/pb_bench.ts`
 *
 * @module
 */
// First: messages.ts configures the shared protobufjs runtime.
import { pb } from "../../src/protocol/messages.ts";
import protobuf from "protobufjs";

interface Codec {
  encode(message: Record<string, unknown>): { finish(): Uint8Array };
  decode(bytes: Uint8Array): unknown;
}

const proto = await Deno.readTextFile(new URL("../../proto/evkv/v1/kv.proto", import.meta.url));
const root = protobuf.parse(proto).root;

const enc = new TextEncoder();
const key = enc.encode("bench:00001234");
const value = new Uint8Array(100).fill(42);
const entries = Array.from({ length: 100 }, (_, i) => ({
  key: enc.encode(`bench:${String(i).padStart(8, "0")}`),
  value,
}));
const counters = Array.from(
  { length: 40 },
  (_, i) => ({ name: `counter.name_${i}`, value: i * 1000 }),
);

/** One sample per message type, shaped like real traffic. */
const SAMPLES: [string, Record<string, unknown>][] = [
  ["PingRequest", { payload: enc.encode("ping-payload-16b") }],
  ["PingReply", { payload: enc.encode("ping-payload-16b") }],
  ["GetRequest", { key }],
  ["GetReply", { found: true, value }],
  ["PutRequest", { key, value, ttlMs: 60000 }],
  ["PutReply", { replaced: true }],
  ["DeleteRequest", { key }],
  ["DeleteReply", { deleted: true }],
  ["ScanRequest", { prefix: enc.encode("bench:"), startAfter: key, limit: 100 }],
  ["ScanReply", { entries, more: true }],
  ["StatsRequest", {}],
  ["StatsReply", { counters }],
  ["Error", { code: 1, message: "Get needs a key of 1 to 1024 bytes" }],
];

let sink = 0;

for (const [name, sample] of SAMPLES) {
  const stat = (pb as unknown as Record<string, Codec>)[name];
  const reflect = root.lookupType(`evkv.v1.${name}`) as unknown as Codec;
  const bytes = stat.encode(sample).finish();
  const again = reflect.encode(sample).finish();
  if (bytes.length !== again.length || bytes.some((b, i) => b !== again[i])) {
    throw new Error(`${name}: static and reflection encodings differ`);
  }
  Deno.bench({
    name: `${name} encode, static pb`,
    group: `${name} encode (${bytes.length} B)`,
    baseline: true,
    fn() {
      sink ^= stat.encode(sample).finish().length;
    },
  });
  Deno.bench({
    name: `${name} encode, reflection`,
    group: `${name} encode (${bytes.length} B)`,
    fn() {
      sink ^= reflect.encode(sample).finish().length;
    },
  });
  Deno.bench({
    name: `${name} decode, static pb`,
    group: `${name} decode (${bytes.length} B)`,
    baseline: true,
    fn() {
      sink ^= stat.decode(bytes) ? 1 : 0;
    },
  });
  Deno.bench({
    name: `${name} decode, reflection`,
    group: `${name} decode (${bytes.length} B)`,
    fn() {
      sink ^= reflect.decode(bytes) ? 1 : 0;
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
