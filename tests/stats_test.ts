/**
 * The resource and counter blocks, on their own: what the server's dump,
 * Stats reply and leak check are built from.
 */
import assert from "node:assert/strict";
import { leakedKinds, RESOURCE_KINDS } from "../mod.ts";
import {
  Counter,
  createStatsMemory,
  Res,
  snapshot,
  StatsBlock,
  withoutCaller,
} from "../src/stats/resources.ts";
import { formatDump, statsRows } from "../src/stats/report.ts";

Deno.test("a held resource is released when its using block ends, once", () => {
  const mem = createStatsMemory(1);
  const block = new StatsBlock(mem, 0);
  {
    using conn = block.hold(Res.connection, 100);
    assert.deepEqual(snapshot(mem).resources.connection, { alloc: 1, free: 0, heldBytes: 100 });
    conn[Symbol.dispose](); // an early release is not counted twice at the block's end
  }
  assert.deepEqual(snapshot(mem).resources.connection, { alloc: 1, free: 1, heldBytes: 0 });
  assert.deepEqual(leakedKinds(snapshot(mem)), []);
});

Deno.test("snapshots sum every thread's block, or a range of them", () => {
  const mem = createStatsMemory(3);
  const blocks = [0, 1, 2].map((i) => new StatsBlock(mem, i));
  blocks[1].alloc(Res.ring_slot, 64);
  blocks[1].alloc(Res.ring_slot, 64);
  // Pushed by one thread, popped by another: the sum balances.
  blocks[2].freeMany(Res.ring_slot, 2, 128);
  blocks[0].count(Counter.requests, 5);
  blocks[2].count(Counter.requests);
  const all = snapshot(mem);
  assert.deepEqual(all.resources.ring_slot, { alloc: 2, free: 2, heldBytes: 0 });
  assert.equal(all.counters.requests, 6);
  assert.equal(snapshot(mem, 1, 2).resources.ring_slot.heldBytes, 128);
  blocks[1].reset();
  assert.equal(snapshot(mem).resources.ring_slot.heldBytes, -128);
});

Deno.test("leakedKinds names every kind with a count or bytes still held", () => {
  const mem = createStatsMemory(1);
  const block = new StatsBlock(mem, 0);
  block.alloc(Res.task, 0);
  block.alloc(Res.receive_buffer, 16);
  block.free(Res.receive_buffer, 8);
  assert.deepEqual(leakedKinds(snapshot(mem)), ["receive_buffer", "task"]);
});

Deno.test("withoutCaller leaves out exactly what the asking request holds", () => {
  const mem = createStatsMemory(1);
  const block = new StatsBlock(mem, 0);
  block.alloc(Res.connection, 0);
  block.alloc(Res.receive_buffer, 16384);
  block.alloc(Res.request, 0);
  block.alloc(Res.task, 2);
  block.alloc(Res.ring_slot, 48);
  const seen = withoutCaller(snapshot(mem), {
    receiveBytes: 16384,
    inPacketBytes: -1,
    taskBytes: 2,
    ringSlotBytes: 48,
  });
  assert.deepEqual(leakedKinds(seen), []);
  // A request run inline holds its in-packet instead of a task and a slot.
  block.free(Res.task, 2);
  block.free(Res.ring_slot, 48);
  block.alloc(Res.in_packet, 30);
  const inline = withoutCaller(snapshot(mem), {
    receiveBytes: 16384,
    inPacketBytes: 30,
    taskBytes: -1,
    ringSlotBytes: -1,
  });
  assert.deepEqual(leakedKinds(inline), []);
});

Deno.test("Stats rows and the dump list every resource kind from the one list", () => {
  const mem = createStatsMemory(2);
  const io = new StatsBlock(mem, 1);
  io.alloc(Res.connection, 0);
  io.alloc(Res.output_buffer, 300);
  io.count(Counter.connections_accepted);
  const rows = new Map(statsRows(snapshot(mem), 1234.4).map((r) => [r.name, r.value]));
  assert.equal(rows.get("uptime_ms"), 1234);
  assert.equal(rows.get("connections"), 1);
  for (const kind of RESOURCE_KINDS) {
    for (const field of ["alloc", "free", "held_bytes"]) {
      assert.ok(rows.has(`res.${kind}.${field}`));
    }
  }
  assert.equal(rows.get("res.output_buffer.held_bytes"), 300);
  assert.ok(rows.has("errors.SHUTTING_DOWN"));

  const dump = formatDump(snapshot(mem), [{ index: 0, snap: snapshot(mem, 1, 2) }], {
    pid: 42,
    uptimeMs: 1500,
    now: new Date("2026-01-02T03:04:05.000Z"),
  });
  const lines = dump.split("\n");
  assert.equal(lines[0], "==== evkv resources at 2026-01-02T03:04:05.000Z (pid 42, up 1.5 s) ====");
  assert.match(lines[1], /^kind\s+held_bytes\s+alloc_times\s+free_times$/);
  assert.deepEqual(lines.slice(2, 2 + RESOURCE_KINDS.length).map((l) => l.split(/\s+/)[0]), [
    ...RESOURCE_KINDS,
  ]);
  assert.match(lines.find((l) => l.startsWith("output_buffer"))!, /^output_buffer\s+300\s+1\s+0$/);
  assert.equal(
    lines.at(-1),
    "io worker 0: connections 1, receive buffers 0, requests in flight 0, output queued 300 B",
  );
});
