/**
 * Who runs where, and the shared memory that connects them. The main
 * thread builds a {@link SharedPlan} once; every worker opens the same plan.
 *
 * Shards: the service's state is split in `shards` parts, each owned by one
 * executor. In pool mode shard `s` lives in task worker `s`; in inline mode
 * it lives in IO worker `s`, so requests for an IO worker's own shard run
 * with no hand-off at all. Every (IO worker, shard) pair not in the same
 * thread gets one request ring and one reply ring.
 *
 * @module
 */
import { createRingMemory, Ring, ringCapacityFor } from "./channel/ring.ts";
import { REQUEST_HEADER } from "./channel/requests.ts";
import { FRAME_OVERHEAD } from "../protocol/constants.ts";
import { createClientMemory } from "./io/client_memory.ts";
import type { PersistPlan } from "../persist/plan.ts";

/** How requests reach handlers. */
export type Mode = "pool" | "inline";

/** The shape of the server's threads. */
export interface Layout {
  /** Number of IO workers. */
  ioThreads: number;
  /** Number of task workers (0 in inline mode). */
  taskThreads: number;
  /** Where handlers run. */
  mode: Mode;
}

/** Shared memory handed to every worker at start. */
export interface SharedPlan {
  /** Thread layout. */
  layout: Layout;
  /** Wake words and flags ({@link Control}). */
  control: SharedArrayBuffer;
  /** Per-thread stats blocks; block = {@link threadIndex}. */
  stats: SharedArrayBuffer;
  /** requestRings[io][shard]: IO worker to shard; null when same thread. */
  requestRings: (SharedArrayBuffer | null)[][];
  /** replyRings[shard][io]: shard to IO worker; null when same thread. */
  replyRings: (SharedArrayBuffer | null)[][];
  /** Date.now() when the server started, for uptime. */
  startedAt: number;
  /** What each IO worker's client buffers hold (see {@link ClientMemoryGuard}). */
  clientMemory: SharedArrayBuffer;
  /** Progress words, one cache line per thread ({@link progressWord}). */
  progress: SharedArrayBuffer;
  /** Change rings to the persistence worker; absent with `--persist off`. */
  persist?: PersistPlan;
}

/** Index words in the control memory, each on its own cache line. */
export const Control = {
  /** Non-zero: task workers finish their rings and exit. */
  stop: 0,
  /** Connections open across all IO workers, for maxConnections. */
  openConnections: 8,
  /** Wake word of thread t is at wakeBase + 16 * t. */
  wakeBase: 16,
} as const;

/** Number of shards for a layout. */
export function shardCount(l: Layout): number {
  return l.mode === "inline" ? l.ioThreads : l.taskThreads;
}

/** Number of threads with a stats block: main, IO workers, task workers. */
export function threadCount(l: Layout): number {
  return 1 + l.ioThreads + l.taskThreads;
}

/** Stats block and wake word index of the main thread, an IO worker or a task worker. */
export function threadIndex(l: Layout, kind: "main" | "io" | "task", i = 0): number {
  return kind === "main" ? 0 : kind === "io" ? 1 + i : 1 + l.ioThreads + i;
}

/** The thread index that runs shard `s`. */
export function shardThread(l: Layout, s: number): number {
  return l.mode === "inline" ? threadIndex(l, "io", s) : threadIndex(l, "task", s);
}

/** The int32 index of thread `t`'s wake word. */
export function wakeWord(t: number): number {
  return Control.wakeBase + 16 * t;
}

/**
 * The int32 index of thread `t`'s kill word. Deno's `Worker.terminate()`
 * does not stop a thread that blocks in `Atomics.wait` and never yields to
 * its event loop (measured: such a worker kept running), so a task worker
 * checks this word after every wake and exits by itself once it holds more
 * than its generation (which the main thread raises by 2 per replacement).
 * Generation + 1 asks it to stop after the request it is running;
 * generation + 2 means a replacement serves its shard, so a stuck handler
 * that returns late must not reply into rings its replacement now uses.
 */
export function killWord(t: number): number {
  return Control.wakeBase + 16 * t + 1;
}

/**
 * The int32 index of thread `t`'s progress word in {@link SharedPlan.progress},
 * bumped as it gets work done (see `watchdog.ts`). Plain adds: only thread
 * `t` writes it. One cache line per thread, away from the wake words that
 * other threads write, because a task worker bumps it for every request.
 */
export function progressWord(t: number): number {
  return 16 * t;
}

/** Bytes each ring needs so that an empty ring takes the largest request. */
export function ringBytesFor(maxBody: number, minBytes: number): number {
  return ringCapacityFor(Math.max(minBytes, 2 * (maxBody + FRAME_OVERHEAD + REQUEST_HEADER + 64)));
}

/** Builds the shared memory for `layout`; the main thread calls it once. */
export function createPlan(
  layout: Layout,
  ringBytes: number,
  stats: SharedArrayBuffer,
): SharedPlan {
  const shards = shardCount(layout);
  const sameThread = (io: number, s: number) => layout.mode === "inline" && io === s;
  const requestRings = Array.from(
    { length: layout.ioThreads },
    (_, io) =>
      Array.from(
        { length: shards },
        (_, s) => sameThread(io, s) ? null : createRingMemory(ringBytes),
      ),
  );
  const replyRings = Array.from(
    { length: shards },
    (_, s) =>
      Array.from(
        { length: layout.ioThreads },
        (_, io) => sameThread(io, s) ? null : createRingMemory(ringBytes),
      ),
  );
  const control = new SharedArrayBuffer((Control.wakeBase + 16 * (threadCount(layout) + 1)) * 4);
  const clientMemory = createClientMemory(layout.ioThreads);
  return {
    layout,
    control,
    stats,
    requestRings,
    replyRings,
    startedAt: Date.now(),
    clientMemory,
    progress: new SharedArrayBuffer(threadCount(layout) * 64),
  };
}

/** All ring memories of a plan, for accounting. */
export function planRings(plan: SharedPlan): SharedArrayBuffer[] {
  return [...plan.requestRings.flat(), ...plan.replyRings.flat()].filter((r) =>
    r !== null
  ) as SharedArrayBuffer[];
}

/** Opens a ring memory, or null. */
export function openRing(memory: SharedArrayBuffer | null): Ring | null {
  return memory ? new Ring(memory) : null;
}

/**
 * Wakes thread `t`: bumps its wake word and notifies a waiter. Producers
 * call it once per batch, not per record.
 */
export function wake(control: Int32Array, t: number): void {
  const at = wakeWord(t);
  Atomics.add(control, at, 1);
  Atomics.notify(control, at, 1);
}
