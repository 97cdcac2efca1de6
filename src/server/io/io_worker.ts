/**
 * IO worker entry: accepts connections (its own SO_REUSEPORT listeners, or
 * sockets the main thread keeps and reads and writes on its behalf), reads them, lets each
 * connection's codec cut frames into calls, and writes every connection
 * that got replies once per batch. Where calls run is the
 * {@link Dispatcher}'s business.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { Flags, Status } from "../../protocol/constants.ts";
import { encodeFrame } from "../../protocol/frame.ts";
import { encodeError } from "../../protocol/messages.ts";
import { awaitDurable, kickPersistence } from "../../persist/journal.ts";
import { Counter, Res, StatsBlock } from "../../stats/resources.ts";
import { type OpsMemory, recorder } from "../../ops/recorder.ts";
import { ClientMemoryGuard } from "./client_memory.ts";
import { type Codec, Connection, type ConnectionOwner, type ReplySink } from "./connection.ts";
import { Dispatcher } from "./dispatcher.ts";
import { IoEnd } from "../channel/io_end.ts";
import { wireCodec } from "./wire_codec.ts";
import type { Limits } from "../limits.ts";
import type { Service, ServiceOptions } from "../service.ts";
import type { ShardHost } from "../shard/shard_host.ts";
import { hostShard, nextIdle } from "../shard/host_shard.ts";
import { beatMs } from "../main/watchdog.ts";
import {
  Control,
  openRing,
  progressWord,
  shardCount,
  shardThread,
  type SharedPlan,
  threadIndex,
  wake,
  wakeWord,
} from "../topology.ts";
import { type ProxyMessage, ProxyTransport, type Transport } from "./transport.ts";
import type { AuthConfig } from "../../auth/acl.ts";
import { Guard } from "../../auth/guard.ts";
import { guardedWireCodec, wireAuthFallback } from "../../auth/wire_gate.ts";
import { type Closable, listenClientAuth, listenTls, type TlsOptions } from "../../auth/tls.ts";

/** The worker global, typed here rather than through a lib directive (JSR bans those). */
const scope = globalThis as unknown as {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

/** A codec's name: `wire` (wire v1, built in) or a key of {@link IoWorkerInit.codecUrls}. */
export type CodecName = string;

/** One listening socket of an IO worker. */
export interface ListenSpec {
  /** Address. */
  hostname: string;
  /** Port; 0 picks one (only the first IO worker is given 0). */
  port: number;
  /** Protocol spoken there. */
  codec: CodecName;
}

/** The message that starts an IO worker. */
export interface IoWorkerInit {
  /** Shared memory and layout. */
  plan: SharedPlan;
  /** This worker's index. */
  index: number;
  /** URL of the service module (default export). */
  serviceUrl: string;
  /** Body limit. */
  maxBody: number;
  /** See {@link ServeOptions.serviceOptions}. */
  serviceOptions?: ServiceOptions;
  /** Backpressure, fairness and timeout limits. */
  limits: Limits;
  /** Bumped each time this IO worker is restarted; see `Rep.generation`. */
  generation: number;
  /** Listen here with SO_REUSEPORT; empty when the main thread accepts. */
  listen: ListenSpec[];
  /** Codecs beyond wire v1, by name: module URLs whose default export is the codec. */
  codecUrls: Record<CodecName, string>;
  /** Users and passwords; absent: no guard (no Auth method, no checks). */
  auth?: AuthConfig;
  /** Listen with TLS only. */
  tls?: TlsOptions;
  /** Request metrics and the slow log (src/ops). */
  ops: OpsMemory;
}

/** Messages the main thread sends after start. */
export type IoWorkerCommand =
  | {
    /** A socket the main thread accepted and keeps (`--accept main`). */
    type: "conn";
    /** The main thread's id for it, in every message about it. */
    id: number;
    codec: CodecName;
    remote: string;
  }
  | Extract<ProxyMessage, { type: "sock-data" | "sock-written" }>
  | { type: "drain"; timeoutMs: number }
  | { type: "shard-died"; shard: number; cause?: string }
  | { type: "stop" };

class IoWorker implements ConnectionOwner {
  readonly stats: StatsBlock;
  readonly maxBody: number;
  readonly limits: Limits;
  readonly dispatcher: Dispatcher;
  readonly dirty: Connection[] = [];
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  readonly #plan: SharedPlan;
  readonly #index: number;
  readonly #me: number;
  readonly #service: Service<unknown>;
  readonly #control: Int32Array;
  /** The shard this thread hosts in inline mode. */
  readonly #host: ShardHost<unknown> | null;
  readonly #conns = new Map<number, Connection>();
  #nextConnId = 1;
  readonly #listeners: Closable[] = [];
  readonly #guard: Guard | null;
  readonly #tls: TlsOptions | undefined;
  #draining = false;
  #stopped = false;
  #drainReported = false;
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #clientMemory: ClientMemoryGuard;
  /** This worker's end of the channel to the shards. */
  readonly #channel: IoEnd<Connection, ReplySink>;
  readonly #codecs: Record<CodecName, Codec>;

  constructor(init: IoWorkerInit, service: Service<unknown>, codecs: Record<CodecName, Codec>) {
    this.#codecs = codecs;
    const plan = init.plan;
    this.#plan = plan;
    this.#index = init.index;
    this.#service = service;
    this.maxBody = init.maxBody;
    this.limits = init.limits;
    const shards = shardCount(plan.layout);
    this.#me = threadIndex(plan.layout, "io", init.index);
    this.#control = new Int32Array(plan.control);
    this.stats = new StatsBlock(plan.stats, this.#me);
    this.stats.reset();
    this.#clientMemory = new ClientMemoryGuard(
      plan.clientMemory,
      init.index,
      init.limits.maxClientMemory,
    );
    this.#guard = init.auth ? new Guard(init.auth, this.stats) : null;
    this.#tls = init.tls;
    // Not reset on a restart: the metrics are monotonic counters.
    recorder.bind(init.ops, init.index);
    if (plan.layout.mode === "inline") {
      this.#host = hostShard(
        plan,
        init.index,
        service,
        init.maxBody,
        init.serviceOptions,
        this.stats,
        "queue",
      );
    } else {
      this.#host = null;
    }
    const channel = new IoEnd<Connection, ReplySink>(
      this.stats,
      plan.requestRings[init.index].map(openRing),
      plan.replyRings.map((row) => openRing(row[init.index])),
      init.generation,
      this.#host?.executor ?? null,
      init.index,
    );
    const layout = plan.layout;
    const control = this.#control;
    channel.wakes.notify = (s) => wake(control, shardThread(layout, s));
    this.#channel = channel;
    this.dispatcher = new Dispatcher({
      service,
      stats: this.stats,
      shards,
      channel,
      maxInflight: init.limits.maxInflightPerWorker,
      maxBody: init.maxBody,
      endOfBatch: () => this.endOfBatch(),
      framesPerTurn: init.limits.framesPerTurn,
      fallback: this.#guard === null ? undefined : wireAuthFallback,
    });
  }

  // --- accepting -----------------------------------------------------------

  /** Listens with SO_REUSEPORT; returns the port (useful when asked for 0). */
  async listen(spec: ListenSpec): Promise<number> {
    const tls = this.#tls;
    if (tls?.clientAuth) {
      const adopt = (t: Transport, remote: string) => this.adopt(t, remote, spec.codec);
      const l = await listenClientAuth(spec.hostname, spec.port, tls, true, adopt);
      this.#listeners.push(l);
      return l.port;
    }
    const listener = tls
      ? listenTls(spec.hostname, spec.port, tls, true)
      : Deno.listen({ hostname: spec.hostname, port: spec.port, reusePort: true });
    this.#listeners.push(listener);
    this.#acceptLoop(listener, spec.codec);
    return (listener.addr as Deno.NetAddr).port;
  }

  async #acceptLoop(listener: Deno.Listener, codec: CodecName): Promise<void> {
    try {
      for await (const conn of listener) {
        try {
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch {
          // Not fatal: only latency suffers.
        }
        const addr = conn.remoteAddr as Deno.NetAddr;
        this.adopt(conn, `${addr.hostname}:${addr.port}`, codec);
      }
    } catch {
      // The listener was closed for draining.
    }
  }

  adopt(transport: Transport, remote: string, codec: CodecName): void {
    this.stats.count(Counter.connections_accepted);
    if (this.#draining) {
      this.stats.count(Counter.connections_rejected);
      transport.close();
      return;
    }
    const open = Atomics.add(this.#control, Control.openConnections, 1);
    if (open >= this.limits.maxConnections) {
      Atomics.sub(this.#control, Control.openConnections, 1);
      this.stats.count(Counter.connections_rejected);
      this.#refuse(transport);
      return;
    }
    const id = this.#nextConnId++;
    const info = { id, ioWorker: this.#index, remote };
    const gated = codec === "wire" && this.#guard !== null && !this.#guard.wideOpen;
    const conn = new Connection(
      this,
      transport,
      info,
      gated ? guardedWireCodec : this.#codecs[codec],
    );
    if (this.#guard !== null) conn.auth = this.#guard.open(conn);
    conn.codec.open(conn);
    this.#conns.set(id, conn);
    this.#service.onConnect?.(conn.info);
    conn.run();
  }

  /**
   * Tells a connection over the limit why before closing it: one error
   * frame (request id 0, code 0, OVERLOADED), as Redis answers "max number
   * of clients reached".
   */
  #refuse(transport: Transport): void {
    const message =
      `Accept connection: the server is at its limit of ${this.limits.maxConnections} connections; retry later`;
    const frame = encodeFrame(
      {
        flags: Flags.REPLY | Flags.ERROR,
        code: 0,
        requestId: 0,
        status: Status.OVERLOADED,
        timeoutMs: 0,
      },
      encodeError(Status.OVERLOADED, message),
    );
    transport.write(frame).catch(() => 0).finally(() => transport.close());
  }

  overloaded(): boolean {
    return this.dispatcher.overloaded();
  }

  waitForWorker(conn: Connection): void {
    this.dispatcher.waitForRoom(conn);
  }

  /** Closes connections idle past the idle timeout; runs on an interval. */
  #closeIdle(): void {
    const now = Date.now();
    const limit = this.limits.idleTimeoutMs;
    for (const conn of [...this.#conns.values()]) {
      if (conn.idleFor(now, limit)) {
        this.stats.count(Counter.connections_timed_out);
        conn.close();
      }
    }
  }

  /**
   * Bumps this thread's progress word while its event loop is free: the
   * watchdog replaces an IO worker whose heartbeat stops (a handler stuck
   * in inline mode).
   */
  startHeartbeat(): void {
    const stall = this.limits.stallTimeoutMs;
    if (stall <= 0) return;
    this.stats.alloc(Res.sweeper, 0);
    const progress = new Int32Array(this.#plan.progress);
    const word = progressWord(this.#me);
    this.#heartbeat = setInterval(() => progress[word]++, beatMs(stall));
  }

  startIdleTimer(): void {
    const limit = this.limits.idleTimeoutMs;
    if (limit <= 0) return;
    this.stats.alloc(Res.sweeper, 0);
    this.#idleTimer = setInterval(
      () => this.#closeIdle(),
      Math.min(1000, Math.max(10, limit / 4)),
    );
  }

  closed(conn: Connection): void {
    Atomics.sub(this.#control, Control.openConnections, 1);
    this.dispatcher.forget(conn);
    conn.auth?.close();
    this.#conns.delete(conn.info.id);
    this.#service.onDisconnect?.(conn.info);
    this.#maybeDrained();
  }

  memoryChanged(conn: Connection, delta: number): void {
    this.#clientMemory.changed(conn, delta);
  }

  /** Closes the largest connections while all clients hold more than the cap. */
  #enforceClientMemory(): void {
    this.#clientMemory.enforce(
      () => this.#conns.values(),
      (conn, total) => {
        this.stats.count(Counter.connections_evicted);
        console.error(
          `evkv: closed connection ${conn.info.remote} holding ${conn.memoryBytes} B of buffers: ` +
            `all clients held ${total} B, over --max-client-memory ${this.limits.maxClientMemory} B`,
        );
        conn.close();
      },
      (io) => wake(this.#control, threadIndex(this.#plan.layout, "io", io)),
    );
  }

  // --- batches -------------------------------------------------------------

  /** Ends a batch: wakes the shards that got calls, writes the replies. */
  endOfBatch(): void {
    this.#channel.wakes.flush();
    if (this.#host) {
      // Under --persist always, no reply of this batch leaves before its write is committed.
      kickPersistence();
      awaitDurable();
    }
    // Timed just before the writes, so a slow request's entry is in the
    // slow log before its client can see the reply.
    recorder.endOfBatch();
    const dirty = this.dirty;
    for (let i = 0; i < dirty.length; i++) {
      if (dirty[i].dirty) dirty[i].flush();
    }
    dirty.length = 0;
    if (this.#clientMemory.pending) this.#enforceClientMemory();
    this.#maybeDrained();
  }

  shardDied(s: number, cause?: string): void {
    this.dispatcher.shardDied(s, cause);
    this.endOfBatch();
  }

  /** Waits for wake-ups and serves rings until stopped. */
  async pump(): Promise<void> {
    const control = this.#control;
    const word = wakeWord(this.#me);
    let idleAt = 0;
    while (!this.#stopped) {
      const seen = Atomics.load(control, word);
      // Another worker may have woken this one to close its largest client.
      if (this.#clientMemory.limit > 0) this.#clientMemory.pending = true;
      let done = this.#channel.drain(this.dispatcher.deliver);
      if (this.#host) done += await this.#host.drain();
      this.endOfBatch();
      if (done > 0 || Atomics.load(control, word) !== seen) {
        // More may be coming; let socket reads run first.
        await new Promise((r) => setImmediate(r));
        continue;
      }
      let timeout = 1000;
      if (this.#host) {
        const now = Date.now();
        idleAt = nextIdle(this.#host, idleAt, now);
        if (this.#host.replies.parked > 0) idleAt = now + 1;
        timeout = Math.max(1, idleAt - now);
      }
      const r = Atomics.waitAsync(control, word, seen, timeout);
      if (r.async) await r.value;
    }
  }

  // --- shutdown ------------------------------------------------------------

  /** Stops accepting, lets calls in flight finish, then closes. */
  drain(timeoutMs: number): void {
    this.#draining = true;
    this.dispatcher.draining = true;
    for (const l of this.#listeners.splice(0)) l.close();
    // Armed before anything can finish the drain, so that finishing clears it.
    this.stats.alloc(Res.timer, 0);
    this.#drainTimer = setTimeout(() => {
      this.#drainTimer = undefined;
      this.stats.free(Res.timer, 0);
      for (const conn of [...this.#conns.values()]) conn.close();
      this.#reportDrained(true);
    }, timeoutMs);
    // settle() closes a connection once nothing is owed, queued or being
    // written; replies a peer does not take in time make the drain forced.
    for (const conn of [...this.#conns.values()]) {
      conn.finish();
      conn.settle();
    }
    this.#maybeDrained();
  }

  #maybeDrained(): void {
    if (!this.#draining || this.#drainReported) return;
    if (this.#conns.size === 0 && !this.dispatcher.busy) this.#reportDrained(false);
  }

  #reportDrained(forced: boolean): void {
    if (this.#drainReported) return;
    this.#drainReported = true;
    if (this.#drainTimer !== undefined) {
      clearTimeout(this.#drainTimer);
      this.#drainTimer = undefined;
      this.stats.free(Res.timer, 0);
    }
    scope.postMessage({ type: "drained", forced });
  }

  /** Final stop: the main thread knows every shard is idle. */
  async stop(): Promise<void> {
    if (this.#heartbeat !== undefined) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
      this.stats.free(Res.sweeper, 0);
    }
    if (this.#idleTimer !== undefined) {
      clearInterval(this.#idleTimer);
      this.#idleTimer = undefined;
      this.stats.free(Res.sweeper, 0);
    }
    // Replies that were still in rings (a forced drain) are accounted for.
    this.#channel.drain(this.dispatcher.deliver);
    if (this.#host) await this.#host.drain();
    this.#stopped = true;
    wake(this.#control, this.#me);
  }
}

/**
 * The codecs this worker speaks: wire v1, built in, and the ones at `urls`
 * (name → module URL whose default export is the codec), named where the
 * server is assembled so that this generic worker imports none of them.
 */
async function loadCodecs(urls: Readonly<Record<CodecName, string>>): Promise<
  Record<CodecName, Codec>
> {
  const codecs: Record<CodecName, Codec> = { wire: wireCodec };
  for (const [name, url] of Object.entries(urls)) {
    codecs[name] = (await import(url)).default as Codec;
  }
  return codecs;
}

let worker: IoWorker | null = null;
/** Sockets kept by the main thread, by its id. */
const proxied = new Map<number, ProxyTransport>();

scope.onmessage = async (e: MessageEvent<IoWorkerInit | IoWorkerCommand>) => {
  const msg = e.data;
  if (!("type" in msg)) {
    try {
      const service = (await import(msg.serviceUrl)).default as Service<unknown>;
      worker = new IoWorker(msg, service, await loadCodecs(msg.codecUrls));
      const ports = [];
      for (const spec of msg.listen) ports.push(await worker.listen(spec));
      worker.pump();
      worker.startIdleTimer();
      worker.startHeartbeat();
      scope.postMessage({ type: "ready", ports });
    } catch (err) {
      // A port in use, a bad service module: thrown outside the promise so
      // that the main thread sees a worker error now, not a missing `ready`.
      setTimeout(() => {
        throw err;
      });
    }
    return;
  }
  if (!worker) return;
  switch (msg.type) {
    case "conn": {
      const id = msg.id;
      const transport = new ProxyTransport(id, (m, transfer) => {
        if (m.type === "sock-close") proxied.delete(id);
        scope.postMessage(m, transfer);
      });
      proxied.set(id, transport);
      worker.adopt(transport, msg.remote, msg.codec);
      break;
    }
    case "sock-data":
      proxied.get(msg.id)?.received(msg.bytes);
      break;
    case "sock-written":
      proxied.get(msg.id)?.written(msg.ok);
      break;
    case "drain":
      worker.drain(msg.timeoutMs);
      break;
    case "shard-died":
      worker.shardDied(msg.shard, msg.cause);
      scope.postMessage({ type: "shard-reset", shard: msg.shard });
      break;
    case "stop":
      await worker.stop();
      scope.postMessage({ type: "stopped" });
      break;
  }
};
