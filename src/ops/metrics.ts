/**
 * `--metrics-port`: Prometheus's text format on `GET /metrics` and a health
 * check on `GET /healthz`, served by `Deno.serve` in the main thread. A
 * scrape sums the shared counters (resources and events, the store's
 * figures, request metrics) and asks no worker anything, so serving it costs the
 * request path nothing.
 *
 * @module
 */
import { COUNTER_NAMES, RESOURCE_KINDS, type StatsSnapshot } from "../stats/resources.ts";
import { STATUS_NAMES } from "../protocol/constants.ts";
import {
  COMMAND_SLOTS,
  LATENCY_BOUNDS_S,
  METHOD_SLOTS,
  type OpsMemory,
  PROTOCOL_NAMES,
  readRequestTotals,
  readSlowlog,
  STATUS_SLOTS,
} from "./recorder.ts";
import type { PersistStatus } from "../persist/manager.ts";

/** What a scrape reads. */
export interface MetricsSource {
  /** The resource and event counters, summed now. */
  stats(): StatsSnapshot;
  /** Request metrics and the slow log. */
  ops: OpsMemory;
  /** Wire v1 method names by code. */
  methodNames: Readonly<Record<number, string>>;
  /** RESP command names by number (0: unknown). */
  commandNames: readonly string[];
  /** Date.now() at start. */
  startedAt: number;
  /** Configured connection cap. */
  maxConnections: number;
  /** True once a shutdown began. */
  draining(): boolean;
  /** Where persistence stands; absent or null with `--persist off`. */
  persistence?: () => PersistStatus | null;
}

/** Escapes a label value for the text format. */
function esc(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/** Formats a sample value: integers plainly, others in full precision. */
function num(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (Number.isNaN(v)) return "NaN";
  return String(v);
}

class Out {
  readonly lines: string[] = [];
  family(name: string, type: "counter" | "gauge" | "histogram", help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }
  sample(name: string, labels: Record<string, string>, value: number): void {
    const ls = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`).join(",");
    this.lines.push(`${name}${ls ? `{${ls}}` : ""} ${num(value)}`);
  }
}

/** Events with a name of their own; other counters get `evkv_<name>_total`. */
const RENAMED: Record<string, [string, string]> = {
  bytes_in: ["evkv_received_bytes_total", "Bytes read from client sockets."],
  bytes_out: ["evkv_sent_bytes_total", "Bytes written to client sockets."],
  requests: ["evkv_frames_total", "Request frames dispatched (both protocols' calls)."],
  replies: ["evkv_replies_total", "Replies queued for clients."],
};
/**
 * Figures a service sets rather than adds (the store's, through
 * `Service.gauges`): gauges, or counters when they only grow.
 */
const SET_BY_SERVICE: Record<string, [string, "gauge" | "counter", string]> = {
  keys: ["evkv_keys", "gauge", "Live keys."],
  keys_with_ttl: ["evkv_keys_with_ttl", "gauge", "Live keys with an expiry."],
  used_memory: [
    "evkv_memory_used_bytes",
    "gauge",
    "The store's memory: records, index and expiry structures.",
  ],
  maxmemory: ["evkv_memory_max_bytes", "gauge", "The store's memory cap (0 = none)."],
  store_pages_bytes: ["evkv_store_pages_bytes", "gauge", "Slab pages the store has reserved."],
  evicted_keys: ["evkv_evicted_keys_total", "counter", "Keys evicted to stay under the cap."],
  expired_keys: ["evkv_expired_keys_total", "counter", "Keys that expired."],
};
const HANDLED = new Set(["worker_restarts", "io_worker_restarts"]);

/**
 * Renders every metric family in Prometheus text format (version 0.0.4).
 *
 * @example
 * ```ts
 * import { createOpsMemory, createStatsMemory, renderMetrics, snapshot } from "@evkv/evkv";
 * const stats = createStatsMemory(1);
 * const text = renderMetrics({
 *   stats: () => snapshot(stats),
 *   ops: createOpsMemory(1),
 *   methodNames: { 2: "Get" },
 *   commandNames: ["unknown"],
 *   startedAt: Date.now(),
 *   maxConnections: 10000,
 *   draining: () => false,
 * });
 * text.includes("evkv_connections_open"); // true
 * ```
 */
export function renderMetrics(src: MetricsSource): string {
  const o = new Out();
  const snap = src.stats();
  const c = snap.counters;
  const now = Date.now();

  o.family("evkv_start_time_seconds", "gauge", "When the server started, seconds since the epoch.");
  o.sample("evkv_start_time_seconds", {}, src.startedAt / 1000);
  o.family("evkv_uptime_seconds", "gauge", "Seconds since the server started.");
  o.sample("evkv_uptime_seconds", {}, (now - src.startedAt) / 1000);
  o.family("evkv_draining", "gauge", "1 while the server drains for a shutdown.");
  o.sample("evkv_draining", {}, src.draining() ? 1 : 0);
  const persisted = src.persistence?.() ?? null;
  if (persisted !== null) {
    o.family(
      "evkv_persistence_pending_changes",
      "gauge",
      "Changes acknowledged but not yet committed to disk (what a crash could lose).",
    );
    o.sample("evkv_persistence_pending_changes", {}, persisted.pendingChanges);
    o.family(
      "evkv_persistence_last_commit_timestamp_seconds",
      "gauge",
      "Unix time of the oldest shard's last successful commit.",
    );
    o.sample("evkv_persistence_last_commit_timestamp_seconds", {}, persisted.lastCommitSeconds);
    o.family(
      "evkv_persistence_failing_shards",
      "gauge",
      "Shards whose last commit failed; they refuse writes.",
    );
    o.sample("evkv_persistence_failing_shards", {}, persisted.failingShards);
  }

  // Requests by method and status (wire v1), by command and outcome (RESP).
  const totals = readRequestTotals(src.ops);
  o.family(
    "evkv_requests_total",
    "counter",
    "Wire v1 requests answered, by method and reply status.",
  );
  for (let m = 0; m < METHOD_SLOTS; m++) {
    for (let s = 0; s < STATUS_SLOTS; s++) {
      const v = totals.wire[m * STATUS_SLOTS + s];
      if (v === 0) continue;
      const method = m === METHOD_SLOTS - 1 ? "other" : src.methodNames[m] ?? `code_${m}`;
      const status = s === STATUS_SLOTS - 1 ? "other" : STATUS_NAMES[s] ?? `status_${s}`;
      o.sample("evkv_requests_total", { protocol: "wire", method, status }, v);
    }
  }
  o.family(
    "evkv_resp_commands_total",
    "counter",
    "RESP commands answered, by command and outcome (ok, or error for a -ERR reply).",
  );
  for (let i = 0; i < COMMAND_SLOTS; i++) {
    for (let f = 0; f < 2; f++) {
      const v = totals.resp[i * 2 + f];
      if (v === 0) continue;
      const command = src.commandNames[i] ?? "other";
      o.sample("evkv_resp_commands_total", { command, status: f ? "error" : "ok" }, v);
    }
  }
  o.family(
    "evkv_errors_total",
    "counter",
    "Error replies by wire status, both protocols (RESP errors from the store included).",
  );
  for (const name of STATUS_NAMES.slice(1)) {
    const key = `errors.${name}` as keyof typeof c;
    o.sample("evkv_errors_total", { status: name }, c[key] ?? 0);
  }

  o.family(
    "evkv_request_duration_seconds",
    "histogram",
    "From the read that brought a request's frame to the write of its reply, per protocol.",
  );
  PROTOCOL_NAMES.forEach((protocol, p) => {
    const h = totals.latency[p];
    LATENCY_BOUNDS_S.forEach((le, b) =>
      o.sample(
        "evkv_request_duration_seconds_bucket",
        { protocol, le: String(le) },
        h.cumulative[b],
      )
    );
    o.sample(
      "evkv_request_duration_seconds_bucket",
      { protocol, le: "+Inf" },
      h.cumulative[LATENCY_BOUNDS_S.length],
    );
    o.sample("evkv_request_duration_seconds_sum", { protocol }, h.sum);
    o.sample("evkv_request_duration_seconds_count", { protocol }, h.count);
  });
  o.family("evkv_slowlog_entries", "gauge", "Entries in the slow log now.");
  o.sample("evkv_slowlog_entries", {}, readSlowlog(src.ops).length);

  // Connections.
  o.family("evkv_connections_open", "gauge", "Client connections open now.");
  o.sample(
    "evkv_connections_open",
    {},
    c.connections_accepted - c.connections_rejected - c.connections_closed,
  );
  o.family("evkv_connections_max", "gauge", "The --max-connections cap.");
  o.sample("evkv_connections_max", {}, src.maxConnections);
  o.family("evkv_worker_restarts_total", "counter", "Workers that died and were replaced.");
  o.sample("evkv_worker_restarts_total", { kind: "task" }, c.worker_restarts);
  o.sample("evkv_worker_restarts_total", { kind: "io" }, c.io_worker_restarts);
  for (const name of COUNTER_NAMES) {
    if (name.startsWith("errors.") || HANDLED.has(name)) continue;
    const set = SET_BY_SERVICE[name];
    if (set) {
      o.family(set[0], set[1], set[2]);
      o.sample(set[0], {}, c[name]);
      continue;
    }
    const [metric, help] = RENAMED[name] ??
      [`evkv_${name.replace(/[^a-zA-Z0-9_]/g, "_")}_total`, `Event counter ${name}.`];
    o.family(metric, "counter", help);
    o.sample(metric, {}, c[name]);
  }

  // Resources.
  o.family("evkv_resource_held_bytes", "gauge", "Bytes held by each resource kind.");
  for (const kind of RESOURCE_KINDS) {
    o.sample("evkv_resource_held_bytes", { kind }, snap.resources[kind].heldBytes);
  }
  o.family("evkv_resource_live", "gauge", "Live count of each resource kind (alloc - free).");
  for (const kind of RESOURCE_KINDS) {
    const r = snap.resources[kind];
    o.sample("evkv_resource_live", { kind }, r.alloc - r.free);
  }
  o.family("evkv_resource_allocations_total", "counter", "Acquisitions of each resource kind.");
  for (const kind of RESOURCE_KINDS) {
    o.sample("evkv_resource_allocations_total", { kind }, snap.resources[kind].alloc);
  }
  return o.lines.join("\n") + "\n";
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The port it listens on. */
  readonly port: number;
  /** Stops listening. */
  close(): Promise<void>;
}

/**
 * Serves `/metrics` and `/healthz` (200 while serving, 503 while draining).
 *
 * @example
 * ```ts ignore
 * import { startMetricsServer } from "@evkv/evkv";
 * declare const source: import("@evkv/evkv").MetricsSource;
 * const m = startMetricsServer(source, { hostname: "127.0.0.1", port: 0 });
 * await m.close();
 * ```
 */
export function startMetricsServer(
  src: MetricsSource,
  at: { hostname: string; port: number },
): MetricsServer {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = serveMetrics(src, at);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`Start metrics endpoint on ${at.hostname}:${at.port}: ${why}`, { cause: e });
  }
  return {
    port: server.addr.port,
    close: async () => {
      await server.shutdown();
    },
  };
}

function serveMetrics(
  src: MetricsSource,
  at: { hostname: string; port: number },
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: at.hostname, port: at.port, onListen: () => {} },
    (req) => {
      const path = new URL(req.url).pathname;
      if (req.method !== "GET" && req.method !== "HEAD") {
        return new Response("Only GET is served here\n", { status: 405 });
      }
      if (path === "/metrics") {
        return new Response(renderMetrics(src), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      }
      if (path === "/healthz") {
        return src.draining()
          ? new Response("draining\n", { status: 503 })
          : new Response("ok\n", { status: 200 });
      }
      return new Response("Not found: try /metrics or /healthz\n", { status: 404 });
    },
  );
}
