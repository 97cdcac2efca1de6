/**
 * The main thread's operations side of a server: the metrics endpoint, and
 * a once-a-second watch that logs what needs an operator's eye (a burst of
 * refused connections, eviction starting) as one line, not one per event.
 *
 * @module
 */
import type { StatsSnapshot } from "../stats/resources.ts";
import type { PersistStatus } from "../persist/manager.ts";
import type { Service } from "../server/service.ts";
import { respCommandNames } from "../resp/commands.ts";
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
  /** Request metrics and the slow log. */
  ops: OpsMemory;
  /** The service module's URL (for method names). */
  serviceUrl: string;
  /** Date.now() at start. */
  startedAt: number;
  /** The connection cap. */
  maxConnections: number;
  /** Where persistence stands (null when off), for the metrics. */
  persistence?: () => PersistStatus | null;
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

/**
 * Logs "eviction started" when the eviction counter starts moving, once per
 * episode: an episode ends after {@link EvictionWatch.QUIET} observations
 * without a new eviction.
 *
 * @example
 * ```ts
 * import { EvictionWatch, Logger } from "@evkv/evkv";
 * const w = new EvictionWatch(new Logger());
 * w.observe(0);
 * w.observe(5); // logs once
 * w.observe(9); // same episode: no line
 * ```
 */
export class EvictionWatch {
  /** Quiet observations that end an episode (a minute at one a second). */
  static readonly QUIET: number = 60;
  readonly #log: Logger;
  /** The counter starts at 0 with the server's stores. */
  #last = 0;
  #evicting = false;
  #quiet = 0;

  /** Logs through `log`. */
  constructor(log: Logger) {
    this.#log = log;
  }

  /** Looks at the counter's value now; returns true when it logged. */
  observe(evictedTotal: number): boolean {
    let logged = false;
    if (evictedTotal > this.#last) {
      this.#quiet = 0;
      if (!this.#evicting) {
        this.#evicting = true;
        logged = true;
        this.#log.warn("eviction started: the memory cap is reached, keys are being evicted", {
          evicted_total: evictedTotal,
        });
      }
    } else if (this.#evicting && ++this.#quiet >= EvictionWatch.QUIET) {
      this.#evicting = false;
    }
    this.#last = evictedTotal;
    return logged;
  }
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
  let methodNames: Record<number, string> = {};
  try {
    const service = (await import(ctx.serviceUrl)).default as Service<unknown>;
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
      startedAt: ctx.startedAt,
      maxConnections: ctx.maxConnections,
      draining: () => rt.draining,
      persistence: ctx.persistence,
    }, { hostname: options.metricsHost ?? "127.0.0.1", port: options.metricsPort });
    rt.metricsPort = metrics.port;
  }
  const refused = new BurstLog(log, 10_000);
  const eviction = new EvictionWatch(log);
  const timer = setInterval(() => {
    const c = ctx.stats().counters;
    refused.observe(c.connections_rejected, "connections refused");
    eviction.observe(c.evicted_keys);
  }, WATCH_MS);
  Deno.unrefTimer(timer);
  rt.close = async () => {
    clearInterval(timer);
    await metrics?.close();
  };
  return rt;
}
