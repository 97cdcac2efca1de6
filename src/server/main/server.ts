/**
 * The main thread's side of a server: builds the shared memory, starts and
 * supervises the workers, accepts connections when asked to (`accept:
 * "main"`), and runs the drain on shutdown. It never touches requests.
 *
 * @module
 */
import { DEFAULT_MAX_BODY } from "../../protocol/constants.ts";
import { formatDump } from "../../stats/report.ts";
import {
  Counter,
  COUNTER_NAMES,
  createStatsMemory,
  leakedKinds,
  Res,
  RESOURCE_KINDS,
  type ResourceKind,
  snapshot,
  StatsBlock,
  type StatsSnapshot,
} from "../../stats/resources.ts";
import type { IoWorkerInit } from "../io/io_worker.ts";
import { WorkerHandle } from "./supervisor.ts";
import { SocketProxy } from "./main_accept.ts";
import type { CodecName } from "../io/io_worker.ts";
import { DEFAULT_LIMITS, type Limits } from "../limits.ts";
import { type AuthOptions, buildAuthConfig } from "../../auth/acl.ts";
import { checkProtectedMode } from "../../auth/protected_mode.ts";
import { listenTls, type TlsOptions } from "../../auth/tls.ts";
import type { TaskWorkerInit } from "../shard/task_worker.ts";
import { createOpsMemory } from "../../ops/recorder.ts";
import { type OpsOptions, startOps } from "../../ops/ops.ts";
import type { ServiceOptions } from "../service.ts";
import { type Stall, Watchdog } from "./watchdog.ts";
import { Persistence, type PersistOptions, type PersistStatus } from "../../persist/manager.ts";
import {
  Control,
  createPlan,
  killWord,
  type Layout,
  type Mode,
  planRings,
  ringBytesFor,
  shardCount,
  type SharedPlan,
  threadCount,
  threadIndex,
  wake,
} from "../topology.ts";

/** How connections reach IO workers. */
export type AcceptMode = "reuseport" | "main";

/** A protocol served besides wire v1: the module of its codec and its port. */
export interface ProtocolSpec {
  /** URL of a module whose default export is the codec, loaded by each IO worker. */
  codecUrl: string;
  /** TCP port; 0 picks a free one. */
  port: number;
}

/** Options of {@link startServer}; every field but `service` has a default. */
export interface ServerOptions {
  /** URL of the service module (its default export is the service). */
  service: string | URL;
  /** Address to listen on. Default `127.0.0.1` (loopback only). */
  host?: string;
  /** TCP port; 0 picks a free one. Default 7379. */
  port?: number;
  /** IO workers. Default: the number of cores. */
  ioThreads?: number;
  /** Task workers in pool mode. Default: the number of cores. */
  workers?: number;
  /** Where handlers run. Default `"pool"`. */
  mode?: Mode;
  /** Who accepts. Default `"reuseport"` (each IO worker listens). */
  accept?: AcceptMode;
  /** Largest request or reply body in bytes. Default 4 MiB. */
  maxBody?: number;
  /** Bytes per ring; raised to fit two of the largest frames. Default 1 MiB. */
  ringBytes?: number;
  /** How long a drain may take before connections are closed. Default 5000 ms. */
  drainTimeoutMs?: number;
  /**
   * Protocols served besides wire v1, by codec name, each on its own port,
   * on the same workers and shards. Default: none.
   */
  protocols?: Readonly<Record<string, ProtocolSpec>>;
  /** Backpressure, fairness and timeout limits; see {@link DEFAULT_LIMITS}. */
  limits?: Partial<Limits>;
  /** Metrics endpoint, slow log and logger (src/ops). */
  ops?: OpsOptions;
  /** Settings every shard's state is made with (the KV store's memory cap, say). */
  serviceOptions?: ServiceOptions;
  /** Durability through SQLite under `dataDir`; memory only (`off`) when absent. */
  persist?: PersistOptions;
  /**
   * The default user's password and ACL users (README, Security). The guard
   * checks wire v1 calls against the KV service's method table, so another
   * service gets it only when this is given (`serve()` always guards the KV
   * service). Default: none, open.
   */
  auth?: AuthOptions;
  /** Speak TLS only, on every port. Default: plain TCP. */
  tls?: TlsOptions;
  /**
   * Refuse to listen beyond loopback with no password and no ACL file
   * (Redis's protected mode). Default true.
   */
  protectedMode?: boolean;
}

/** What a finished shutdown reports. */
export interface ShutdownReport {
  /** Counters after every worker stopped. */
  final: StatsSnapshot;
  /** The final resource table, as printed. */
  dump: string;
  /** Kinds not back to zero. */
  leaks: ResourceKind[];
  /** True when the drain timeout forced connections closed. */
  forced: boolean;
}

/** A running server, of any service. */
export interface RunningServer {
  /** Where it listens. */
  readonly addr: {
    hostname: string;
    port: number;
    /** The port of each protocol in `protocols`, by codec name. */
    protocols: Readonly<Record<string, number>>;
    /** The metrics port, when `ops.metricsPort` was given. */
    metricsPort?: number;
  };
  /** Thread layout. */
  readonly layout: Layout;
  /** True when connections must authenticate (a password, or an ACL file that closes the default user). */
  readonly authRequired: boolean;
  /** Sums every thread's counters now. */
  stats(): StatsSnapshot;
  /** The resource table now (what SIGUSR2 prints). */
  dump(): string;
  /** Drains and stops; resolves once every worker has exited. */
  shutdown(): Promise<ShutdownReport>;
  /** Persistence settings and what the shards loaded at start; null when off. */
  persistence(): PersistStatus | null;
  /** Test-only: counts one resource of `kind` that is never released. */
  leakForTest(kind: number): void;
  /**
   * Terminates a worker the way a crash or an out-of-memory kill would,
   * and resolves once its replacement runs. For fault-injection tests.
   */
  killWorker(kind: "io" | "task", index: number): Promise<void>;
}

const cores = () => Math.max(1, navigator.hardwareConcurrency || 1);

/**
 * Starts a server for the service at `options.service` and resolves once it
 * accepts connections. It knows no service and no protocol but wire v1:
 * the KV server (src/kvserver/serve.ts) names its service and RESP codec.
 *
 * @example
 * ```ts
 * import { startServer } from "@evkv/evkv";
 * const service = new URL("./my_service.ts", import.meta.url);
 * const server = await startServer({ service, port: 0, ioThreads: 2, workers: 2 });
 * console.log(`listening on ${server.addr.port}`);
 * await server.shutdown();
 * ```
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const mode = options.mode ?? "pool";
  const layout: Layout = {
    ioThreads: options.ioThreads ?? cores(),
    taskThreads: mode === "pool" ? options.workers ?? cores() : 0,
    mode,
  };
  if (layout.ioThreads < 1 || (mode === "pool" && layout.taskThreads < 1)) {
    throw new RangeError(
      "Start server: need at least one IO worker and, in pool mode, one task worker",
    );
  }
  const accept = options.accept ?? "reuseport";
  const hostname = options.host ?? "127.0.0.1";
  const authOptions = options.auth ?? {};
  const configured = authOptions.password !== undefined || authOptions.acl !== undefined;
  checkProtectedMode(hostname, configured, options.protectedMode ?? true);
  const auth = buildAuthConfig(authOptions);
  const tls = options.tls;
  if (tls?.clientAuth && (!tls.ca || accept === "main")) {
    throw new RangeError(
      "Start server: TLS client authentication needs a CA (--tls-ca) and --accept reuseport",
    );
  }
  const protocols = Object.entries(options.protocols ?? {});
  if (protocols.some(([codec]) => codec === "wire")) {
    throw new RangeError("Start server: the protocol name `wire` is wire v1's, which is built in");
  }
  const maxBody = options.maxBody ?? DEFAULT_MAX_BODY;
  const drainTimeoutMs = options.drainTimeoutMs ?? 5000;
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const serviceUrl = String(options.service);
  const statsMemory = createStatsMemory(threadCount(layout));
  const mainStats = new StatsBlock(statsMemory, threadIndex(layout, "main"));
  const ringBytes = ringBytesFor(maxBody, options.ringBytes ?? 1024 * 1024);
  const plan: SharedPlan = createPlan(layout, ringBytes, statsMemory);
  if (limits.maxRingBytesPerConnection <= 0) limits.maxRingBytesPerConnection = ringBytes / 4;
  const rings = planRings(plan);
  for (const r of rings) mainStats.alloc(Res.ring, r.byteLength);
  const control = new Int32Array(plan.control);
  // Before any shard exists: the data dir is checked and locked, and shards load from it.
  const persistence = await Persistence.start(
    options.persist ?? {},
    layout,
    shardCount(layout),
    plan.control,
    maxBody,
  );
  if (persistence) plan.persist = persistence.plan;
  /** A start that fails must not keep the data dir locked. */
  const abandon = (e: unknown): never => {
    void persistence?.close();
    throw e;
  };

  const taskUrl = new URL("../shard/task_worker.ts", import.meta.url);
  const ioUrl = new URL("../io/io_worker.ts", import.meta.url);
  const ops = createOpsMemory(layout.ioThreads, options.ops?.slowlog);
  // Before any worker: a metrics port that is taken fails the start cleanly.
  const opsRt = await startOps(options.ops, {
    stats: () => snapshot(statsMemory),
    ops,
    serviceUrl,
    startedAt: plan.startedAt,
    maxConnections: limits.maxConnections,
    persistence: () => persistence?.status() ?? null,
  });
  const log = opsRt.log;
  const serviceOptions = options.serviceOptions ?? {};
  /** Per shard: its task worker's generation, 2 more per replacement (see killWord). */
  const taskGenerations: number[] = Array.from({ length: layout.taskThreads }, () => 0);
  const taskInit = (shard: number): TaskWorkerInit => ({
    plan,
    shard,
    serviceUrl,
    maxBody,
    serviceOptions,
    generation: taskGenerations[shard],
  });
  const tasks: WorkerHandle[] = await Promise.all(
    Array.from(
      { length: layout.taskThreads },
      async (_, shard) =>
        (await WorkerHandle.start(taskUrl, `evkv-task-${shard}`, taskInit(shard))).handle,
    ),
  ).catch(abandon);
  const ios: WorkerHandle[] = [];
  const generations: number[] = [];
  // One listening port per codec: wire v1 always, the others when asked for.
  const endpoints: { codec: CodecName; port: number }[] = [
    { codec: "wire", port: options.port ?? 7379 },
    ...protocols.map(([codec, p]) => ({ codec, port: p.port })),
  ];
  const codecUrls = Object.fromEntries(protocols.map(([codec, p]) => [codec, p.codecUrl]));
  const listeners: { listener: Deno.Listener; codec: CodecName }[] = [];
  if (accept === "main") {
    /** Named like every other start error, so that the message alone says what failed. */
    const listen = (port: number, codec: CodecName): Deno.Listener => {
      try {
        return tls ? listenTls(hostname, port, tls, false) : Deno.listen({ hostname, port });
      } catch (cause) {
        const why = cause instanceof Error ? cause.message : String(cause);
        return abandon(new Error(`Listen on ${hostname}:${port} (${codec}): ${why}`, { cause }));
      }
    };
    for (const e of endpoints) {
      const listener = listen(e.port, e.codec);
      e.port = (listener.addr as Deno.NetAddr).port;
      listeners.push({ listener, codec: e.codec });
    }
  }
  const ioInit = (index: number): IoWorkerInit => ({
    plan,
    index,
    serviceUrl,
    maxBody,
    serviceOptions,
    limits,
    generation: generations[index],
    listen: accept === "reuseport"
      ? endpoints.map((e) => ({ hostname, port: e.port, codec: e.codec }))
      : [],
    codecUrls,
    auth: options.auth !== undefined ? auth : undefined,
    tls,
    ops,
  });
  for (let index = 0; index < layout.ioThreads; index++) {
    // The first IO worker binds first so that port 0 resolves to one port
    // that the others then join.
    generations.push(1);
    const { handle, ready } = await WorkerHandle.start(ioUrl, `evkv-io-${index}`, ioInit(index))
      .catch(abandon);
    if (accept === "reuseport") endpoints.forEach((e, i) => e.port = ready.ports![i]);
    ios.push(handle);
  }
  const port = endpoints[0].port;
  const protocolPorts = Object.fromEntries(endpoints.slice(1).map((e) => [e.codec, e.port]));
  const proxy = new SocketProxy(ios);
  ios.forEach((_, i) => proxy.attach(i));
  for (const l of listeners) proxy.accept(l.listener, l.codec);

  let stopping = false;
  /**
   * Replaces a dead worker. Live IO workers first settle what the dead
   * shard owed them (INTERNAL replies, emptied rings); then the dead
   * thread's counters are folded into the main thread's block, with what
   * died with it written off; then a fresh worker takes its place.
   */
  const restart = async (kind: "io" | "task", index: number, reason: string) => {
    if (stopping) return;
    watchdog.pause(kind, index);
    const cause = stallCauses.get(`${kind} ${index}`);
    stallCauses.delete(`${kind} ${index}`);
    const shardLost = kind === "task" || layout.mode === "inline";
    log.error(
      `${kind === "io" ? "IO" : "task"} worker ${index} died (${reason}); restarting it` +
        (shardLost
          ? persistence
            ? `; shard ${index} is reloaded from ${persistence.plan.dataDir}`
            : `; the data of shard ${index} is lost`
          : "") +
        (kind === "io" ? `; its connections were closed` : ""),
    );
    mainStats.count(kind === "io" ? Counter.io_worker_restarts : Counter.worker_restarts);
    if (shardLost) {
      await Promise.all(ios.map((h, i) => {
        if (kind === "io" && i === index) return null;
        const done = h.next("shard-reset", 5000);
        h.post({ type: "shard-died", shard: index, cause });
        return done;
      }));
    }
    // terminate() interrupts the thread, but not in the same instant: give
    // it a moment to stop writing its block before the block is folded.
    await new Promise((r) => setTimeout(r, 50));
    const dead = threadIndex(layout, kind, index);
    const orphanConnections = absorbDeadBlock(mainStats, new StatsBlock(statsMemory, dead));
    if (kind === "io") {
      Atomics.sub(control, Control.openConnections, orphanConnections);
      // Sockets the main thread kept for it outlive the worker: close them.
      proxy.closeAllOf(index);
    }
    if (stopping) return;
    // Every change the dead thread pushed reaches disk before its replacement loads.
    if (shardLost && persistence) await persistence.flush();
    if (kind === "task") {
      // Past anything the dead thread may still read (see killWord).
      taskGenerations[index] += 2;
      Atomics.store(
        control,
        killWord(threadIndex(layout, "task", index)),
        taskGenerations[index],
      );
      const { handle } = await WorkerHandle.start(taskUrl, `evkv-task-${index}`, taskInit(index));
      tasks[index] = handle;
      supervise(handle, "task", index);
    } else {
      generations[index]++;
      const { handle } = await WorkerHandle.start(ioUrl, `evkv-io-${index}`, ioInit(index));
      ios[index] = handle;
      proxy.attach(index);
      supervise(handle, "io", index);
    }
    watchdog.resume(kind, index);
  };
  /**
   * Stops a task worker's thread: asks through its kill word first (a
   * thread blocked in Atomics.wait sees only that), then terminates it.
   * `waitMs`: how long to wait for it to exit by itself.
   */
  const stopTask = async (index: number, waitMs: number) => {
    const h = tasks[index];
    const t = threadIndex(layout, "task", index);
    const exited = waitMs > 0 ? h.next("exited", waitMs) : null;
    Atomics.store(control, killWord(t), taskGenerations[index] + 1);
    wake(control, t);
    await exited;
  };
  /** Why a worker being replaced died, for the INTERNAL replies, when stuck. */
  const stallCauses = new Map<string, string>();
  const onStall = ({ kind, index, stalledMs }: Stall) => {
    if (stopping) return;
    mainStats.count(Counter.worker_stalls);
    console.error(
      `evkv: ${
        kind === "io" ? "IO" : "task"
      } worker ${index} made no progress for ${stalledMs} ms ` +
        `while it had work (a stuck handler?); replacing it`,
    );
    stallCauses.set(
      `${kind} ${index}`,
      `was stuck (no progress for ${stalledMs} ms) and was replaced`,
    );
    if (kind === "task") stopTask(index, 0);
    (kind === "io" ? ios : tasks)[index].kill(`stuck: no progress for ${stalledMs} ms`);
  };
  const watchdog = new Watchdog(plan, limits.stallTimeoutMs, onStall);
  if (watchdog.start()) mainStats.alloc(Res.sweeper, 0);
  const restarts = new Set<Promise<void>>();
  const supervise = (h: WorkerHandle, kind: "io" | "task", index: number) =>
    h.onDeath((reason) => {
      const p = restart(kind, index, reason).catch((e) =>
        log.error(`restart ${kind} worker ${index} failed: ${e}`)
      );
      restarts.add(p);
      p.finally(() => restarts.delete(p));
    });
  tasks.forEach((h, i) => supervise(h, "task", i));
  ios.forEach((h, i) => supervise(h, "io", i));

  const perIo = () =>
    ios.map((_, i) => ({
      index: i,
      snap: snapshot(statsMemory, threadIndex(layout, "io", i), threadIndex(layout, "io", i) + 1),
    }));
  const dump = () =>
    formatDump(snapshot(statsMemory), perIo(), {
      pid: Deno.pid,
      uptimeMs: Date.now() - plan.startedAt,
    });

  let shutdown: Promise<ShutdownReport> | null = null;
  const doShutdown = async (): Promise<ShutdownReport> => {
    opsRt.draining = true;
    for (const l of listeners) l.listener.close();
    // A restart under way finishes first, so no worker is left half started.
    await Promise.all(restarts);
    stopping = true;
    if (watchdog.stop()) mainStats.free(Res.sweeper, 0);
    const drained = await Promise.all(ios.map((h) => {
      const p = h.next("drained", drainTimeoutMs + 2000);
      h.post({ type: "drain", timeoutMs: drainTimeoutMs });
      return p;
    }));
    const forced = drained.some((d) => d === null || d.forced === true);
    // Every IO worker is idle now; let shards finish what is in their rings.
    Atomics.store(control, Control.stop, 1);
    await Promise.all(tasks.map((h, shard) => {
      const p = h.next("stopped", 2000);
      wake(control, threadIndex(layout, "task", shard));
      return p;
    }));
    await Promise.all(ios.map((h) => {
      const p = h.next("stopped", 2000);
      h.post({ type: "stop" });
      return p;
    }));
    for (const h of [...tasks, ...ios]) h.stop();
    await persistence?.close();
    proxy.closeAll();
    for (const r of rings) mainStats.free(Res.ring, r.byteLength);
    await opsRt.close();
    const final = snapshot(statsMemory);
    return { final, dump: dump(), leaks: leakedKinds(final), forced };
  };

  return {
    addr: { hostname, port, protocols: protocolPorts, metricsPort: opsRt.metricsPort },
    layout,
    authRequired: auth.required,
    stats: () => snapshot(statsMemory),
    dump,
    shutdown: () => (shutdown ??= doShutdown()),
    persistence: () => persistence?.status() ?? null,
    leakForTest: (kind) => mainStats.alloc(kind, 1),
    killWorker: async (kind, index) => {
      const h = kind === "io" ? ios[index] : tasks[index];
      if (!h) throw new RangeError(`Kill worker: there is no ${kind} worker ${index}`);
      // See killWord(): ask first, so the thread is surely gone before its
      // rings are reset; terminate() stays the fallback for a stuck one.
      if (kind === "task") await stopTask(index, 1000);
      h.kill("killed on request");
      await Promise.all(restarts);
    },
  };
}

/** Counters a service sets to its state's level (see `Service.gauges`), not event counts. */
const LEVEL_GAUGES = [
  "keys",
  "keys_with_ttl",
  "used_memory",
  "maxmemory",
  "store_pages_bytes",
] as const;

/**
 * Folds a dead thread's block into `into` and zeroes it. Everything it
 * held died with it and is counted free, except ring slots: records it
 * pushed are still popped (and counted free) by live threads. Returns the
 * connections it still held.
 */
function absorbDeadBlock(into: StatsBlock, dead: StatsBlock): number {
  const from = dead.slots;
  const to = into.slots;
  const connections = from[Res.connection * 3] - from[Res.connection * 3 + 1];
  // A dead shard's level gauges (its keys, its memory) died with its state;
  // folding them in would count them forever beside its replacement's.
  const counters = from.length - COUNTER_NAMES.length;
  for (const g of LEVEL_GAUGES) from[counters + Counter[g]] = 0;
  for (let i = 0; i < from.length; i++) to[i] += from[i];
  RESOURCE_KINDS.forEach((kind, k) => {
    if (kind === "ring_slot") return;
    const held = from[k * 3] - from[k * 3 + 1];
    to[k * 3 + 1] += held;
    to[k * 3 + 2] -= from[k * 3 + 2];
  });
  dead.reset();
  return connections;
}
