/**
 * Resource accounting and server counters, kept in shared memory.
 *
 * Two `as const` lists (like memcached's X-macros) drive everything: the
 * layout of each worker's block, aggregation, the SIGUSR2 dump and the
 * `Stats` reply. Each thread owns one block and writes it with plain adds
 * (no other thread writes there, so no atomics are needed on the hot path);
 * any thread may sum all blocks at any moment without stopping anyone. A
 * read can race a write and see a value one update old, never a torn one.
 *
 * @module
 */
import { STATUS_NAMES } from "../protocol/constants.ts";

/**
 * Every kind of resource the server creates and releases. A kind's held
 * count and bytes must return to zero once its owners are gone.
 */
export const RESOURCE_KINDS = [
  /** An accepted TCP connection, from accept to close. */
  "connection",
  /** A connection's receive buffer; bytes = its capacity. */
  "receive_buffer",
  /** A parsed request frame, from parse until its reply is queued or dropped. */
  "request",
  /** A request frame's bytes, while the IO worker still needs them. */
  "in_packet",
  /** An encoded reply frame, from encode until it is queued for output. */
  "out_packet",
  /** Reply bytes queued on a connection, until the socket takes them. */
  "output_buffer",
  /** A shared-memory ring between two threads; lives until shutdown. */
  "ring",
  /** A record in a ring, from push to pop; bytes = record size. */
  "ring_slot",
  /** A request inside a handler's thread, from pop until its reply is pushed. */
  "task",
  /** A fan-out request (Scan) waiting for every shard's part. */
  "fanout",
  /** An armed one-shot timer (the drain timeout). */
  "timer",
  /** An IO worker's idle-connection sweep interval; lives until shutdown. */
  "sweeper",
] as const;

/** One resource kind's name. */
export type ResourceKind = typeof RESOURCE_KINDS[number];

/**
 * Server-wide event counters (monotonic). `errors.<STATUS>` has one entry
 * per status of the wire spec, taken from the same status list.
 */
export const COUNTER_NAMES = [
  "connections_accepted",
  "connections_rejected",
  "connections_closed",
  "connections_timed_out",
  "requests",
  "replies",
  "oneway_requests",
  "bytes_in",
  "bytes_out",
  "socket_reads",
  "socket_writes",
  "worker_restarts",
  "io_worker_restarts",
  "reads_paused",
  "turns_yielded",
  "bad_preambles",
  // Gauges a service sets (Service.gauges), summed over shards: the KV store's.
  "keys",
  "keys_with_ttl",
  "used_memory",
  "maxmemory",
  "store_pages_bytes",
  "evicted_keys",
  "expired_keys",
  "output_overflows",
  "connections_evicted",
  "worker_stalls",
  "auth_failures",
  // One per non-OK status of STATUS_NAMES, in code order (checked below).
  "errors.BAD_REQUEST",
  "errors.CRC_MISMATCH",
  "errors.UNKNOWN_METHOD",
  "errors.TOO_LARGE",
  "errors.OVERLOADED",
  "errors.DEADLINE_EXCEEDED",
  "errors.INTERNAL",
  "errors.SHUTTING_DOWN",
  "errors.NO_MEMORY",
  "errors.UNAUTHENTICATED",
  "errors.PERMISSION_DENIED",
] as const;

{
  // Written out for JSR's explicit types; must follow the status list.
  const want = STATUS_NAMES.slice(1).map((s) => `errors.${s}`).join();
  const at = COUNTER_NAMES.indexOf("errors.BAD_REQUEST");
  if (COUNTER_NAMES.slice(at).join() !== want) {
    throw new Error("Load stats: errors.* counters do not match STATUS_NAMES");
  }
}

/** One counter's name. */
export type CounterName = typeof COUNTER_NAMES[number];

/** Index of each resource kind in a block, by name. */
export const Res: { readonly [K in ResourceKind]: number } = indexOf(RESOURCE_KINDS);
/** Index of each counter in a block, by name. */
export const Counter: { readonly [K in CounterName]: number } = indexOf(COUNTER_NAMES);

function indexOf<T extends string>(names: readonly T[]): { readonly [K in T]: number } {
  return Object.freeze(Object.fromEntries(names.map((n, i) => [n, i]))) as { [K in T]: number };
}

const FIELDS_PER_KIND = 3; // alloc, free, held bytes
const COUNTERS_AT = RESOURCE_KINDS.length * FIELDS_PER_KIND;
/** Float64 slots in one thread's block. */
export const BLOCK_SLOTS: number = COUNTERS_AT + COUNTER_NAMES.length;

/**
 * The shared memory that holds every thread's block, created once by the
 * main thread and passed to each worker.
 *
 * @example
 * ```ts
 * import { createStatsMemory, StatsBlock, Res } from "@evkv/evkv";
 * const mem = createStatsMemory(3);
 * const block = new StatsBlock(mem, 1);
 * block.alloc(Res.request, 64);
 * ```
 */
export function createStatsMemory(threads: number): SharedArrayBuffer {
  return new SharedArrayBuffer(threads * BLOCK_SLOTS * 8);
}

/**
 * One thread's counters. Only the owning thread writes through it.
 *
 * @example
 * ```ts
 * import { createStatsMemory, StatsBlock, Res, Counter } from "@evkv/evkv";
 * const block = new StatsBlock(createStatsMemory(1), 0);
 * {
 *   using _conn = block.hold(Res.connection, 0);
 *   block.count(Counter.requests);
 * } // released here
 * ```
 */
export class StatsBlock {
  /** This thread's slots: [alloc, free, held] per kind, then the counters. */
  readonly slots: Float64Array;

  /** Binds block `index` of `memory`. */
  constructor(memory: SharedArrayBuffer, index: number) {
    this.slots = new Float64Array(memory, index * BLOCK_SLOTS * 8, BLOCK_SLOTS);
  }

  /** Counts one acquisition of `kind` holding `bytes`. */
  alloc(kind: number, bytes: number): void {
    const s = this.slots;
    const at = kind * FIELDS_PER_KIND;
    s[at]++;
    s[at + 2] += bytes;
  }

  /** Counts one release of `kind` that held `bytes`. */
  free(kind: number, bytes: number): void {
    const s = this.slots;
    const at = kind * FIELDS_PER_KIND;
    s[at + 1]++;
    s[at + 2] -= bytes;
  }

  /** Counts `n` releases of `kind` that held `bytes` in all. */
  freeMany(kind: number, n: number, bytes: number): void {
    const s = this.slots;
    const at = kind * FIELDS_PER_KIND;
    s[at + 1] += n;
    s[at + 2] -= bytes;
  }

  /** Acquires `kind` and returns a handle that releases it when disposed. */
  hold(kind: number, bytes: number): Disposable {
    this.alloc(kind, bytes);
    let released = false;
    return {
      [Symbol.dispose]: () => {
        if (released) return;
        released = true;
        this.free(kind, bytes);
      },
    };
  }

  /** Adds `n` to a counter. */
  count(counter: number, n = 1): void {
    this.slots[COUNTERS_AT + counter] += n;
  }

  /** Zeroes this block (a restarted worker starts from a clean block). */
  reset(): void {
    this.slots.fill(0);
  }
}

/** Totals of one resource kind. */
export interface ResourceTotals {
  /** How many were acquired. */
  alloc: number;
  /** How many were released. */
  free: number;
  /** Bytes acquired and not yet released. */
  heldBytes: number;
}

/** A sum over some blocks at one moment. */
export interface StatsSnapshot {
  /** Per resource kind, in {@link RESOURCE_KINDS} order. */
  resources: Record<ResourceKind, ResourceTotals>;
  /** Per counter. */
  counters: Record<CounterName, number>;
}

/**
 * Sums blocks `from` to `to - 1` of `memory` (all of them by default).
 * Safe at any moment from any thread: it only reads.
 *
 * @example
 * ```ts
 * import { createStatsMemory, snapshot } from "@evkv/evkv";
 * const snap = snapshot(createStatsMemory(2));
 * snap.resources.connection.alloc; // 0
 * ```
 */
export function snapshot(memory: SharedArrayBuffer, from = 0, to?: number): StatsSnapshot {
  const all = new Float64Array(memory);
  const end = to ?? all.length / BLOCK_SLOTS;
  const sum = new Float64Array(BLOCK_SLOTS);
  for (let b = from; b < end; b++) {
    const base = b * BLOCK_SLOTS;
    for (let i = 0; i < BLOCK_SLOTS; i++) sum[i] += all[base + i];
  }
  const resources = {} as Record<ResourceKind, ResourceTotals>;
  RESOURCE_KINDS.forEach((kind, k) => {
    const at = k * FIELDS_PER_KIND;
    resources[kind] = { alloc: sum[at], free: sum[at + 1], heldBytes: sum[at + 2] };
  });
  const counters = {} as Record<CounterName, number>;
  COUNTER_NAMES.forEach((name, c) => counters[name] = sum[COUNTERS_AT + c]);
  return { resources, counters };
}

/**
 * What a request and its connection hold while the request's handler runs.
 * Leaving it out of a snapshot shows the server as others see it: a Stats
 * call on an idle server then reads zero held.
 */
export interface CallerFootprint {
  /** The connection's receive buffer size. */
  receiveBytes: number;
  /** Frame bytes still held as `in_packet` (inline), or -1 when not held. */
  inPacketBytes: number;
  /** Body bytes held as `task` (a task worker), or -1 when not held. */
  taskBytes: number;
  /** Its ring record, counted until the shard releases it, or -1 when none. */
  ringSlotBytes: number;
}

/**
 * `snap` without one request's own footprint: its connection, receive
 * buffer, request and, where held, its in-packet or task.
 *
 * @example
 * ```ts
 * import { createStatsMemory, snapshot, withoutCaller } from "@evkv/evkv";
 * const s = withoutCaller(snapshot(createStatsMemory(1)), {
 *   receiveBytes: 0,
 *   inPacketBytes: -1,
 *   taskBytes: -1,
 *   ringSlotBytes: -1,
 * });
 * ```
 */
export function withoutCaller(snap: StatsSnapshot, caller: CallerFootprint): StatsSnapshot {
  const resources = { ...snap.resources };
  const drop = (kind: ResourceKind, bytes: number) => {
    const r = resources[kind];
    resources[kind] = { alloc: r.alloc - 1, free: r.free, heldBytes: r.heldBytes - bytes };
  };
  drop("connection", 0);
  drop("receive_buffer", caller.receiveBytes);
  drop("request", 0);
  if (caller.inPacketBytes >= 0) drop("in_packet", caller.inPacketBytes);
  if (caller.taskBytes >= 0) drop("task", caller.taskBytes);
  if (caller.ringSlotBytes >= 0) drop("ring_slot", caller.ringSlotBytes);
  return { resources, counters: snap.counters };
}

/**
 * Kinds that belong to a connection or a request: once every client has
 * gone and its requests are done, each must be back to zero held.
 */
export const TRANSIENT_KINDS: readonly ResourceKind[] = RESOURCE_KINDS.filter((k) =>
  k !== "ring" && k !== "sweeper"
);

/**
 * The kinds in `snap` whose count or bytes are not back to zero.
 *
 * @example
 * ```ts
 * import { createStatsMemory, leakedKinds, snapshot } from "@evkv/evkv";
 * leakedKinds(snapshot(createStatsMemory(1))); // []
 * ```
 */
export function leakedKinds(
  snap: StatsSnapshot,
  kinds: readonly ResourceKind[] = RESOURCE_KINDS,
): ResourceKind[] {
  return kinds.filter((k) => {
    const r = snap.resources[k];
    return r.alloc !== r.free || r.heldBytes !== 0;
  });
}
