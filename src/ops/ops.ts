/**
 * The main thread's operations side of a server: the metrics endpoint, and
 * a once-a-second watch that logs what needs an operator's eye (a burst of
 * refused connections, eviction starting) as one line, not one per event.
 *
 * @module
 */
import type { StatsSnapshot } from "../stats/resources.ts";
import type { Service } from "../server/service.ts";
import { respCommandNames } from "./command_index.ts";
import { sumGauges } from "./gauges.ts";
import { BurstLog, Logger } from "./log.ts";
import { type MetricsServer, startMetricsServer } from "./metrics.ts";
import type { OpsMemory, SlowlogOptions } from "./recorder.ts";

/** Operations options of a server (see `ServeOptions.ops`). */
export interface OpsOptions {
  /** Serve `/metrics` and `/healthz` on this port (0 picks one). Off when absent. */
  metricsPort?: number;
  /** Address of the metrics endpoint. Default `127.0.0.1`, whatever `host` is. */
  metricsHost?: string;
  /** The slow log's threshold and length. */
  slowlog?: SlowlogOptions;
  /** Where life-cycle lines go. Default: text at info level on the console. */
  logger?: Logger;
}

/** What {@link startOps} needs from the server. */
export interface OpsContext {
  /** Sums every thread's counters now. */
  stats(): StatsSnapshot;
  /** Request metrics, slow log and gauges. */
  ops: OpsMemory;
  /** The service module's URL (for method and gauge names). */
  serviceUrl: string;
  /** Date.now() at start. */
  startedAt: number;
  /** The connection cap. */
  maxConnections: number;
}

/** The running operations side. */
export interface OpsRuntime {
  /** The logger in use. */
  readonly log: Logger;
  /** The metrics port, when serving. */
  readonly metricsPort: number | undefined;
  /** Set when the server starts draining (`/healthz` answers 503). */
  draining: boolean;
  /** Stops the endpoint and the watch. */
  close(): Promise<void>;
}

/** How often the watch looks at the counters. */
const WATCH_MS = 1000;

/**
 * Starts the metrics endpoint (when asked for) and the watch.
 *
 * @example
 * ```ts ignore
 * import { startOps } from "@evkv/evkv";
 * declare const ctx: import("@evkv/evkv").OpsContext;
 * const rt = await startOps({ metricsPort: 0 }, ctx);
 * await rt.close();
 * ```
 */
export async function startOps(
  options: OpsOptions | undefined,
  ctx: OpsContext,
): Promise<OpsRuntime> {
  const log = options?.logger ?? new Logger();
  let gaugeNames: readonly string[] = [];
  let methodNames: Record<number, string> = {};
  try {
    const service = (await import(ctx.serviceUrl)).default as Service<unknown>;
    gaugeNames = service.gaugeNames ?? [];
    methodNames = Object.fromEntries(
      Object.entries(service.methods).map(([code, m]) => [Number(code), m.name]),
    );
  } catch {
    // The workers will report a broken service module; metrics go without names.
  }
  const rt = {
    log,
    metricsPort: undefined as number | undefined,
    draining: false,
    close: async () => {},
  };
  let metrics: MetricsServer | null = null;
  if (options?.metricsPort !== undefined) {
    metrics = startMetricsServer({
      stats: ctx.stats,
      ops: ctx.ops,
      methodNames,
      commandNames: respCommandNames(),
      gaugeNames,
      startedAt: ctx.startedAt,
      maxConnections: ctx.maxConnections,
      draining: () => rt.draining,
    }, { hostname: options.metricsHost ?? "127.0.0.1", port: options.metricsPort });
    rt.metricsPort = metrics.port;
  }
  const refused = new BurstLog(log, 10_000);
  const evicted = gaugeNames.indexOf("evicted_keys_total");
  let lastEvicted = -1;
  let evicting = false;
  let quietTicks = 0;
  const timer = setInterval(() => {
    refused.observe(ctx.stats().counters.connections_rejected, "connections refused");
    if (evicted < 0) return;
    const n = sumGauges(ctx.ops.gauges, ctx.ops.shards)[evicted];
    if (lastEvicted >= 0 && n > lastEvicted) {
      quietTicks = 0;
      if (!evicting) {
        evicting = true;
        log.warn("eviction started: the memory cap is reached, keys are being evicted", {
          evicted_total: n,
        });
      }
    } else if (evicting && ++quietTicks >= 60) {
      // A minute without evictions ends the episode; the next one is logged again.
      evicting = false;
    }
    lastEvicted = n;
  }, WATCH_MS);
  Deno.unrefTimer(timer);
  rt.close = async () => {
    clearInterval(timer);
    await metrics?.close();
  };
  return rt;
}
