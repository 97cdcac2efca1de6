/**
 * The main thread's side of persistence: opens and locks the data
 * directory, starts the persistence worker (and replaces it if it dies),
 * commits everything before a shard is reloaded or the server stops, and
 * reports what the shards loaded.
 *
 * @module
 */
import { WorkerHandle } from "../server/main/supervisor.ts";
import type { Layout } from "../server/topology.ts";
import { type DataDir, openDataDir } from "./datadir.ts";
import { createPersistPlan, type PersistMode, type PersistPlan, shardBase, Word } from "./plan.ts";
import type { PersistWorkerInit } from "./worker.ts";

/**
 * Persistence settings of a server.
 *
 * @example
 * ```ts
 * import { serve } from "@evkv/evkv";
 * const server = await serve({ port: 0, persist: { mode: "always", dataDir: "data" } });
 * await server.shutdown();
 * ```
 */
export interface PersistOptions {
  /** See {@link PersistMode}. Default `"off"` for `serve()`; `deno task serve` defaults to `everysec`. */
  mode?: PersistMode;
  /** Where the shard databases live. Default `data`. */
  dataDir?: string;
  /** Test-only: cap each database at this many pages, so that SQLite reports a full disk. */
  maxPagesForTest?: number;
  /** Test-only: a smaller change ring (still two of the largest change), to exercise backpressure. */
  minRingBytesForTest?: number;
}

/**
 * What persistence says about itself (for logs and tests).
 *
 * @example
 * ```ts
 * import { serve } from "@evkv/evkv";
 * const server = await serve({ port: 0, persist: { mode: "everysec", dataDir: "data" } });
 * const keys = server.persistence()!.loadedKeys.reduce((a, b) => a + b, 0);
 * await server.shutdown();
 * ```
 */
export interface PersistStatus {
  /** The mode. */
  mode: PersistMode;
  /** The data directory, or "" when off. */
  dataDir: string;
  /** Keys loaded at start, per shard. */
  loadedKeys: number[];
  /** Time each shard's load took, in ms. */
  loadMs: number[];
  /**
   * Changes acknowledged but not yet committed to disk, summed over the
   * shards: what a crash could lose under `everysec`.
   */
  pendingChanges: number;
  /** Unix time in seconds of the oldest shard's last successful commit (0: none yet). */
  lastCommitSeconds: number;
  /** Shards whose last commit failed (full disk, say); they refuse writes. */
  failingShards: number;
}

const WORKER_URL = new URL("./worker.ts", import.meta.url);

/** A running persistence worker and its locked data directory. */
export class Persistence {
  /** The shared plan, for the shard threads. */
  readonly plan: PersistPlan;
  readonly #dir: DataDir;
  readonly #init: PersistWorkerInit;
  #worker: WorkerHandle;
  #closed = false;
  #restarting: Promise<void> | null = null;

  private constructor(plan: PersistPlan, dir: DataDir, init: PersistWorkerInit, w: WorkerHandle) {
    this.plan = plan;
    this.#dir = dir;
    this.#init = init;
    this.#worker = w;
    this.#supervise();
  }

  /**
   * Opens the data directory (throwing a {@link DataDirError} with one
   * clear line when it cannot be used) and starts the worker; null when
   * `mode` is off.
   */
  static async start(
    options: PersistOptions,
    layout: Layout,
    shards: number,
    control: SharedArrayBuffer,
    maxBody: number,
  ): Promise<Persistence | null> {
    const mode = options.mode ?? "off";
    if (mode === "off") return null;
    const dataDir = options.dataDir ?? "data";
    const dir = openDataDir(dataDir, shards);
    try {
      const plan = createPersistPlan(
        mode,
        dataDir,
        shards,
        maxBody,
        options.maxPagesForTest ?? 0,
        options.minRingBytesForTest,
      );
      const init: PersistWorkerInit = { plan, control, layout };
      const { handle } = await WorkerHandle.start(WORKER_URL, "evkv-persist", init);
      return new Persistence(plan, dir, init, handle);
    } catch (e) {
      dir.close();
      throw e;
    }
  }

  #supervise(): void {
    this.#worker.onDeath((reason) => {
      if (this.#closed) return;
      console.error(`evkv: persistence worker died (${reason}); restarting it`);
      this.#restarting = WorkerHandle.start(WORKER_URL, "evkv-persist", this.#init).then(
        ({ handle }) => {
          this.#worker = handle;
          this.#supervise();
        },
        (e) => console.error(`evkv: restart persistence worker failed: ${e}`),
      ).finally(() => this.#restarting = null);
    });
  }

  /** Commits every change in the rings now (before a dead shard is reloaded, say). */
  async flush(): Promise<void> {
    if (this.#restarting) await this.#restarting;
    const done = this.#worker.next("flushed", 30_000);
    this.#worker.post({ type: "flush" });
    await done;
  }

  /** Commits what is left, closes the databases and unlocks the directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#restarting) await this.#restarting;
    this.#closed = true;
    const done = this.#worker.next("closed", 30_000);
    this.#worker.post({ type: "close" });
    await done;
    this.#worker.stop();
    this.#dir.close();
  }

  /** What the shards loaded, and the settings. */
  status(): PersistStatus {
    const words = new Int32Array(this.plan.words);
    const per = (w: number) =>
      Array.from({ length: this.plan.shards }, (_, s) => Atomics.load(words, shardBase(s) + w));
    // Free-running int32 sequence numbers: compare by wrapping subtraction.
    const pushed = per(Word.pushed);
    const committed = per(Word.committed);
    const lastSave = per(Word.lastSave);
    return {
      mode: this.plan.mode,
      dataDir: this.plan.dataDir,
      loadedKeys: per(Word.loadedKeys),
      loadMs: per(Word.loadMs),
      pendingChanges: pushed.reduce((n, p, s) => n + ((p - committed[s]) | 0), 0),
      lastCommitSeconds: lastSave.length > 0 ? Math.min(...lastSave) : 0,
      failingShards: per(Word.failing).filter((f) => f !== 0).length,
    };
  }
}

/**
 * The start-up message about loading (the logger adds the `evkv:` prefix).
 *
 * @example
 * ```ts
 * import { loadLine } from "@evkv/evkv";
 * loadLine({ mode: "always", dataDir: "data", loadedKeys: [2, 3], loadMs: [4, 5] });
 * // "loaded 5 keys from data in 5 ms (persist always, 2 shard files)"
 * ```
 */
export function loadLine(
  s: Pick<PersistStatus, "mode" | "dataDir" | "loadedKeys" | "loadMs">,
): string {
  const keys = s.loadedKeys.reduce((a, b) => a + b, 0);
  return `loaded ${keys} keys from ${s.dataDir} in ${Math.max(...s.loadMs)} ms ` +
    `(persist ${s.mode}, ${s.loadedKeys.length} shard files)`;
}
