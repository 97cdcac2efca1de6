/**
 * The server's protective limits, their defaults, and why each default is
 * what it is. Every limit harms only the connection that hits it.
 *
 * @module
 */
import { DEFAULT_MAX_BODY } from "../protocol/constants.ts";

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
});
