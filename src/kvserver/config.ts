/**
 * Command-line flags of `deno task serve`, parsed into {@link ServeOptions}.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { RESOURCE_KINDS, type ResourceKind } from "../stats/resources.ts";
import type { AcceptMode } from "../server/main/server.ts";
import type { ServeOptions } from "./serve.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, Logger, type LogLevel } from "../ops/log.ts";
import { EVICTION_POLICIES } from "../kv/store.ts";
import { PERSIST_MODES } from "../persist/plan.ts";
import type { SecurityFlags } from "../auth/load.ts";

/** Usage text of `deno task serve`. */
export const SERVE_USAGE = `Usage: deno task serve [flags]

  --host ADDR          address to listen on (default 127.0.0.1; 0.0.0.0 exposes it)
  --port N             TCP port (default 7379; 0 picks a free one)
  --resp-port N        also serve the Redis protocol (RESP2) here (default: off)
  --io-threads N       IO workers (default: number of cores)
  --workers N          task workers in pool mode (default: number of cores)
  --mode pool|inline   pool: handlers run in task workers (default);
                       inline: handlers run in the IO workers, no hand-off
  --accept reuseport|main
                       reuseport: each IO worker listens with SO_REUSEPORT (default);
                       main: the main thread accepts and hands connections over
  --max-body SIZE      largest request or reply body (default 4MiB)
  --ring-bytes SIZE    bytes per task ring, at least twice the largest frame (default 1MiB)
  --drain-timeout MS   how long a shutdown waits for requests in flight (default 5000)
  --max-output SIZE    unwritten reply bytes per connection before reading pauses (default 8MiB)
  --max-inflight N     requests in flight per connection before parsing pauses (default 1024)
  --max-conn-ring-bytes SIZE
                       request bytes per connection waiting in task rings before
                       parsing pauses (default: a quarter of a ring)
  --max-worker-inflight N
                       requests in flight per IO worker before parsing pauses (default 65536)
  --frames-per-turn N  frames taken from one connection before serving others (default 64)
  --idle-timeout MS    close connections silent for this long, 0 = never (default 300000)
  --max-connections N  connections accepted at once; the excess is refused (default 10000)
  --max-memory SIZE    cap on the store's data (records, index, TTLs; Redis's used_memory),
                       split evenly across shards; 0 = no cap (default 0)
  --eviction POLICY    at the cap: noeviction (writes fail with NO_MEMORY / -OOM),
                       allkeys-lru, volatile-lru or allkeys-random (default noeviction)
  --max-client-memory SIZE
                       receive and output buffers of all connections together; past it
                       the connection holding the most is closed (default: no limit)
  --stall-timeout MS   replace a worker that made no progress for this long while it
                       had work, 0 = never (default 3000)
  --persist off|everysec|always
                       off: memory only; everysec: writes reach disk in batches, a crash
                       loses at most about the last second (default); always: a write is
                       answered once it is committed to disk (group commit)
  --data-dir DIR       where the SQLite files live, one per shard (default data)
  --strict-leaks       exit 1 when a resource kind is not back to zero at exit
  --password-file FILE the default user's password (or set EVKV_PASSWORD); clients must AUTH
  --acl-file FILE      users, passwords and permissions (a subset of Redis's ACL file syntax)
  --tls-cert FILE --tls-key FILE
                       speak TLS only, on both ports (PEM certificate chain and key)
  --tls-ca FILE        CA certificates for --tls-client-auth
  --tls-client-auth    require client certificates signed by --tls-ca
  --protected-mode yes|no
                       yes (default): refuse a non-loopback --host with no password or ACL file
  --metrics-port N     serve Prometheus /metrics and /healthz here (default: off)
  --metrics-host ADDR  address of the metrics endpoint (default 127.0.0.1)
  --slowlog-threshold-us N
                       log requests at least this slow for SLOWLOG; off: --slowlog-threshold-us=-1
                       (default 10000)
  --slowlog-max-len N  slow log entries kept per IO worker (default 128)
  --log-level error|warn|info|debug   (default info)
  --log-format text|json              (default text)
  --config FILE        read flags from FILE (- for stdin), one "name value" per line;
                       flags given on the command line win (see README)
  --help               print this text

Signals: SIGUSR2 prints the resource table; SIGINT or SIGTERM drains and exits.`;

/** Parsed flags: server options plus what the command itself does. */
export interface ServeFlags {
  /** Options for {@link serve}. */
  options: ServeOptions;
  /** Exit non-zero when something leaked. */
  strictLeaks: boolean;
  /** Test-only: count one resource of this kind that is never released. */
  testLeak: ResourceKind | null;
  /** Print usage and exit. */
  help: boolean;
  /** Password, ACL and TLS files, read by `loadSecurity` (src/auth/load.ts). */
  security: SecurityFlags;
  /** `--log-level` and `--log-format`. */
  log: { level: LogLevel; format: LogFormat };
  /** The logger they make; also `options.ops.logger`. */
  logger: Logger;
}

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/**
 * Parses a size such as `4MiB`, `64k` or `1024`.
 *
 * @example
 * ```ts
 * import { parseSize } from "@evkv/evkv";
 * parseSize("4MiB"); // 4194304
 * ```
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new RangeError(`Parse size: "${text}" is not a size like 4MiB`);
  }
  return Math.round(Number(m[1]) * unit);
}

/** The fields of `o` that are set, so that defaults fill the rest. */
function definedOnly<T extends object>(o: { [K in keyof T]: T[K] | undefined }): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function int(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`Parse --${name}: "${text}" is not an integer >= ${min}`);
  }
  return n;
}

function oneOf<T extends string>(name: string, text: string | undefined, allowed: readonly T[]) {
  if (text === undefined) return undefined;
  if (!allowed.includes(text as T)) {
    throw new RangeError(`Parse --${name}: "${text}" is not one of ${allowed.join(", ")}`);
  }
  return text as T;
}

/**
 * Parses `deno task serve` flags. Throws a RangeError with a readable
 * message on a bad flag.
 *
 * @example
 * ```ts
 * import { parseServeFlags } from "@evkv/evkv";
 * parseServeFlags(["--port", "0", "--mode", "inline"]).options.mode; // "inline"
 * ```
 */
export function parseServeFlags(args: string[]): ServeFlags {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      host: { type: "string" },
      port: { type: "string" },
      "resp-port": { type: "string" },
      "io-threads": { type: "string" },
      workers: { type: "string" },
      mode: { type: "string" },
      accept: { type: "string" },
      "max-body": { type: "string" },
      "ring-bytes": { type: "string" },
      "drain-timeout": { type: "string" },
      "max-output": { type: "string" },
      "max-inflight": { type: "string" },
      "max-conn-ring-bytes": { type: "string" },
      "max-worker-inflight": { type: "string" },
      "frames-per-turn": { type: "string" },
      "idle-timeout": { type: "string" },
      "max-connections": { type: "string" },
      "max-memory": { type: "string" },
      eviction: { type: "string" },
      "max-client-memory": { type: "string" },
      "stall-timeout": { type: "string" },
      persist: { type: "string" },
      "data-dir": { type: "string" },
      "strict-leaks": { type: "boolean" },
      "test-leak": { type: "string" },
      "metrics-port": { type: "string" },
      "metrics-host": { type: "string" },
      "slowlog-threshold-us": { type: "string" },
      "slowlog-max-len": { type: "string" },
      "log-level": { type: "string" },
      "log-format": { type: "string" },
      help: { type: "boolean" },
      "password-file": { type: "string" },
      "acl-file": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-ca": { type: "string" },
      "tls-client-auth": { type: "boolean" },
      "protected-mode": { type: "string" },
    },
  });
  const maxBody = values["max-body"] === undefined ? undefined : parseSize(values["max-body"]);
  const ringBytes = values["ring-bytes"] === undefined
    ? undefined
    : parseSize(values["ring-bytes"]);
  const log = {
    level: oneOf("log-level", values["log-level"], LOG_LEVELS) ?? "info",
    format: oneOf("log-format", values["log-format"], LOG_FORMATS) ?? "text",
  };
  const logger = new Logger(log.level, log.format);
  return {
    options: {
      host: values.host,
      port: int("port", values.port, 0),
      respPort: int("resp-port", values["resp-port"], 0),
      ioThreads: int("io-threads", values["io-threads"], 1),
      workers: int("workers", values.workers, 1),
      mode: oneOf("mode", values.mode, ["pool", "inline"] as const),
      accept: oneOf<AcceptMode>("accept", values.accept, ["reuseport", "main"]),
      maxBody,
      ringBytes,
      drainTimeoutMs: int("drain-timeout", values["drain-timeout"], 0),
      limits: definedOnly({
        maxOutputBytes: values["max-output"] === undefined
          ? undefined
          : parseSize(values["max-output"]),
        maxInflightPerConnection: int("max-inflight", values["max-inflight"], 1),
        maxRingBytesPerConnection: values["max-conn-ring-bytes"] === undefined
          ? undefined
          : parseSize(values["max-conn-ring-bytes"]),
        maxInflightPerWorker: int("max-worker-inflight", values["max-worker-inflight"], 1),
        framesPerTurn: int("frames-per-turn", values["frames-per-turn"], 1),
        idleTimeoutMs: int("idle-timeout", values["idle-timeout"], 0),
        maxConnections: int("max-connections", values["max-connections"], 1),
        maxClientMemory: values["max-client-memory"] === undefined
          ? undefined
          : parseSize(values["max-client-memory"]),
        stallTimeoutMs: int("stall-timeout", values["stall-timeout"], 0),
      }),
      ops: {
        metricsPort: int("metrics-port", values["metrics-port"], 0),
        metricsHost: values["metrics-host"],
        logger,
        slowlog: definedOnly({
          thresholdUs: int("slowlog-threshold-us", values["slowlog-threshold-us"], -1),
          maxLen: int("slowlog-max-len", values["slowlog-max-len"], 1),
        }),
      },
      serviceOptions: definedOnly({
        maxMemory: values["max-memory"] === undefined ? undefined : parseSize(values["max-memory"]),
        eviction: oneOf("eviction", values.eviction, EVICTION_POLICIES),
      }),
      persist: {
        mode: oneOf("persist", values.persist, PERSIST_MODES) ?? "everysec",
        dataDir: values["data-dir"] ?? "data",
      },
    },
    strictLeaks: values["strict-leaks"] ?? false,
    testLeak: oneOf("test-leak", values["test-leak"], RESOURCE_KINDS) ?? null,
    help: values.help ?? false,
    security: {
      passwordFile: values["password-file"],
      aclFile: values["acl-file"],
      tlsCert: values["tls-cert"],
      tlsKey: values["tls-key"],
      tlsCa: values["tls-ca"],
      tlsClientAuth: values["tls-client-auth"],
      protectedMode: values["protected-mode"] === undefined
        ? undefined
        : oneOf("protected-mode", values["protected-mode"], ["yes", "no"]) === "yes",
    },
    log,
    logger,
  };
}
