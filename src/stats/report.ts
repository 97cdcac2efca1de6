/**
 * Turning counters into text and rows: the SIGUSR2 / exit dump and the
 * `Stats` method's counter list. Both read the same lists, so a new kind or
 * counter shows up everywhere at once.
 *
 * @module
 */
import { COUNTER_NAMES, RESOURCE_KINDS, type StatsSnapshot } from "./resources.ts";

/** One row of the `Stats` reply. */
export interface CounterRow {
  /** Dotted counter name. */
  name: string;
  /** Its value at the moment of the snapshot. */
  value: number;
}

/**
 * The `Stats` rows: `uptime_ms`, `connections` (open now, the asking one
 * included), `requests`,
 * `errors.<STATUS>` for every error status, every other counter, and
 * `res.<kind>.alloc|free|held_bytes` for every resource kind.
 *
 * @example
 * ```ts
 * import { createStatsMemory, snapshot, statsRows } from "@evkv/evkv";
 * const rows = statsRows(snapshot(createStatsMemory(1)), 1234);
 * rows[0]; // { name: "uptime_ms", value: 1234 }
 * ```
 */
export function statsRows(snap: StatsSnapshot, uptimeMs: number): CounterRow[] {
  const c = snap.counters;
  const rows: CounterRow[] = [
    { name: "uptime_ms", value: Math.max(0, Math.round(uptimeMs)) },
    // From event counters, not resources: it includes the asking client.
    {
      name: "connections",
      value: c.connections_accepted - c.connections_rejected - c.connections_closed,
    },
  ];
  for (const name of COUNTER_NAMES) rows.push({ name, value: snap.counters[name] });
  for (const kind of RESOURCE_KINDS) {
    const r = snap.resources[kind];
    rows.push({ name: `res.${kind}.alloc`, value: r.alloc });
    rows.push({ name: `res.${kind}.free`, value: r.free });
    rows.push({ name: `res.${kind}.held_bytes`, value: r.heldBytes });
  }
  return rows;
}

/** One IO worker's line in the dump. */
export interface IoSummary {
  /** IO worker index. */
  index: number;
  /** That worker's block alone. */
  snap: StatsSnapshot;
}

/**
 * The resource table in the C original's shape: a timestamped header, one
 * row per kind (`kind  held_bytes  alloc_times  free_times`), then one
 * summary line per IO worker.
 *
 * @example
 * ```ts
 * import { createStatsMemory, formatDump, snapshot } from "@evkv/evkv";
 * console.log(formatDump(snapshot(createStatsMemory(1)), [], { pid: 1, uptimeMs: 0 }));
 * ```
 */
export function formatDump(
  total: StatsSnapshot,
  io: IoSummary[],
  meta: { pid: number; uptimeMs: number; now?: Date },
): string {
  const now = meta.now ?? new Date();
  const lines = [
    `==== evkv resources at ${now.toISOString()} (pid ${meta.pid}, up ${
      (meta.uptimeMs / 1000).toFixed(1)
    } s) ====`,
    `${"kind".padEnd(16)}${"held_bytes".padStart(14)}${"alloc_times".padStart(14)}${
      "free_times".padStart(14)
    }`,
  ];
  for (const kind of RESOURCE_KINDS) {
    const r = total.resources[kind];
    lines.push(
      `${kind.padEnd(16)}${String(r.heldBytes).padStart(14)}${String(r.alloc).padStart(14)}${
        String(r.free).padStart(14)
      }`,
    );
  }
  for (const { index, snap } of io) {
    const held = (k: keyof StatsSnapshot["resources"]) =>
      snap.resources[k].alloc - snap.resources[k].free;
    lines.push(
      `io worker ${index}: connections ${held("connection")}, receive buffers ${
        held("receive_buffer")
      }, requests in flight ${
        held("request")
      }, output queued ${snap.resources.output_buffer.heldBytes} B`,
    );
  }
  return lines.join("\n");
}
