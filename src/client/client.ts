/**
 * The evkv client library: one TCP connection that carries many calls at
 * once (wire v1 pipelining), with typed methods for the KV service and a raw
 * {@link Client.call} for any method code.
 *
 * @example
 * ```ts
 * import { connect } from "@evkv/evkv/client";
 * await using client = await connect({ port: 7379, timeoutMs: 1000 });
 * await client.put("greeting", "hello");
 * const value = await client.get("greeting");
 * console.log(value && new TextDecoder().decode(value)); // "hello"
 * ```
 *
 * @module
 */
import {
  DEFAULT_MAX_BODY,
  Flags,
  HEADER_SIZE,
  KvMethod,
  REPLY_SLACK,
  Status,
  statusName,
  TRAILER_SIZE,
} from "../protocol/constants.ts";
import {
  BAD_PREAMBLE,
  BODY_TOO_LARGE,
  crcMatches,
  decodeHeader,
  encodeFrame,
  HeaderOffset,
  NEED_MORE,
  readU32,
} from "../protocol/frame.ts";
import { FrameReader } from "../protocol/frame_reader.ts";
import { pb } from "../protocol/messages.ts";
import {
  readVarint64,
  unzigzag64,
  varint64End,
  writeVarint64,
  zigzag64,
} from "../protocol/varint64.ts";

/**
 * Host {@link connect} uses when none is given.
 *
 * @example
 * ```ts
 * import { DEFAULT_HOST } from "@evkv/evkv/client";
 * console.log(DEFAULT_HOST); // "127.0.0.1"
 * ```
 */
export const DEFAULT_HOST = "127.0.0.1";

/**
 * Port {@link connect} uses when none is given.
 *
 * @example
 * ```ts
 * import { DEFAULT_PORT } from "@evkv/evkv/client";
 * console.log(DEFAULT_PORT); // 7379
 * ```
 */
export const DEFAULT_PORT = 7379;

/** Largest value the header's u32 fields (`timeout_ms`, `ttl_ms`) can carry. */
const U32_MAX = 0xffffffff;
/** setTimeout fires at once for delays over 2^31-1 ms, so local timers stop there. */
const MAX_TIMER_MS = 0x7fffffff;
/** Start small: most replies are tiny, and the buffer grows for the big ones. */
const INITIAL_READ_BUFFER = 64 * 1024;
const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

/**
 * Bytes, or a string that is sent UTF-8 encoded.
 *
 * @example
 * ```ts
 * import type { BytesLike } from "@evkv/evkv/client";
 * const key: BytesLike = "user:1";
 * const raw: BytesLike = new Uint8Array([0xff, 0x00]);
 * ```
 */
export type BytesLike = Uint8Array | string;

/**
 * Options of {@link connect}.
 *
 * @example
 * ```ts
 * import { connect, type ConnectOptions } from "@evkv/evkv/client";
 * const opts: ConnectOptions = { host: "127.0.0.1", port: 7379, timeoutMs: 500 };
 * const client = await connect(opts);
 * await client.close();
 * ```
 */
export interface ConnectOptions {
  /** Server host name or address. Default `127.0.0.1`. */
  host?: string;
  /** Server port. Default 7379. */
  port?: number;
  /** Timeout of every call that does not set its own, in ms; 0 (the default) = none. */
  timeoutMs?: number;
  /**
   * Largest body accepted, in bytes, both ways: a request over it is refused
   * without being sent (the server would drop the connection), and a reply
   * over it breaks the connection. Default 4 MiB, the server's default.
   */
  maxBody?: number;
  /**
   * User to authenticate as (wire v1 `Auth`) on every connect; default the
   * server's default user when {@link password} is set.
   */
  user?: string;
  /** Password to authenticate with on every connect; nothing is sent without it or {@link user}. */
  password?: string | Uint8Array;
  /**
   * Speak TLS: `true` trusts the system's CAs; an object can name the CA
   * certificates (PEM), the name to verify the server against, and a client
   * certificate for servers that require one.
   */
  tls?: boolean | TlsClientOptions;
}

/**
 * TLS settings of {@link ConnectOptions.tls}.
 *
 * @example
 * ```ts
 * import { connect, type TlsClientOptions } from "@evkv/evkv/client";
 * const tls: TlsClientOptions = { caCerts: [Deno.readTextFileSync("ca.pem")] };
 * const client = await connect({ port: 7379, tls });
 * await client.close();
 * ```
 */
export interface TlsClientOptions {
  /** CA certificates (PEM) to trust instead of the system's. */
  caCerts?: string[];
  /** Name the server's certificate must carry; default the host. */
  serverName?: string;
  /** Client certificate chain (PEM), with {@link key}. */
  cert?: string;
  /** Client private key (PEM), with {@link cert}. */
  key?: string;
}

/**
 * Options of one call.
 *
 * @example
 * ```ts
 * import { connect, type CallOptions } from "@evkv/evkv/client";
 * const client = await connect();
 * const fast: CallOptions = { timeoutMs: 50 };
 * await client.ping("hi", fast);
 * await client.close();
 * ```
 */
export interface CallOptions {
  /**
   * How long to wait for the reply, in ms; 0 = no limit. Sent as the
   * header's `timeout_ms`, so the server skips the request if it cannot start
   * it in time, and also enforced here: the call rejects with
   * `DEADLINE_EXCEEDED` when it runs out, and a reply that comes later is
   * dropped. Defaults to {@link ConnectOptions.timeoutMs}.
   */
  timeoutMs?: number;
  /**
   * Ask for no reply (flag `ONEWAY`): the call resolves once the request is
   * written, and typed methods then return their "empty" result (`false`,
   * `undefined`, no entries) since the server's answer is never seen.
   */
  oneway?: boolean;
}

/**
 * Options of {@link Client.put}.
 *
 * @example
 * ```ts
 * import { connect, type PutOptions } from "@evkv/evkv/client";
 * const client = await connect();
 * const opts: PutOptions = { ttlMs: 60_000 };
 * await client.put("session", "token", opts);
 * await client.close();
 * ```
 */
export interface PutOptions extends CallOptions {
  /** Time to live in ms; 0 or absent = forever. */
  ttlMs?: number;
}

/**
 * Where a scan starts and how many entries one page holds.
 *
 * @example
 * ```ts
 * import { connect, type ScanOptions } from "@evkv/evkv/client";
 * const client = await connect();
 * const opts: ScanOptions = { startAfter: "user:100", limit: 50 };
 * const page = await client.scan("user:", opts);
 * await client.close();
 * ```
 */
export interface ScanOptions {
  /** Return only keys after this one (exclusive). */
  startAfter?: BytesLike;
  /** Most entries per page; 0 or absent = the server's default (at most 1000). */
  limit?: number;
}

/**
 * One key and its value.
 *
 * @example
 * ```ts
 * import { connect, type ScanEntry } from "@evkv/evkv/client";
 * const client = await connect();
 * const first: ScanEntry | undefined = (await client.scan("user:")).entries[0];
 * await client.close();
 * ```
 */
export interface ScanEntry {
  /** The key's bytes. */
  key: Uint8Array;
  /** The value's bytes. */
  value: Uint8Array;
}

/**
 * One page of a scan.
 *
 * @example
 * ```ts
 * import { connect, type ScanPage } from "@evkv/evkv/client";
 * const client = await connect();
 * const page: ScanPage = await client.scan("user:", { limit: 10 });
 * if (page.more) console.log("there is more after", page.entries.at(-1)?.key);
 * await client.close();
 * ```
 */
export interface ScanPage {
  /** Entries in ascending byte order of key. */
  entries: ScanEntry[];
  /** Whether keys with the prefix exist past the last entry returned. */
  more: boolean;
}

/**
 * One server counter.
 *
 * @example
 * ```ts
 * import { connect, type StatsRow } from "@evkv/evkv/client";
 * const client = await connect();
 * const rows: StatsRow[] = await client.stats();
 * for (const { name, value } of rows) console.log(name, value);
 * await client.close();
 * ```
 */
export interface StatsRow {
  /** Counter name, as the server reports it. */
  name: string;
  /** Counter value. */
  value: number;
}

/**
 * A call that failed with a status: either the server's error reply, or the
 * client giving up on its own timeout (status `DEADLINE_EXCEEDED`, message
 * "Client gave up after N ms ..."), or a request too large to send (status
 * `TOO_LARGE`). The connection stays usable.
 *
 * @example
 * ```ts
 * import { connect, EvkvError, Status } from "@evkv/evkv/client";
 * const client = await connect();
 * try {
 *   await client.get("");
 * } catch (err) {
 *   if (err instanceof EvkvError && err.status === Status.BAD_REQUEST) console.log(err.message);
 * }
 * await client.close();
 * ```
 */
export class EvkvError extends Error {
  /** The reply status (never 0). */
  readonly status: number;
  /** The status by name, e.g. `BAD_REQUEST`. */
  readonly statusName: string;
  /** Method code of the call that failed. */
  readonly code: number;

  /**
   * Makes the error of a call with method `code` that ended with `status`.
   *
   * @example
   * ```ts
   * import { EvkvError, Status } from "@evkv/evkv/client";
   * const err = new EvkvError(Status.OVERLOADED, "queues are full", 2);
   * console.log(err.statusName); // "OVERLOADED"
   * ```
   */
  constructor(status: number, message: string, code: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "EvkvError";
    this.status = status;
    this.statusName = statusName(status);
    this.code = code;
  }
}

/**
 * The connection is gone (closed by either side, or broken by an I/O or
 * protocol error, which is then the `cause`): every call still waiting
 * rejects with it, and so does every later call. Open a new client to go on.
 *
 * @example
 * ```ts
 * import { connect, ConnectionClosedError } from "@evkv/evkv/client";
 * const client = await connect();
 * try {
 *   await client.get("k");
 * } catch (err) {
 *   if (err instanceof ConnectionClosedError) console.log("reconnect:", err.message);
 * }
 * await client.close();
 * ```
 */
export class ConnectionClosedError extends Error {
  /**
   * Makes the error; `options.cause` carries what broke the connection.
   *
   * @example
   * ```ts
   * import { ConnectionClosedError } from "@evkv/evkv/client";
   * const err = new ConnectionClosedError("Connection closed by the server");
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionClosedError";
  }
}

/**
 * The server sent something that breaks the wire contract: a reply whose CRC
 * does not match (the call it answers rejects with this error, and the
 * connection is closed since its stream can no longer be trusted), a bad
 * preamble or oversized reply (the `cause` of the resulting
 * {@link ConnectionClosedError}), or a reply body that does not decode as the
 * method's reply type (only that call fails).
 *
 * @example
 * ```ts
 * import { connect, ProtocolError } from "@evkv/evkv/client";
 * const client = await connect();
 * try {
 *   await client.ping();
 * } catch (err) {
 *   if (err instanceof ProtocolError) console.log("server misbehaved:", err.message);
 * }
 * await client.close();
 * ```
 */
export class ProtocolError extends Error {
  /**
   * Makes the error; `options.cause` carries a decoder's own error, if any.
   *
   * @example
   * ```ts
   * import { ProtocolError } from "@evkv/evkv/client";
   * const err = new ProtocolError("Reply failed its CRC check");
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
  }
}

/** A call waiting for its reply. */
interface Pending {
  code: number;
  resolve: (body: Uint8Array) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** A frame waiting to be written; only ONEWAY calls wait on the write itself. */
interface Outgoing {
  frame: Uint8Array;
  written?: () => void;
  failed?: (err: Error) => void;
}

/**
 * A connection to an evkv server. Calls may be issued without waiting for
 * earlier ones: requests made in the same turn of the event loop go out in
 * one write, and replies are matched to calls by `request_id` in whatever
 * order they come. Create one with {@link connect}; close it with
 * {@link Client.close} or `await using`.
 *
 * @example
 * ```ts
 * import { connect } from "@evkv/evkv/client";
 * await using client = await connect();
 * // Three requests in flight at once on one connection.
 * const [a, b, replaced] = await Promise.all([
 *   client.get("a"),
 *   client.get("b"),
 *   client.put("c", "3"),
 * ]);
 * ```
 */
export class Client implements AsyncDisposable {
  /**
   * Resolves once the connection is closed, for whatever reason, and the
   * client has stopped reading and writing. Never rejects.
   */
  readonly closed: Promise<void>;

  #conn: Deno.Conn;
  #label: string;
  #maxBody: number;
  #defaultTimeoutMs: number;
  #pending = new Map<number, Pending>();
  #queue: Outgoing[] = [];
  #writing: Promise<void> | undefined;
  #reading: Promise<void>;
  #nextId = 1;
  #closeError: ConnectionClosedError | undefined;
  #resolveClosed!: () => void;

  /**
   * Wraps an open connection; {@link connect} is the usual way in. The
   * client owns `conn` from now on and closes it.
   *
   * @example
   * ```ts
   * import { Client } from "@evkv/evkv/client";
   * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 7379 });
   * const client = new Client(conn, { timeoutMs: 1000 });
   * await client.close();
   * ```
   */
  constructor(conn: Deno.Conn, opts: Pick<ConnectOptions, "timeoutMs" | "maxBody"> = {}) {
    const timeoutMs = opts.timeoutMs ?? 0;
    checkU32("timeoutMs", timeoutMs);
    const maxBody = opts.maxBody ?? DEFAULT_MAX_BODY;
    if (!Number.isSafeInteger(maxBody) || maxBody < 0) {
      throw new RangeError(`maxBody must be a non-negative integer, got ${maxBody}`);
    }
    this.#conn = conn;
    this.#defaultTimeoutMs = timeoutMs;
    this.#maxBody = maxBody;
    const addr = conn.remoteAddr;
    this.#label = addr.transport === "tcp" ? `${addr.hostname}:${addr.port}` : "the server";
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
    this.#reading = this.#readLoop();
  }

  /**
   * Sends `payload` and resolves with the bytes the server echoes.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * await using client = await connect();
   * const t0 = performance.now();
   * await client.ping();
   * console.log(`round trip ${performance.now() - t0} ms`);
   * ```
   */
  async ping(payload: BytesLike = EMPTY, opts?: CallOptions): Promise<Uint8Array> {
    const body = await this.call(
      KvMethod.Ping,
      pb.PingRequest.encode({ payload: field(payload) }).finish(),
      opts,
    );
    return bytesField(decodeReply("Ping", () => pb.PingReply.decode(body)).payload);
  }

  /**
   * The value of `key`, or `undefined` when it is missing or expired.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * await using client = await connect();
   * const v = await client.get("user:1");
   * console.log(v === undefined ? "missing" : new TextDecoder().decode(v));
   * ```
   */
  async get(key: BytesLike, opts?: CallOptions): Promise<Uint8Array | undefined> {
    const body = await this.call(
      KvMethod.Get,
      pb.GetRequest.encode({ key: field(key) }).finish(),
      opts,
    );
    const reply = decodeReply("Get", () => pb.GetReply.decode(body));
    return reply.found ? bytesField(reply.value) : undefined;
  }

  /**
   * Stores `value` under `key`; resolves with whether a live value was
   * replaced.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * await using client = await connect();
   * const replaced = await client.put("session:9", "token", { ttlMs: 30_000 });
   * ```
   */
  async put(key: BytesLike, value: BytesLike, opts: PutOptions = {}): Promise<boolean> {
    const ttlMs = opts.ttlMs ?? 0;
    checkU32("ttlMs", ttlMs);
    const body = await this.call(
      KvMethod.Put,
      pb.PutRequest.encode({ key: field(key), value: field(value), ttlMs: ttlMs || undefined })
        .finish(),
      opts,
    );
    return decodeReply("Put", () => pb.PutReply.decode(body)).replaced === true;
  }

  /**
   * Adds `delta` (default 1, may be negative) to the counter at `key` and
   * resolves with its new value. A counter is a signed 64-bit integer kept
   * as ASCII decimal (as Redis keeps them, so RESP's INCR sees the same
   * value); a missing key counts as 0. `ttlMs` applies only when the key is
   * created. A stored value that is not such an integer, or a result
   * outside the 64-bit range, rejects with `BAD_REQUEST` and leaves the
   * value unchanged. Exact past 2^53: pass and get BigInts.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * await using client = await connect();
   * const hits = await client.incr("page:home:hits"); // 1n on a new key
   * await client.incr("stock:42", -3n, { ttlMs: 60_000 });
   * ```
   */
  async incr(key: BytesLike, delta: number | bigint = 1, opts: PutOptions = {}): Promise<bigint> {
    const d = BigInt(delta);
    if (d < -(1n << 63n) || d >= 1n << 63n) {
      throw new RangeError(`Incr: delta must fit in a signed 64-bit integer, got ${d}`);
    }
    const ttlMs = opts.ttlMs ?? 0;
    checkU32("ttlMs", ttlMs);
    const body = await this.call(KvMethod.Incr, encodeIncrRequest(key, d, ttlMs), opts);
    return decodeReply("Incr", () => decodeIncrReply(body));
  }

  /**
   * Removes `key`; resolves with whether a live value was there.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * await using client = await connect();
   * if (!(await client.delete("user:1"))) console.log("was not there");
   * ```
   */
  async delete(key: BytesLike, opts?: CallOptions): Promise<boolean> {
    const body = await this.call(
      KvMethod.Delete,
      pb.DeleteRequest.encode({ key: field(key) }).finish(),
      opts,
    );
    return decodeReply("Delete", () => pb.DeleteReply.decode(body)).deleted === true;
  }

  /**
   * One page of the keys that start with `prefix`, in ascending byte order.
   * An empty prefix scans everything.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * await using client = await connect();
   * const { entries, more } = await client.scan("user:", { limit: 100 });
   * ```
   */
  async scan(prefix: BytesLike, opts: ScanOptions & CallOptions = {}): Promise<ScanPage> {
    const limit = opts.limit ?? 0;
    checkU32("limit", limit);
    const req = pb.ScanRequest.encode({
      prefix: field(prefix),
      startAfter: opts.startAfter === undefined ? undefined : field(opts.startAfter),
      limit: limit || undefined,
    }).finish();
    const body = await this.call(KvMethod.Scan, req, opts);
    const reply = decodeReply("Scan", () => pb.ScanReply.decode(body));
    return {
      entries: (reply.entries ?? []).map((e) => ({
        key: bytesField(e.key),
        value: bytesField(e.value),
      })),
      more: reply.more === true,
    };
  }

  /**
   * Authenticates this connection as `user` (empty: the default user) and
   * resolves with the user now in force; a wrong password rejects with an
   * {@link EvkvError} of status UNAUTHENTICATED and leaves the connection
   * as it was. {@link connect} does this itself when given a password.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * await using client = await connect();
   * console.log(await client.auth("alice", "s3cret")); // "alice"
   * ```
   */
  async auth(user: string, password: BytesLike, opts?: CallOptions): Promise<string> {
    const body = await this.call(
      KvMethod.Auth,
      pb.AuthRequest.encode({
        user: user === "" ? undefined : user,
        password: field(password),
      }).finish(),
      opts,
    );
    return decodeReply("Auth", () => pb.AuthReply.decode(body)).user ?? "";
  }

  /**
   * Every entry whose key starts with `prefix`, fetching page after page
   * (`limit` is the page size) with `start_after` set to the last key seen.
   * Pages are separate requests, so the listing is not one snapshot: keys
   * written meanwhile may or may not show up.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * await using client = await connect();
   * for await (const { key, value } of client.scanAll("user:", { limit: 500 })) {
   *   console.log(new TextDecoder().decode(key), value.length);
   * }
   * ```
   */
  async *scanAll(
    prefix: BytesLike,
    opts: ScanOptions & CallOptions = {},
  ): AsyncGenerator<ScanEntry, void, undefined> {
    let startAfter: BytesLike = opts.startAfter ?? EMPTY;
    for (;;) {
      const page = await this.scan(prefix, { ...opts, startAfter });
      yield* page.entries;
      // An empty page cannot move start_after forward, so "more" there
      // would loop forever.
      if (!page.more || page.entries.length === 0) return;
      startAfter = page.entries[page.entries.length - 1].key;
    }
  }

  /**
   * The server's counters.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * await using client = await connect();
   * const rows = await client.stats();
   * console.log(Object.fromEntries(rows.map((r) => [r.name, r.value])));
   * ```
   */
  async stats(opts?: CallOptions): Promise<StatsRow[]> {
    const body = await this.call(KvMethod.Stats, pb.StatsRequest.encode({}).finish(), opts);
    const reply = decodeReply("Stats", () => pb.StatsReply.decode(body));
    return (reply.counters ?? []).map((c) => ({ name: c.name ?? "", value: Number(c.value ?? 0) }));
  }

  /**
   * Sends a request with method `code` and an already encoded `body`, and
   * resolves with the body of an OK reply (a copy the caller owns). Rejects
   * with {@link EvkvError} when the status is not OK, and with
   * {@link ConnectionClosedError} when the connection goes first. A ONEWAY
   * call resolves with an empty body once it is written.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * import { pb } from "@evkv/evkv";
   * await using client = await connect();
   * const body = await client.call(2, pb.GetRequest.encode({ key: new Uint8Array([1]) }).finish());
   * const reply = pb.GetReply.decode(body);
   * ```
   */
  call(code: number, body: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    if (this.#closeError) return Promise.reject(this.#closeError);
    const timeoutMs = opts.timeoutMs ?? this.#defaultTimeoutMs;
    try {
      if (!Number.isInteger(code) || code < 0 || code > 0xffff) {
        throw new RangeError(`Method code must be an integer from 0 to 65535, got ${code}`);
      }
      checkU32("timeoutMs", timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    if (body.length > this.#maxBody) {
      // The server would answer TOO_LARGE and then drop the connection,
      // failing every other call in flight; refusing here keeps them alive.
      return Promise.reject(
        new EvkvError(
          Status.TOO_LARGE,
          `Request body of ${body.length} bytes is over the ${this.#maxBody}-byte limit; not sent`,
          code,
        ),
      );
    }
    const oneway = opts.oneway === true;
    const requestId = this.#takeId();
    const frame = encodeFrame(
      { flags: oneway ? Flags.ONEWAY : 0, code, requestId, status: 0, timeoutMs },
      body,
    );
    return new Promise<Uint8Array>((resolve, reject) => {
      if (oneway) {
        this.#enqueue({ frame, written: () => resolve(new Uint8Array(0)), failed: reject });
        return;
      }
      const pending: Pending = { code, resolve, reject, timer: undefined };
      if (timeoutMs > 0) {
        pending.timer = setTimeout(() => {
          this.#pending.delete(requestId);
          reject(
            new EvkvError(
              Status.DEADLINE_EXCEEDED,
              `Client gave up after ${timeoutMs} ms without a reply`,
              code,
            ),
          );
        }, Math.min(timeoutMs, MAX_TIMER_MS));
      }
      this.#pending.set(requestId, pending);
      this.#enqueue({ frame });
    });
  }

  /**
   * Closes the connection at once: calls still waiting for a reply, and
   * ONEWAY calls not yet written, reject with {@link ConnectionClosedError}.
   * Await the calls you care about first. Resolves when the client has
   * stopped all I/O; calling it again is harmless.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * const client = await connect();
   * await client.put("k", "v");
   * await client.close();
   * ```
   */
  async close(): Promise<void> {
    this.#fail("Connection closed by the client");
    await this.closed;
  }

  /**
   * Same as {@link Client.close}, for `await using`.
   *
   * @example
   * ```ts
   * import { connect } from "@evkv/evkv/client";
   * {
   *   await using client = await connect();
   *   await client.ping();
   * } // closed here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #takeId(): number {
    let id: number;
    do {
      id = this.#nextId;
      this.#nextId = (this.#nextId + 1) >>> 0;
    } while (this.#pending.has(id));
    return id;
  }

  #enqueue(out: Outgoing): void {
    this.#queue.push(out);
    this.#writing ??= this.#flush();
  }

  async #flush(): Promise<void> {
    let batch: Outgoing[] = [];
    try {
      // Let the rest of this turn queue its frames so they share one write.
      await Promise.resolve();
      while (this.#queue.length > 0 && !this.#closeError) {
        batch = this.#queue;
        this.#queue = [];
        const bytes = batch.length === 1 ? batch[0].frame : concatFrames(batch);
        let off = 0;
        while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
        for (const out of batch) out.written?.();
        batch = [];
      }
    } catch (err) {
      const closeErr = this.#fail(`Connection to ${this.#label} lost while writing`, err);
      for (const out of batch) out.failed?.(closeErr);
    } finally {
      this.#writing = undefined;
    }
  }

  async #readLoop(): Promise<void> {
    const reader = new FrameReader({ initialBytes: INITIAL_READ_BUFFER });
    // A reply may carry a value right at the limit plus its framing.
    const maxReply = this.#maxBody + REPLY_SLACK;
    let message = `Connection closed by the server ${this.#label}`;
    let cause: unknown;
    try {
      while (!this.#closeError) {
        const n = await this.#conn.read(reader.space());
        if (n === null) break;
        reader.filled(n);
        for (;;) {
          const len = reader.frame(maxReply);
          if (len === NEED_MORE) break;
          if (len === BAD_PREAMBLE) {
            throw new ProtocolError("Reply does not start with the EVKV magic and version 1");
          }
          if (len === BODY_TOO_LARGE) {
            const bodyLen = readU32(reader.bytes, reader.start + HeaderOffset.bodyLen);
            throw new ProtocolError(
              `Reply body of ${bodyLen} bytes is over the ${maxReply}-byte reply limit`,
            );
          }
          this.#onFrame(reader.bytes, reader.start, len);
          reader.consume(len);
        }
      }
    } catch (err) {
      if (err instanceof ProtocolError) {
        message = `Connection to ${this.#label} dropped after a protocol error: ${err.message}`;
      } else {
        message = `Connection to ${this.#label} lost while reading`;
      }
      cause = err;
    }
    this.#fail(message, cause);
  }

  #onFrame(buf: Uint8Array, off: number, len: number): void {
    const h = decodeHeader(buf, off);
    const pending = this.#pending.get(h.requestId);
    if (!crcMatches(buf, off, len)) {
      const err = new ProtocolError(
        `Reply to request ${h.requestId} (method ${h.code}) failed its CRC check`,
      );
      if (pending) {
        this.#settle(h.requestId, pending);
        pending.reject(err);
      }
      // Whatever corrupted this body may have hit a header too: nothing
      // after it can be trusted.
      throw err;
    }
    // No pending call: the client already gave up on it (timeout).
    if (!pending) return;
    this.#settle(h.requestId, pending);
    // The read buffer is reused, so the body must be a copy.
    const body = buf.slice(off + HEADER_SIZE, off + len - TRAILER_SIZE);
    if (h.status === Status.OK) pending.resolve(body);
    else pending.reject(errorFromReply(h.status, pending.code, body));
  }

  #settle(id: number, pending: Pending): void {
    this.#pending.delete(id);
    if (pending.timer !== undefined) clearTimeout(pending.timer);
  }

  /** Closes the connection once, failing everything still waiting; returns the close error. */
  #fail(message: string, cause?: unknown): ConnectionClosedError {
    if (this.#closeError) return this.#closeError;
    const err = new ConnectionClosedError(message, cause === undefined ? undefined : { cause });
    this.#closeError = err;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(err);
    }
    const queued = this.#queue;
    this.#queue = [];
    for (const out of queued) out.failed?.(err);
    try {
      this.#conn.close();
    } catch {
      // Already closed by Deno after an I/O error.
    }
    // Closing makes any read or write in progress fail, so both loops end.
    Promise.all([this.#reading, this.#writing]).then(() => this.#resolveClosed());
    return err;
  }
}

/**
 * Opens a connection to an evkv server.
 *
 * @example
 * ```ts
 * import { connect } from "@evkv/evkv/client";
 * const client = await connect({ host: "127.0.0.1", port: 7379, timeoutMs: 2000 });
 * try {
 *   await client.put("k", "v");
 * } finally {
 *   await client.close();
 * }
 * ```
 */
export async function connect(opts: ConnectOptions = {}): Promise<Client> {
  const hostname = opts.host ?? DEFAULT_HOST;
  const port = opts.port ?? DEFAULT_PORT;
  let conn: Deno.Conn;
  if (opts.tls) {
    const t = opts.tls === true ? {} : opts.tls;
    // The name checked against the certificate is the `hostname` given here.
    conn = await Deno.connectTls({
      hostname: t.serverName ?? hostname,
      port,
      caCerts: t.caCerts,
      ...(t.cert !== undefined && t.key !== undefined ? { cert: t.cert, key: t.key } : {}),
    });
    // The handshake runs now, so a certificate the client refuses fails connect().
    await (conn as Deno.TlsConn).handshake().catch((err) => {
      conn.close();
      throw err;
    });
  } else {
    conn = await Deno.connect({ hostname, port, transport: "tcp" });
    try {
      // Small requests must not wait for Nagle: latency is the point of pipelining.
      (conn as Deno.TcpConn).setNoDelay(true);
    } catch (err) {
      conn.close();
      throw err;
    }
  }
  const client = new Client(conn, opts);
  // Every connection this function makes authenticates before it is handed out,
  // so a reconnect (a new connect() with the same options) is authenticated too.
  if (opts.user !== undefined || opts.password !== undefined) {
    try {
      await client.auth(opts.user ?? "", opts.password ?? EMPTY);
    } catch (err) {
      await client.close();
      throw err;
    }
  }
  return client;
}

/**
 * A bytes field to encode, left out when empty: protobufjs writes any field
 * that is set, even to its default, and proto3's canonical form omits them.
 */
function field(v: BytesLike): Uint8Array | undefined {
  const bytes = typeof v === "string" ? encoder.encode(v) : v;
  return bytes.length > 0 ? bytes : undefined;
}

/**
 * protobufjs fills every absent bytes field with one shared empty array (the
 * prototype default); give callers an array of their own.
 */
function bytesField(v: Uint8Array | null | undefined): Uint8Array {
  return v && v.length > 0 ? v : new Uint8Array(0);
}

/** IncrRequest by hand: protobufjs without Long would round a 64-bit delta. */
function encodeIncrRequest(key: BytesLike, delta: bigint, ttlMs: number): Uint8Array {
  const k = typeof key === "string" ? encoder.encode(key) : key;
  const z = zigzag64(delta);
  const out = new Uint8Array(1 + 5 + k.length + 1 + 10 + 1 + 5);
  let off = 0;
  if (k.length > 0) {
    out[off++] = 0x0a;
    off = writeVarint64(out, off, BigInt(k.length));
    out.set(k, off);
    off += k.length;
  }
  if (z !== 0n) {
    out[off++] = 0x10;
    off = writeVarint64(out, off, z);
  }
  if (ttlMs !== 0) {
    out[off++] = 0x18;
    off = writeVarint64(out, off, BigInt(ttlMs));
  }
  return out.subarray(0, off);
}

/** IncrReply { sint64 value = 1; } exactly; unknown fields are skipped. */
function decodeIncrReply(b: Uint8Array): bigint {
  let value = 0n;
  let i = 0;
  while (i < b.length) {
    const tag = Number(readVarint64(b, i, b.length));
    i = varint64End;
    if (i < 0) throw new RangeError("truncated tag");
    const wire = tag & 7;
    if (wire === 0) {
      const v = readVarint64(b, i, b.length);
      i = varint64End;
      if (i < 0) throw new RangeError("truncated varint");
      if (tag >>> 3 === 1) value = unzigzag64(v);
    } else if (wire === 2) {
      const len = Number(readVarint64(b, i, b.length));
      i = varint64End;
      if (i < 0 || len > b.length - i) throw new RangeError("truncated field");
      i += len;
    } else if (wire === 1 || wire === 5) i += wire === 1 ? 8 : 4;
    else throw new RangeError(`wire type ${wire} is not supported`);
  }
  if (i !== b.length) throw new RangeError("truncated field");
  return value;
}

function decodeReply<T>(method: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    throw new ProtocolError(`${method} reply body does not decode`, { cause: err });
  }
}

function errorFromReply(status: number, code: number, body: Uint8Array): EvkvError {
  let message: string;
  try {
    message = pb.Error.decode(body).message || statusName(status);
  } catch {
    message = `${statusName(status)} (error body does not decode)`;
  }
  return new EvkvError(status, message, code);
}

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > U32_MAX) {
    throw new RangeError(`${name} must be an integer from 0 to ${U32_MAX}, got ${v}`);
  }
}

function concatFrames(batch: Outgoing[]): Uint8Array {
  let total = 0;
  for (const out of batch) total += out.frame.length;
  const bytes = new Uint8Array(total);
  let off = 0;
  for (const out of batch) {
    bytes.set(out.frame, off);
    off += out.frame.length;
  }
  return bytes;
}
