/**
 * What request metrics cost per request: a batch of 16 wire v1 replies
 * recorded and timed (two clock reads per batch: the read's arrival and the
 * batch's end), against the same loop without them.
 */
import { createOpsMemory, Recorder } from "../../src/ops/recorder.ts";

const rec = new Recorder();
// A threshold no request reaches: slow entries are rare by design.
rec.bind(createOpsMemory(1, { thresholdUs: 0x7fffffff }), 0);
const sink = new Float64Array(16);

Deno.bench("16 replies, no metrics", { group: "recorder", baseline: true }, () => {
  for (let i = 0; i < 16; i++) sink[i] += i;
});

Deno.bench("16 replies recorded, then the batch timed", { group: "recorder" }, () => {
  // One arrival per batch, as one read brings the batch's frames.
  const at = performance.now();
  for (let i = 0; i < 16; i++) {
    sink[i] += i;
    rec.wire(2, 0, at, "127.0.0.1:5000");
  }
  rec.endOfBatch();
});

Deno.bench("performance.now() (once per read)", { group: "clock" }, () => {
  sink[0] = performance.now();
});
