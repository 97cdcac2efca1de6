/**
 * evkv: a server framework for RPC over TCP in Deno, and the key-value
 * service built on it.
 *
 * The main thread starts IO workers, which accept connections and cut
 * frames, and task workers, which run a service's handlers for their shard.
 * Requests cross threads through SharedArrayBuffer rings. Every resource
 * the server creates is counted per kind, so leaks show up as numbers.
 *
 * Serve the KV service:
 *
 * ```ts
 * import { serve } from "@evkv/evkv";
 * const server = await serve({ port: 7379 });
 * // ... later
 * const report = await server.shutdown();
 * console.log(report.dump);
 * ```
 *
 * Serve your own service: write a module whose default export is
 * `defineService({...})` and pass its URL as `service`; `startServer` is
 * the same server without the KV defaults, serving wire v1 and the
 * `protocols` you name. The client lives in `@evkv/evkv/client`.
 *
 * @module
 */
// The framework: serve a service, define one, bound it.
export {
  type AcceptMode,
  type ProtocolSpec,
  type RunningServer,
  type ServerOptions,
  type ShutdownReport,
  startServer,
} from "./src/server/main/server.ts";
// The KV server: the framework with the KV service and the RESP door.
export { KV_SERVICE_URL, serve, type ServeOptions, type Server } from "./src/kvserver/serve.ts";
export {
  type BodyReader,
  type BodyWriter,
  type ConnectionInfo,
  defineService,
  type HandlerContext,
  type MessageType,
  type Method,
  method,
  type MethodSpec,
  RequestBatch,
  type Route,
  type Service,
  ServiceError,
  type ServiceOptions,
} from "./src/server/service.ts";
export type { Layout, Mode } from "./src/server/topology.ts";
export {
  DEFAULT_LIMITS,
  type Limits,
  outputBound,
  receiveBytesFor,
  SMALL_REPLY_BYTES,
} from "./src/server/limits.ts";
export { parseServeFlags, parseSize, SERVE_USAGE, type ServeFlags } from "./src/kvserver/config.ts";
// Persistence: options, status, errors, online backup.
export type { PersistOptions, PersistStatus } from "./src/persist/manager.ts";
export type { PersistMode } from "./src/persist/plan.ts";
export { DataDirError } from "./src/persist/datadir.ts";
export { backup, type BackupReport } from "./src/persist/backup.ts";
// The wire: statuses, method codes and message types a handler or a raw call uses.
export {
  DEFAULT_MAX_BODY,
  KvMethod,
  Status,
  STATUS_NAMES,
  type StatusName,
  statusName,
} from "./src/protocol/constants.ts";
export { type evkv, pb } from "./src/protocol/messages.ts";
// What a shutdown reports.
export {
  COUNTER_NAMES,
  type CounterName,
  leakedKinds,
  RESOURCE_KINDS,
  type ResourceKind,
  type ResourceTotals,
  type StatsSnapshot,
} from "./src/stats/resources.ts";
// Security and operations options of serve().
export type { AuthOptions, UserSpec } from "./src/auth/acl.ts";
export type { TlsOptions } from "./src/auth/tls.ts";
export { PASSWORD_ENV, type SecurityFlags } from "./src/auth/load.ts";
export {
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFields,
  type LogFormat,
  Logger,
  type LogLevel,
  type LogSink,
} from "./src/ops/log.ts";
export type { OpsOptions } from "./src/ops/ops.ts";
export type { OpsMemory, SlowlogOptions } from "./src/ops/recorder.ts";
