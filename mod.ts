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
 * `defineService({...})` and pass its URL as `service`. The client lives in
 * `@evkv/evkv/client`.
 *
 * @module
 */
export {
  type AcceptMode,
  serve,
  type ServeOptions,
  type Server,
  type ShutdownReport,
} from "./src/server/server.ts";
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
export { loadLine, type PersistOptions, type PersistStatus } from "./src/persist/manager.ts";
export { type PersistMode } from "./src/persist/plan.ts";
export { DataDirError } from "./src/persist/datadir.ts";
export { backup, type BackupReport } from "./src/persist/backup.ts";
export { parseServeFlags, parseSize, SERVE_USAGE, type ServeFlags } from "./src/server/config.ts";
export {
  DEFAULT_MAX_BODY,
  Flags,
  FRAME_OVERHEAD,
  HEADER_SIZE,
  KvInternalMethod,
  KvMethod,
  MAGIC,
  REPLY_SLACK,
  Status,
  STATUS_NAMES,
  type StatusName,
  statusName,
  TRAILER_SIZE,
  VERSION,
} from "./src/protocol/constants.ts";
export {
  BAD_PREAMBLE,
  BODY_TOO_LARGE,
  checkFrame,
  crcMatches,
  decodeHeader,
  encodeFrame,
  encodeFrameInto,
  type FrameFields,
  type FrameHeader,
  HeaderOffset,
  NEED_MORE,
  readU32,
  roomForFrame,
  writeHeader,
  writeU32,
} from "./src/protocol/frame.ts";
export {
  crc32,
  crc32Combine,
  crc32Js,
  crc32Of,
  crc32Range,
  NATIVE_CRC_THRESHOLD,
} from "./src/protocol/crc32.ts";
export { encodeError, type evkv, pb } from "./src/protocol/messages.ts";
export {
  BLOCK_SLOTS,
  type CallerFootprint,
  Counter,
  COUNTER_NAMES,
  type CounterName,
  createStatsMemory,
  leakedKinds,
  Res,
  RESOURCE_KINDS,
  type ResourceKind,
  type ResourceTotals,
  snapshot,
  StatsBlock,
  type StatsSnapshot,
  TRANSIENT_KINDS,
  withoutCaller,
} from "./src/stats/resources.ts";
export { type CounterRow, formatDump, type IoSummary, statsRows } from "./src/stats/report.ts";
export {
  type AuthConfig,
  type AuthOptions,
  buildAuthConfig,
  parseAclFile,
  type UserSpec,
} from "./src/auth/acl.ts";
export type { TlsOptions } from "./src/auth/tls.ts";
export { loadSecurity, PASSWORD_ENV, type SecurityFlags } from "./src/auth/load.ts";
export { hashBytes, keyShard } from "./src/kv/route.ts";
export { MAX_KEY_BYTES, MAX_SCAN_LIMIT, mergeScan } from "./src/kv/service.ts";
export {
  compareBytes,
  EVICTION_POLICIES,
  type EvictionPolicy,
  keyToString,
  MAX_STORE_KEY,
  type RemoveReason,
  type ScanEntry,
  type ScanOptions,
  type ScanResult,
  ShardStore,
  type StoredValue,
  StoreFullError,
  type StoreObserver,
  type StoreOptions,
  stringToKey,
} from "./src/kv/store.ts";
// Operations (src/ops): metrics, slow log, logs, config file.
export {
  BurstLog,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFields,
  type LogFormat,
  Logger,
  type LogLevel,
  type LogSink,
} from "./src/ops/log.ts";
export {
  argsWithConfig,
  configFileArgs,
  ConfigFileError,
  splitConfigFlag,
} from "./src/ops/config_file.ts";
export {
  type MetricsServer,
  type MetricsSource,
  renderMetrics,
  startMetricsServer,
} from "./src/ops/metrics.ts";
export {
  EvictionWatch,
  type OpsContext,
  type OpsOptions,
  type OpsRuntime,
  startOps,
} from "./src/ops/ops.ts";
export { respCommandIndex, respCommandNames } from "./src/ops/command_index.ts";
export { RespTrack } from "./src/ops/resp_track.ts";
export {
  createOpsMemory,
  type Histogram,
  LATENCY_BOUNDS_S,
  type OpsMemory,
  PROTOCOL_NAMES,
  readRequestTotals,
  readSlowlog,
  Recorder,
  recorder,
  type RequestTotals,
  resetSlowlog,
  type SlowEntry,
  type SlowlogOptions,
} from "./src/ops/recorder.ts";

/**
 * URL of the KV service module, the default `service` of {@link serve}.
 *
 * @example
 * ```ts
 * import { KV_SERVICE_URL, serve } from "@evkv/evkv";
 * const server = await serve({ service: KV_SERVICE_URL, port: 0 });
 * await server.shutdown();
 * ```
 */
export const KV_SERVICE_URL: string = new URL("./src/kv/service.ts", import.meta.url).href;
