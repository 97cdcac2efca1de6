/**
 * The shared memory between the threads that own shards (producers) and
 * the persistence worker (the consumer that writes SQLite): one ring of
 * changes per shard, plus a few words per shard that say how far the
 * changes got. Built once by the main thread; every thread opens the same
 * plan.
 *
 * @module
 */
import { createRingMemory, ringCapacityFor } from "../server/channel/ring.ts";

/**
 * How much a crash may cost: `off` keeps data in memory only; `everysec`
 * writes changes behind, in batches about a second apart; `always` holds a
 * write's reply until the batch that holds it has committed.
 *
 * @example
 * ```ts
 * import type { PersistMode } from "@evkv/evkv";
 * const mode: PersistMode = "everysec";
 * ```
 */
export type PersistMode = "off" | "everysec" | "always";

/** Every persistence mode, in the order the usage text lists them. */
export const PERSIST_MODES: readonly PersistMode[] = ["off", "everysec", "always"];

/** Shared memory and settings handed to every thread that touches persistence. */
export interface PersistPlan {
  /** `everysec` or `always` (no plan exists for `off`). */
  mode: "everysec" | "always";
  /** The data directory, as given. */
  dataDir: string;
  /** Number of shards, one database file each. */
  shards: number;
  /** `rings[s]`: changes of shard `s`, its owner to the persistence worker. */
  rings: SharedArrayBuffer[];
  /** Words of {@link Word}, {@link SHARD_WORDS} per shard after the first line. */
  words: SharedArrayBuffer;
  /** Test-only: a cap on each database's pages, to make SQLite report a full disk. */
  maxPages: number;
}

/** Int32 words per shard in {@link PersistPlan.words}, one cache line. */
export const SHARD_WORDS = 16;

/**
 * The per-shard words, at `shardBase(s) + Word.x`. Counts are free-running
 * int32 sequence numbers of records, compared by wrapping subtraction.
 */
export const Word = {
  /** Records the shard's owner has published in its ring. */
  pushed: 0,
  /** Records the worker is done with: committed, or failed to commit. */
  settled: 1,
  /** Records committed to the shard's database. */
  committed: 2,
  /** 1 while the last commit failed (full disk, say); writes are then refused. */
  failing: 3,
  /** Bumped by a shard that asks for its pending changes to be committed now (SAVE). */
  saveAsked: 4,
  /** Bumped and notified by the worker after every commit or ring release. */
  progress: 5,
  /** Unix time in seconds of the last successful commit (LASTSAVE). */
  lastSave: 6,
  /** Times a producer waited for room in a full ring (backpressure). */
  ringFullWaits: 7,
  /** Keys loaded at the last start of the shard. */
  loadedKeys: 8,
  /** How long that load took, in ms. */
  loadMs: 9,
  /** Records the worker has taken from the ring (a replacement worker starts here). */
  taken: 10,
} as const;

/** Index of the word the persistence worker sleeps on. */
export const WORKER_WAKE = 0;

/** Index of shard `s`'s first word. */
export function shardBase(s: number): number {
  return SHARD_WORDS * (s + 1);
}

/** Bytes of a ring record's own header: op, key length, value length, expiry. */
export const CHANGE_HEADER = 24;

/** Change kinds in a ring record's first word. */
export const Op = { put: 1, remove: 2, clear: 3 } as const;

/**
 * Bytes per change ring: two of the largest change (a key of 1 KiB and a
 * value of `maxBody`), and at least `minBytes` (8 MiB unless a test asks
 * for less) so that a burst of small writes does not stall on a worker that
 * is committing.
 */
export function changeRingBytes(maxBody: number, minBytes = 8 * 1024 * 1024): number {
  return ringCapacityFor(Math.max(minBytes, 2 * (maxBody + 1024 + CHANGE_HEADER + 64)));
}

/** Builds a plan; the main thread calls it once. */
export function createPersistPlan(
  mode: "everysec" | "always",
  dataDir: string,
  shards: number,
  maxBody: number,
  maxPages = 0,
  minRingBytes?: number,
): PersistPlan {
  const bytes = changeRingBytes(maxBody, minRingBytes);
  return {
    mode,
    dataDir,
    shards,
    rings: Array.from({ length: shards }, () => createRingMemory(bytes)),
    words: new SharedArrayBuffer(SHARD_WORDS * (shards + 1) * 4),
    maxPages,
  };
}

/** The path of shard `s`'s database in `dataDir`. */
export function shardFile(dataDir: string, s: number): string {
  return `${dataDir.replace(/\/+$/, "") || "/"}/shard-${s}.db`;
}
