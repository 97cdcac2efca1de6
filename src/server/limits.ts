/**
 * The server's protective limits, their defaults, and why each default is
 * what it is. Every limit harms only the connection that hits it.
 *
 * @module
 */
import { DEFAULT_MAX_BODY, FRAME_OVERHEAD, REPLY_SLACK } from "../protocol/constants.ts";

// Receive buffer sizing lives with the one receive loop; its public export stays here.
export { receiveBytesFor } from "../protocol/frame_reader.ts";

/** Limits an IO worker enforces. */
export interface Limits {
  /**
   * Reply bytes a connection may have queued and unwritten before the
   * server stops reading from it (like brpc's per-socket unwritten-bytes
   * cap). Reading resumes once the socket drains below it.
   */
  maxOutputBytes: number;
  /** Requests a connection may have in flight before the server stops parsing its frames. */
  maxInflightPerConnection: number;
  /**
   * Request bytes a connection may have waiting in task rings before the
   * server stops parsing its frames: one client pipelining big values
   * pauses itself instead of filling a ring that others share (which would
   * answer them OVERLOADED). 0 = a quarter of a ring.
   */
  maxRingBytesPerConnection: number;
  /** Requests an IO worker may have in flight before it stops parsing frames on every connection. */
  maxInflightPerWorker: number;
  /**
   * Frames an IO worker handles from one connection before it serves the
   * others (memcached's `-R`): a connection that pipelines thousands of
   * requests cannot starve its neighbours.
   */
  framesPerTurn: number;
  /**
   * Close a connection that sent nothing, and whose replies made no
   * progress, for this long (0 = never). Covers silent, half-open and
   * never-reading peers.
   */
  idleTimeoutMs: number;
  /** Connections the whole server accepts at once; the excess is refused at accept. */
  maxConnections: number;
  /**
   * Bytes all connections' receive and output buffers may hold together
   * (Redis's `maxmemory-clients`); past it the connection holding the most
   * is closed. 0 = no limit.
   */
  maxClientMemory: number;
  /**
   * A worker whose progress word has not moved for this long while it had
   * work is stuck: it is replaced and what it owed gets INTERNAL. 0 = never.
   */
  stallTimeoutMs: number;
}

/**
 * Defaults, chosen for this reason:
 * - `maxOutputBytes` 8 MiB: two replies of the largest body (4 MiB) fit,
 *   so a client that reads slowly is never cut off for one big Get, while
 *   a client that never reads costs at most this plus its in-flight
 *   replies.
 * - `maxInflightPerConnection` 1024: far above any useful pipeline depth
 *   (the bench uses 16), low enough that one connection's burst cannot
 *   fill a task ring by itself.
 * - `maxRingBytesPerConnection` a quarter of a ring (4 MiB with the
 *   default 16 MiB rings): at least one largest frame always fits, and
 *   four heavy connections cannot fill a ring that others share.
 * - `maxInflightPerWorker` 65536: bounds the replies one IO worker can owe
 *   (and the memory they may need) across all its connections.
 * - `framesPerTurn` 64: memcached uses 20 requests per event; 64 keeps the
 *   per-turn batch large enough that batching pays, while a turn stays in
 *   the tens of microseconds.
 * - `idleTimeoutMs` 300 000 (5 min): long enough for pooled clients that
 *   sit idle between bursts, short enough that dead peers (half-open after
 *   a crash or a cable pull, which TCP alone may keep for hours) release
 *   their memory the same hour.
 * - `maxConnections` 10 000: Redis's default `maxclients`; raise it with
 *   the process's file-descriptor limit.
 * - `maxClientMemory` 0 (off), as Redis's `maxmemory-clients`: the per
 *   connection bounds times `maxConnections` is the worst case otherwise.
 * - `stallTimeoutMs` 3000: a handler that keeps its thread from finishing
 *   anything for 3 s is far outside any request's budget, while garbage
 *   collection pauses and scheduling on a shared machine stay well below.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS } from "@evkv/evkv";
 * console.log(DEFAULT_LIMITS.maxOutputBytes); // 8388608
 * ```
 */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxOutputBytes: 2 * DEFAULT_MAX_BODY,
  maxInflightPerConnection: 1024,
  maxRingBytesPerConnection: 0,
  maxInflightPerWorker: 65536,
  framesPerTurn: 64,
  idleTimeoutMs: 300_000,
  maxConnections: 10_000,
  maxClientMemory: 0,
  stallTimeoutMs: 3000,
});

/**
 * Replies up to this size are always queued, even past `maxOutputBytes`:
 * the OVERLOADED error that would replace them is no smaller, and they
 * answer writes (Put, Delete) whose effect the client must learn of.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS, SMALL_REPLY_BYTES } from "@evkv/evkv";
 * // What errors past the cap can add at most, per connection:
 * console.log(DEFAULT_LIMITS.maxInflightPerConnection * SMALL_REPLY_BYTES); // 262144
 * ```
 */
export const SMALL_REPLY_BYTES = 256;

/**
 * The most reply bytes one connection can have queued and being written,
 * whatever its client sends: `max(maxOutput, largest reply) + maxInflight *
 * SMALL_REPLY_BYTES`. Parsing pauses once queued bytes plus an estimate of
 * the replies still owed reach `maxOutputBytes`; a reply that arrives when
 * the estimate was short and would take a non-empty queue past
 * `maxOutputBytes` is replaced by a small OVERLOADED error (brpc's
 * EOVERCROWDED), so the bound holds even for replies whose size nobody
 * could know in advance.
 *
 * @example
 * ```ts
 * import { DEFAULT_LIMITS, outputBound } from "@evkv/evkv";
 * outputBound(DEFAULT_LIMITS, 4 << 20); // 8650752: 8 MiB + 1024 * 256 B
 * ```
 */
export function outputBound(limits: Readonly<Limits>, maxBody: number): number {
  const largestReply = maxBody + REPLY_SLACK + FRAME_OVERHEAD;
  return Math.max(limits.maxOutputBytes, largestReply) +
    limits.maxInflightPerConnection * SMALL_REPLY_BYTES;
}
