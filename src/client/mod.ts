/**
 * The evkv client: `connect()` to a server, then `get`, `put`, `delete`,
 * `scan`, `stats`, `ping`, or any method through `call`, with many calls in
 * flight on one connection.
 *
 * @example
 * ```ts
 * import { connect, EvkvError, Status } from "@evkv/evkv/client";
 * await using client = await connect({ port: 7379, timeoutMs: 1000 });
 * await client.put("user:1", "ada");
 * for await (const { key, value } of client.scanAll("user:")) {
 *   console.log(new TextDecoder().decode(key), new TextDecoder().decode(value));
 * }
 * ```
 *
 * @module
 */
export {
  type BytesLike,
  type CallOptions,
  Client,
  connect,
  ConnectionClosedError,
  type ConnectOptions,
  DEFAULT_HOST,
  DEFAULT_PORT,
  EvkvError,
  ProtocolError,
  type PutOptions,
  type ScanEntry,
  type ScanOptions,
  type ScanPage,
  type StatsRow,
  type TlsClientOptions,
} from "./client.ts";
export { Status, type StatusName, statusName } from "../protocol/constants.ts";
export {
  KETAMA_HASHES,
  type KetamaHash,
  ketamaHash,
  type KetamaNode,
  type KetamaOptions,
  KetamaRing,
} from "./ketama.ts";
export {
  connectSharded,
  ShardedClient,
  type ShardedOptions,
  type ShardedServer,
} from "./sharded.ts";
