/**
 * The main thread's side of a server: builds the shared memory, starts and
 * supervises the workers, accepts connections when asked to (`accept:
 * "main"`), and runs the drain on shutdown. It never touches requests.
 *
 * @module
 */
import { DEFAULT_MAX_BODY } from "../protocol/constants.ts";
import { formatDump } from "../stats/report.ts";
import {
  createStatsMemory,
  leakedKinds,
  Res,
  type ResourceKind,
  snapshot,
  StatsBlock,
  type StatsSnapshot,
} from "../stats/resources.ts";
import type { IoWorkerInit } from "./io_worker.ts";
import { DEFAULT_LIMITS, type Limits } from "./limits.ts";
import type { TaskWorkerInit } from "./task_worker.ts";
import {
  Control,
  createPlan,
  type Layout,
  type Mode,
  planRings,
  ringBytesFor,
  type SharedPlan,
  threadCount,
  threadIndex,
  wake,
} from "./topology.ts";

/** How connections reach IO workers. */
export type AcceptMode = "reuseport" | "main";

/** Options of {@link serve}; every field has a default. */
export interface ServeOptions {
  /** URL of the service module (its default export is the service). Default: the KV service. */
  service?: string | URL;
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
  /** Backpressure, fairness and timeout limits; see {@link DEFAULT_LIMITS}. */
  limits?: Partial<Limits>;
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

/** A running server. */
export interface Server {
  /** Where it listens. */
  readonly addr: { hostname: string; port: number };
  /** Thread layout. */
  readonly layout: Layout;
  /** Sums every thread's counters now. */
  stats(): StatsSnapshot;
  /** The resource table now (what SIGUSR2 prints). */
  dump(): string;
  /** Drains and stops; resolves once every worker has exited. */
  shutdown(): Promise<ShutdownReport>;
  /** Test-only: counts one resource of `kind` that is never released. */
  leakForTest(kind: number): void;
}

interface Reply {
  type: string;
  port?: number;
  forced?: boolean;
}

const cores = () => Math.max(1, navigator.hardwareConcurrency || 1);

/** Starts a worker and resolves with it once it posts `ready`. */
function startWorker(
  url: URL,
  name: string,
  init: IoWorkerInit | TaskWorkerInit,
): Promise<{ worker: Worker; ready: Reply }> {
  const worker = new Worker(url, { type: "module", name });
  return new Promise((resolve, reject) => {
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`Start ${name}: ${e.message}`));
    };
    worker.onmessage = (e: MessageEvent<Reply>) => {
      if (e.data.type === "ready") resolve({ worker, ready: e.data });
    };
    worker.postMessage(init);
  });
}

function nextMessage(worker: Worker, type: string, timeoutMs: number): Promise<Reply | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), timeoutMs);
    worker.onmessage = (e: MessageEvent<Reply>) => {
      if (e.data.type === type) {
        clearTimeout(timer);
        resolve(e.data);
      }
    };
  });
}

/**
 * Starts a server and resolves once it accepts connections.
 *
 * @example
 * ```ts
 * import { serve } from "@evkv/evkv";
 * const server = await serve({ port: 0, ioThreads: 2, workers: 2 });
 * console.log(`listening on ${server.addr.port}`);
 * await server.shutdown();
 * ```
 */
export async function serve(options: ServeOptions = {}): Promise<Server> {
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
  const maxBody = options.maxBody ?? DEFAULT_MAX_BODY;
  const drainTimeoutMs = options.drainTimeoutMs ?? 5000;
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const serviceUrl = String(options.service ?? new URL("../kv/service.ts", import.meta.url));
  const statsMemory = createStatsMemory(threadCount(layout));
  const mainStats = new StatsBlock(statsMemory, threadIndex(layout, "main"));
  const plan: SharedPlan = createPlan(
    layout,
    ringBytesFor(maxBody, options.ringBytes ?? 1024 * 1024),
    statsMemory,
  );
  const rings = planRings(plan);
  for (const r of rings) mainStats.alloc(Res.ring, r.byteLength);
  const control = new Int32Array(plan.control);

  const taskUrl = new URL("./task_worker.ts", import.meta.url);
  const ioUrl = new URL("./io_worker.ts", import.meta.url);
  const tasks = await Promise.all(
    Array.from(
      { length: layout.taskThreads },
      (_, shard) =>
        startWorker(taskUrl, `evkv-task-${shard}`, { plan, shard, serviceUrl, maxBody }),
    ),
  );
  const ios: Worker[] = [];
  let port = options.port ?? 7379;
  let listener: Deno.Listener | null = null;
  if (accept === "main") {
    listener = Deno.listen({ hostname, port });
    port = (listener.addr as Deno.NetAddr).port;
  }
  for (let index = 0; index < layout.ioThreads; index++) {
    // The first IO worker binds first so that port 0 resolves to one port
    // that the others then join.
    const init: IoWorkerInit = {
      plan,
      index,
      serviceUrl,
      maxBody,
      limits,
      listen: accept === "reuseport" ? { hostname, port } : undefined,
    };
    const { worker, ready } = await startWorker(ioUrl, `evkv-io-${index}`, init);
    if (accept === "reuseport") port = ready.port!;
    ios.push(worker);
  }
  if (listener) acceptLoop(listener, ios);

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
    listener?.close();
    const drained = await Promise.all(ios.map((w) => {
      const p = nextMessage(w, "drained", drainTimeoutMs + 2000);
      w.postMessage({ type: "drain", timeoutMs: drainTimeoutMs });
      return p;
    }));
    const forced = drained.some((d) => d === null || d.forced === true);
    // Every IO worker is idle now; let shards finish what is in their rings.
    Atomics.store(control, Control.stop, 1);
    await Promise.all(tasks.map(({ worker }, shard) => {
      const p = nextMessage(worker, "stopped", 2000);
      wake(control, threadIndex(layout, "task", shard));
      return p;
    }));
    await Promise.all(ios.map((w) => {
      const p = nextMessage(w, "stopped", 2000);
      w.postMessage({ type: "stop" });
      return p;
    }));
    for (const { worker } of tasks) worker.terminate();
    for (const w of ios) w.terminate();
    for (const r of rings) mainStats.free(Res.ring, r.byteLength);
    const final = snapshot(statsMemory);
    return { final, dump: dump(), leaks: leakedKinds(final), forced };
  };

  return {
    addr: { hostname, port },
    layout,
    stats: () => snapshot(statsMemory),
    dump,
    shutdown: () => (shutdown ??= doShutdown()),
    leakForTest: (kind) => mainStats.alloc(kind, 1),
  };
}

/** `accept: "main"`: hands each connection's streams to IO workers in turn. */
async function acceptLoop(listener: Deno.Listener, ios: Worker[]): Promise<void> {
  let next = 0;
  try {
    for await (const conn of listener) {
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch {
        // Not fatal: only latency suffers.
      }
      const addr = conn.remoteAddr as Deno.NetAddr;
      const { readable, writable } = conn;
      ios[next].postMessage(
        { type: "conn", readable, writable, remote: `${addr.hostname}:${addr.port}` },
        { transfer: [readable, writable] },
      );
      next = (next + 1) % ios.length;
    }
  } catch {
    // Closed for shutdown.
  }
}
