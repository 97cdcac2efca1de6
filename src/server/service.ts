/**
 * The service API: what a module must export for evkv to serve it. Both
 * worker kinds import the same module, so a service is plain data plus
 * functions, with no reference to threads or sockets.
 *
 * @module
 */
import type { StatsSnapshot } from "../stats/resources.ts";

/**
 * A protobuf message type as protobufjs generates it (static or reflected).
 */
export interface MessageType<T> {
  /** Encodes a message; `finish()` gives the bytes. */
  encode(message: T): { finish(): Uint8Array };
  /**
   * Decodes bytes. The bytes may be a view into memory that is reused after
   * the handler returns: a handler that keeps a bytes field must copy it.
   */
  decode(bytes: Uint8Array): T;
}

/**
 * A hand-written encoder for one reply type, for a method hot enough that
 * protobufjs's Writer (an object per field, then a second pass) shows up in
 * a profile. It must give exactly the bytes the message type's `encode`
 * gives; the server writes the body straight into the reply's destination.
 *
 * @example
 * ```ts
 * import type { BodyWriter } from "@evkv/evkv";
 * // PutReply { bool replaced = 1; }, as protobufjs writes it when set.
 * const putReply: BodyWriter<{ replaced?: boolean }> = {
 *   size: (m) => (m.replaced == null ? 0 : 2),
 *   write(m, dst, off) {
 *     if (m.replaced == null) return;
 *     dst[off] = 0x08;
 *     dst[off + 1] = m.replaced ? 1 : 0;
 *   },
 * };
 * ```
 */
export interface BodyWriter<T> {
  /** Bytes `write` will write for `message`. */
  size(message: T): number;
  /** Writes exactly `size(message)` bytes at `dst[off]`. */
  write(message: T, dst: Uint8Array, off: number): void;
  /**
   * The CRC-32 of the bytes `write` will write, when `message` carries
   * enough to know it without them (a checksum kept with stored data);
   * a negative number when it does not, and the server computes it. Called
   * before `write`. A wrong answer reaches the client as a CRC mismatch.
   */
  crc?(message: T): number;
}

/**
 * A hand-written decoder for one request type, the counterpart of
 * {@link BodyWriter}: it reads the body where it arrived (the receive
 * buffer or a ring), so a hot request needs no view of its own, no
 * protobufjs Reader and no message object. It may decline a body by
 * returning `undefined`; `request.decode` then decides, so a reader only
 * needs to know the shapes worth a fast path. What it returns must equal
 * what `request.decode` gives for the same bytes.
 *
 * @example
 * ```ts
 * import type { BodyReader } from "@evkv/evkv";
 * // PingRequest { bytes payload = 1; } when the payload is under 128 bytes.
 * const pingRequest: BodyReader<{ payload?: Uint8Array }> = {
 *   read(bytes, start, end) {
 *     if (start === end) return { payload: new Uint8Array(0) };
 *     const len = bytes[start + 1];
 *     if (bytes[start] !== 0x0a || len > 127 || start + 2 + len !== end) return undefined;
 *     return { payload: bytes.subarray(start + 2, end) };
 *   },
 * };
 * ```
 */
export interface BodyReader<T> {
  /**
   * The message in `bytes[start, end)`, or `undefined` to leave it to
   * protobufjs. Views it returns share the caller's memory, with the same
   * lifetime as a decoded message's bytes fields.
   */
  read(bytes: Uint8Array, start: number, end: number): T | undefined;
}

/**
 * The request bodies of one read, handed to {@link Service.prefetch}
 * before any of them runs. Nothing is copied: body `i` is
 * `bytes[starts[i], ends[i])` and its method code is `codes[i]`, valid only
 * during the call, and not yet checked (its CRC may be wrong, its method
 * unknown).
 *
 * @example
 * ```ts
 * import { RequestBatch } from "@evkv/evkv";
 * const bytes = new Uint8Array([0x0a, 1, 0x6b]);
 * const batch = new RequestBatch(64);
 * batch.reset(bytes);
 * batch.add(2, 0, bytes.length); // true: a Get body
 * batch.length; // 1
 * ```
 */
export class RequestBatch {
  /** The memory every body of the batch is in. */
  bytes: Uint8Array = new Uint8Array(0);
  /** Method code of each body. */
  readonly codes: Int32Array;
  /** Where each body starts in {@link bytes}. */
  readonly starts: Int32Array;
  /** Where each body ends in {@link bytes}. */
  readonly ends: Int32Array;
  /** Bodies in the batch. */
  length = 0;

  /** A batch of at most `capacity` bodies. */
  constructor(capacity: number) {
    this.codes = new Int32Array(capacity);
    this.starts = new Int32Array(capacity);
    this.ends = new Int32Array(capacity);
  }

  /** Empties the batch; the bodies added next are in `bytes`. */
  reset(bytes: Uint8Array): void {
    this.bytes = bytes;
    this.length = 0;
  }

  /** Adds the body `bytes[start, end)` of method `code`; false when the batch is full. */
  add(code: number, start: number, end: number): boolean {
    const i = this.length;
    if (i === this.codes.length) return false;
    this.codes[i] = code;
    this.starts[i] = start;
    this.ends[i] = end;
    this.length = i + 1;
    return true;
  }
}

/** What a handler can see besides its request. */
export interface HandlerContext<State> {
  /** This shard's state, made by {@link Service.createState}. */
  readonly state: State;
  /** Index of the shard this handler runs on. */
  readonly shard: number;
  /** How many shards the service has. */
  readonly shards: number;
  /** The server's body limit: a reply must stay within it. */
  readonly maxBody: number;
  /**
   * Sums the server's counters across all threads at this moment, leaving
   * out what this request and its connection hold, so that a client asking
   * an otherwise idle server sees every per-request kind at zero held.
   */
  stats(): StatsSnapshot;
  /** Milliseconds since the server started. */
  uptimeMs(): number;
}

/**
 * Where a request runs: `"local"` on whichever shard is nearest (no state
 * involved: the IO worker's own executor in inline mode, or the
 * connection's task worker in pool mode), `"all"` on every shard with the
 * parts joined by {@link MethodSpec.merge}, or a function of the raw request
 * body that returns a shard index (for example a hash of the key).
 */
export type Route = "local" | "all" | ((body: Uint8Array, shards: number) => number);

/** One method of a service, with its types. */
export interface MethodSpec<Req, Rep, State> {
  /** Method name for logs and errors. */
  name: string;
  /** Request body type. */
  request: MessageType<Req>;
  /** Reply body type. */
  reply: MessageType<Rep>;
  /** Decodes requests before `request.decode` is tried (see {@link BodyReader}). */
  requestReader?: BodyReader<Req>;
  /** Encodes replies instead of `reply.encode` (see {@link BodyWriter}). */
  replyWriter?: BodyWriter<Rep>;
  /**
   * Runs the method. Throw {@link ServiceError} for a status other than
   * `INTERNAL`; any other throw becomes `INTERNAL` for this request only.
   */
  handler(request: Req, ctx: HandlerContext<State>): Rep | Promise<Rep>;
  /** Where requests run; `"local"` when absent. */
  route?: Route;
  /** With route `"all"`: joins every shard's reply into one. */
  merge?(parts: Rep[], request: Req, maxBytes: number): Rep;
  /**
   * Only callable by codecs that ask for internal methods (RESP uses them
   * for SET NX/XX and DBSIZE); on the wire v1 port the code is unknown.
   */
  internal?: boolean;
}

/** A method with its types erased, as the server holds it. */
export interface Method<State> {
  /** Method name for logs and errors. */
  readonly name: string;
  /** Request body type. */
  readonly request: MessageType<unknown>;
  /** Reply body type. */
  readonly reply: MessageType<unknown>;
  /** See {@link MethodSpec.requestReader}. */
  readonly requestReader: BodyReader<unknown> | null;
  /** See {@link MethodSpec.replyWriter}. */
  readonly replyWriter: BodyWriter<unknown> | null;
  /** See {@link MethodSpec.handler}. */
  handler(request: unknown, ctx: HandlerContext<State>): unknown;
  /** See {@link MethodSpec.route}. */
  readonly route: Route;
  /** See {@link MethodSpec.merge}. */
  merge?(parts: unknown[], request: unknown, maxBytes: number): unknown;
  /** See {@link MethodSpec.internal}. */
  readonly internal: boolean;
}

/** A connection as services see it in {@link Service.onConnect}. */
export interface ConnectionInfo {
  /** Id unique within its IO worker. */
  readonly id: number;
  /** Index of the IO worker that owns it. */
  readonly ioWorker: number;
  /** Peer address, as `host:port`. */
  readonly remote: string;
}

/** A service: its methods by code, and optional per-shard state and hooks. */
export interface Service<State = unknown> {
  /** Service name for logs. */
  readonly name: string;
  /** Methods by method code (1..65535). */
  readonly methods: Readonly<Record<number, Method<State>>>;
  /**
   * Makes one shard's state, once in the thread that owns the shard;
   * `options` is {@link ServeOptions.serviceOptions} (`{}` when unset).
   */
  createState?(shard: number, shards: number, options: ServiceOptions): State;
  /**
   * Housekeeping while a shard is idle (expiry sweeps, say). Returns how
   * many ms until it wants to run again (`Infinity` for never).
   */
  idle?(state: State): number;
  /**
   * Writes the state's gauges (the KV store's key count and memory, say)
   * into this thread's `counters`, indexed by `Counter`: set, not added,
   * since the Stats method sums every thread's. Called after each request
   * and when idle, so keep it to a few stores.
   */
  gauges?(state: State, counters: Float64Array): void;
  /**
   * Warms the CPU cache for requests about to run on this shard, changing
   * nothing. In inline mode the IO worker calls it with the whole frames
   * of each read (up to `framesPerTurn`) before running the first, so a
   * service whose requests each miss the cache (a store bigger than it) can
   * touch all of their memory in one pass, where the misses overlap,
   * instead of stalling once per request. Keep it to plain reads: it runs
   * on bodies not yet checked, and what it throws is ignored.
   */
  prefetch?(batch: RequestBatch, ctx: HandlerContext<State>): void;
  /** Called in the IO worker when a connection opens. */
  onConnect?(conn: ConnectionInfo): void;
  /** Called in the IO worker when a connection closes. */
  onDisconnect?(conn: ConnectionInfo): void;
}

/**
 * Types one method and erases its types for the service table.
 *
 * @example
 * ```ts
 * import { method, pb } from "@evkv/evkv";
 * const ping = method({
 *   name: "Ping",
 *   request: pb.PingRequest,
 *   reply: pb.PingReply,
 *   handler: (req) => ({ payload: req.payload }),
 * });
 * ```
 */
export function method<Req, Rep, State = unknown>(
  spec: MethodSpec<Req, Rep, State>,
): Method<State> {
  return {
    name: spec.name,
    request: spec.request as MessageType<unknown>,
    reply: spec.reply as MessageType<unknown>,
    requestReader: (spec.requestReader ?? null) as BodyReader<unknown> | null,
    replyWriter: (spec.replyWriter ?? null) as BodyWriter<unknown> | null,
    handler: spec.handler as (r: unknown, c: HandlerContext<State>) => unknown,
    route: spec.route ?? "local",
    merge: spec.merge as Method<State>["merge"],
    internal: spec.internal ?? false,
  };
}

/**
 * Checks a service definition and returns it; a service module
 * default-exports the result.
 *
 * @example
 * ```ts
 * import { defineService, method, pb } from "@evkv/evkv";
 * export default defineService({
 *   name: "echo",
 *   methods: {
 *     1: method({ name: "Ping", request: pb.PingRequest, reply: pb.PingReply, handler: (r) => r }),
 *   },
 * });
 * ```
 */
export function defineService<State>(service: Service<State>): Service<State> {
  for (const [code, m] of Object.entries(service.methods)) {
    const n = Number(code);
    if (!Number.isInteger(n) || n < 1 || n > 0xffff) {
      throw new RangeError(`Define service ${service.name}: method code ${code} is not 1..65535`);
    }
    if (m.route === "all" && !m.merge) {
      throw new TypeError(
        `Define service ${service.name}: ${m.name} routes to all shards but has no merge`,
      );
    }
  }
  return service;
}

/**
 * Settings for a service module, given to every shard's
 * {@link Service.createState} (structured-cloned to each worker). The KV
 * service reads `maxMemory` (bytes, for the whole server) and `eviction`.
 *
 * @example
 * ```ts
 * const opts: ServiceOptions = { maxMemory: 64 << 20, eviction: "allkeys-lru" };
 * ```
 */
export type ServiceOptions = Readonly<Record<string, string | number | boolean>>;

/**
 * An error a handler throws to reply with a specific status.
 *
 * @example
 * ```ts
 * import { ServiceError, Status } from "@evkv/evkv";
 * throw new ServiceError(Status.BAD_REQUEST, "Get needs a key of 1 to 1024 bytes");
 * ```
 */
export class ServiceError extends Error {
  /** Wire status code of the reply. */
  readonly status: number;
  /** Makes an error that replies with `status` and `message`. */
  constructor(status: number, message: string) {
    super(message);
    this.name = "ServiceError";
    this.status = status;
  }
}
