/**
 * Batch write assembly: N reply frames for one connection, written into
 * one buffer with encodeFrameInto (what a batched write needs), against N
 * separate encodeFrame allocations (and against those plus the copy into
 * one buffer that a single write would then need).
 *
 * Run: `deno bench bench/micro/batch_bench.ts`
 *
 * @module
 */
import { KvMethod, pb } from "../../mod.ts";
import { encodeFrame, encodeFrameInto } from "../../src/protocol/frame.ts";
import { Flags, FRAME_OVERHEAD } from "../../src/protocol/constants.ts";

const reply = pb.GetReply.encode({ found: true, value: new Uint8Array(100).fill(9) }).finish();
const fields = { flags: Flags.REPLY, code: KvMethod.Get, requestId: 0, status: 0, timeoutMs: 0 };

let sink = 0;

for (const n of [1, 16, 64]) {
  const group = `${n} Get replies (${reply.length} B bodies)`;
  const buf = new Uint8Array(n * (reply.length + FRAME_OVERHEAD));
  Deno.bench({
    name: `encodeFrameInto one buffer x ${n}`,
    group,
    baseline: true,
    fn() {
      let off = 0;
      for (let i = 0; i < n; i++) {
        fields.requestId = i;
        off = encodeFrameInto(buf, off, fields, reply);
      }
      sink ^= buf[off - 1];
    },
  });
  Deno.bench({
    name: `encodeFrame x ${n} (separate allocations)`,
    group,
    fn() {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        fields.requestId = i;
        frames.push(encodeFrame(fields, reply));
      }
      sink ^= frames[n - 1][0];
    },
  });
  Deno.bench({
    name: `encodeFrame x ${n} + concat for one write`,
    group,
    fn() {
      const frames: Uint8Array[] = [];
      let total = 0;
      for (let i = 0; i < n; i++) {
        fields.requestId = i;
        const f = encodeFrame(fields, reply);
        frames.push(f);
        total += f.length;
      }
      const out = new Uint8Array(total);
      let off = 0;
      for (const f of frames) {
        out.set(f, off);
        off += f.length;
      }
      sink ^= out[off - 1];
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
