/**
 * The KV request readers against the decode they replace: a view of the
 * body in the receive buffer, then protobufjs's static `decode` (a Reader,
 * a message and a key view), as the server did before readers existed.
 *
 * Run: `deno bench bench/micro/reader_bench.ts`
 *
 * @module
 */
import { pb } from "../../src/protocol/messages.ts";
import { keyRequestReader, putRequestReader } from "../../src/kv/request_readers.ts";

const enc = new TextEncoder();
const key = enc.encode("bench:1234");
const samples = [
  ["GetRequest", pb.GetRequest, keyRequestReader, pb.GetRequest.encode({ key }).finish()],
  [
    "PutRequest",
    pb.PutRequest,
    putRequestReader,
    pb.PutRequest.encode({ key, value: new Uint8Array(100).fill(7) }).finish(),
  ],
] as const;

let sink = 0;
for (const [name, type, reader, body] of samples) {
  // The body sits in a receive buffer among other frames, as in the server.
  const buf = new Uint8Array(4096);
  const at = 124;
  buf.set(body, at);
  const end = at + body.length;
  Deno.bench({
    name: `${name}: view + protobufjs decode`,
    group: `${name} (${body.length} B)`,
    baseline: true,
    fn() {
      sink ^= type.decode(buf.subarray(at, end)).key!.length;
    },
  });
  Deno.bench({
    name: `${name}: reader`,
    group: `${name} (${body.length} B)`,
    fn() {
      sink ^= reader.read(buf, at, end)!.key!.length;
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
