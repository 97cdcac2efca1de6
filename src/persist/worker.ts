/**
 * Persistence worker entry: the one thread that writes the shards'
 * databases. It takes every shard's changes from its ring, keeps the last
 * change of each key (so a key written a thousand times in a second costs
 * one row write), and commits them in one transaction per shard: about
 * once a second under `everysec`, and as soon as a batch is taken under
 * `always` (group commit: every write that arrived while the last commit
 * ran goes into the next one), after which the shard's owner is woken to
 * send the replies it held.
 *
 * A failed commit (a full disk, say) keeps the changes and retries them
 * every second; meanwhile the shard is marked failing, so its writes are
 * refused while reads go on.
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { Coalescer } from "./coalesce.ts";
import { Ring } from "../server/channel/ring.ts";
import { type Layout, shardThread, wake } from "../server/topology.ts";
import {
  CHANGE_HEADER,
  Op,
  type PersistPlan,
  shardBase,
  shardFile,
  Word,
  WORKER_WAKE,
} from "./plan.ts";
import { message, openForWriting } from "./schema.ts";

/** The worker global, typed here rather than through a lib directive (JSR bans those). */
const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

/** The message that starts the persistence worker. */
export interface PersistWorkerInit {
  /** Rings, words and settings. */
  plan: PersistPlan;
  /** The server's control memory, to wake shard threads. */
  control: SharedArrayBuffer;
  /** The server's layout, to find each shard's thread. */
  layout: Layout;
}

/** Commands from the main thread; each is answered with `flushed` or `closed`. */
export type PersistCommand = { type: "flush" } | { type: "close" };

/** Pending bytes of one shard that force a commit before the second is up. */
const MAX_PENDING_BYTES = 64 * 1024 * 1024;
/** How often `everysec` commits, and a failed commit is retried. */
const INTERVAL_MS = 1000;
/**
 * Rows per multi-row upsert: one statement call per this many rows, because
 * binding and stepping through node:sqlite costs about a microsecond a call,
 * as much as SQLite's own work on a row.
 */
const ROWS_PER_PUT = 64;
/** Longest wait for a batch to grow under `always` (see {@link ShardWriter.gather}). */
const GATHER_MAX_MS = 2;

class ShardWriter {
  readonly shard: number;
  readonly #db: DatabaseSync;
  readonly #put: StatementSync;
  readonly #putMany: StatementSync;
  readonly #del: StatementSync;
  /** Arguments of the next {@link #putMany}, reused. */
  readonly #args: (Uint8Array | number)[] = [];
  readonly #ring: Ring;
  readonly #words: Int32Array;
  readonly #base: number;
  readonly #pending = new Coalescer();
  #cleared = false;
  /** Sequence number of the last change taken from the ring. */
  #taken: number;
  #lastCommit = Date.now();
  #retryAt = 0;
  #saveSeen: number;
  /** Changes taken since the last commit, changes in the last commit, and how long it took. */
  #sinceCommit = 0;
  #lastBatch = 0;
  #lastCommitMs = 0;
  lastError = "";

  constructor(plan: PersistPlan, shard: number) {
    this.shard = shard;
    this.#db = openForWriting(
      shardFile(plan.dataDir, shard),
      plan.mode === "always",
      plan.maxPages,
    );
    this.#put = this.#db.prepare(
      "INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?) " +
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    );
    this.#putMany = this.#db.prepare(
      "INSERT INTO kv (key, value, expires_at) VALUES " +
        Array.from({ length: ROWS_PER_PUT }, () => "(?, ?, ?)").join(", ") +
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    );
    this.#del = this.#db.prepare("DELETE FROM kv WHERE key = ?");
    this.#ring = new Ring(plan.rings[shard]);
    this.#words = new Int32Array(plan.words);
    this.#base = shardBase(shard);
    // A replacement worker goes on from what its predecessor took; what
    // that one took and had not committed died with it, and the replies
    // held for it are released as failed.
    this.#taken = Atomics.load(this.#words, this.#base + Word.taken);
    if (Atomics.load(this.#words, this.#base + Word.settled) !== this.#taken) {
      Atomics.store(this.#words, this.#base + Word.settled, this.#taken);
      this.#progress();
    }
    this.#saveSeen = Atomics.load(this.#words, this.#base + Word.saveAsked);
    // What is on disk now is what the shard loads: saved as of this moment.
    Atomics.store(this.#words, this.#base + Word.lastSave, Math.floor(Date.now() / 1000));
  }

  /** Takes every change from the ring; returns how many. */
  take(): number {
    const ring = this.#ring;
    let n = 0;
    let off: number;
    while ((off = ring.next()) >= 0) {
      const w = off >>> 2;
      const op = ring.u32[w];
      if (op === Op.clear) {
        this.#pending.clear();
        this.#cleared = true;
      } else {
        const keyLen = ring.u32[w + 1];
        const at = off + CHANGE_HEADER;
        const valueLen = op === Op.put ? ring.u32[w + 2] : -1;
        this.#pending.set(ring.u8, at, keyLen, at + keyLen, valueLen, ring.f64[(off + 16) >>> 3]);
      }
      n++;
    }
    if (n > 0) {
      ring.release();
      this.#taken = (this.#taken + n) | 0;
      this.#sinceCommit += n;
      Atomics.store(this.#words, this.#base + Word.taken, this.#taken);
      this.#progress();
    }
    return n;
  }

  /**
   * Under `always`, while writes keep arriving: waits for the batch to
   * grow to the last one's size, at most half the last commit's time (and
   * {@link GATHER_MAX_MS}). Clients whose replies the last commit released
   * send their next writes a moment later; without the wait those would
   * miss this commit and wait for the whole of the next, so each write
   * would wait for two fsyncs instead of one.
   */
  gather(words: Int32Array): void {
    if (this.#sinceCommit === 0) return;
    const until = performance.now() + Math.min(GATHER_MAX_MS, this.#lastCommitMs / 2);
    while (this.#sinceCommit < this.#lastBatch && performance.now() < until) {
      const seen = Atomics.load(words, WORKER_WAKE);
      if (this.take() === 0) Atomics.wait(words, WORKER_WAKE, seen, 0.2);
    }
  }

  /** True when a commit is due now. */
  due(mode: "everysec" | "always", now: number, forced: boolean): boolean {
    const saveAsked = Atomics.load(this.#words, this.#base + Word.saveAsked);
    if (saveAsked !== this.#saveSeen) {
      this.#saveSeen = saveAsked;
      forced = true;
    }
    if (forced) return true;
    const settled = Atomics.load(this.#words, this.#base + Word.settled);
    if (settled === this.#taken && !this.#dirty()) return false;
    if (this.lastError !== "" && now < this.#retryAt) return false;
    return mode === "always" || now - this.#lastCommit >= INTERVAL_MS ||
      this.#pending.bytes >= MAX_PENDING_BYTES;
  }

  #dirty(): boolean {
    return this.#cleared || this.#pending.size > 0;
  }

  /** Commits what was taken; returns false when the commit failed. */
  commit(now: number): boolean {
    const t0 = performance.now();
    this.#lastBatch = this.#sinceCommit;
    this.#sinceCommit = 0;
    const upTo = this.#taken;
    const words = this.#words;
    if (this.#dirty()) {
      const db = this.#db;
      try {
        db.exec("BEGIN");
        if (this.#cleared) db.exec("DELETE FROM kv");
        const args = this.#args;
        args.length = 0;
        this.#pending.forEach((key, value, expiresAt) => {
          if (value === null) {
            this.#del.run(key);
            return;
          }
          // Keys are unique in the table, so one statement may carry many rows.
          args.push(key, value, expiresAt);
          if (args.length === 3 * ROWS_PER_PUT) {
            this.#putMany.run(...args);
            args.length = 0;
          }
        });
        for (let i = 0; i < args.length; i += 3) {
          this.#put.run(args[i], args[i + 1], args[i + 2]);
        }
        args.length = 0;
        db.exec("COMMIT");
      } catch (e) {
        try {
          if (db.isTransaction) db.exec("ROLLBACK");
        } catch {
          // The failed COMMIT may have rolled back already.
        }
        const first = this.lastError === "";
        this.lastError = message(e);
        this.#retryAt = now + INTERVAL_MS;
        if (first) {
          console.error(
            `evkv: save shard ${this.shard} failed: ${this.lastError}; refusing writes to it ` +
              `and retrying every second`,
          );
        }
        Atomics.store(words, this.#base + Word.failing, 1);
        Atomics.store(words, this.#base + Word.settled, upTo);
        this.#progress();
        return false;
      }
      this.#pending.clear();
      this.#cleared = false;
    }
    if (this.lastError !== "") {
      console.error(`evkv: save shard ${this.shard} works again; accepting writes`);
      this.lastError = "";
    }
    this.#lastCommit = now;
    this.#lastCommitMs = performance.now() - t0;
    Atomics.store(words, this.#base + Word.lastSave, Math.floor(Date.now() / 1000));
    Atomics.store(words, this.#base + Word.committed, upTo);
    Atomics.store(words, this.#base + Word.settled, upTo);
    Atomics.store(words, this.#base + Word.failing, 0);
    this.#progress();
    return true;
  }

  /** Lets writers blocked on a full ring and SAVE callers look again. */
  #progress(): void {
    Atomics.add(this.#words, this.#base + Word.progress, 1);
    Atomics.notify(this.#words, this.#base + Word.progress);
  }

  close(): void {
    try {
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch {
      // A checkpoint is an optimisation for the next start, not a promise.
    }
    this.#db.close();
  }
}

async function main(init: PersistWorkerInit): Promise<void> {
  const { plan, layout } = init;
  const words = new Int32Array(plan.words);
  const control = new Int32Array(init.control);
  const writers = Array.from({ length: plan.shards }, (_, s) => new ShardWriter(plan, s));
  const commands: PersistCommand[] = [];
  scope.onmessage = (e: MessageEvent<PersistCommand>) => {
    commands.push(e.data);
    Atomics.add(words, WORKER_WAKE, 1);
    Atomics.notify(words, WORKER_WAKE);
  };
  scope.postMessage({ type: "ready" });
  for (;;) {
    const seen = Atomics.load(words, WORKER_WAKE);
    const todo = commands.splice(0);
    const forced = todo.length > 0;
    const now = Date.now();
    for (const w of writers) {
      w.take();
      if (plan.mode === "always") w.gather(words);
      if (w.due(plan.mode, now, forced)) {
        w.commit(now);
        // Its owner may hold replies for this commit (always) or wait in SAVE.
        wake(control, shardThread(layout, w.shard));
      }
    }
    for (const c of todo) {
      if (c.type === "close") {
        for (const w of writers) {
          w.take();
          if (w.due(plan.mode, now, true)) w.commit(Date.now());
          w.close();
        }
        scope.postMessage({ type: "closed" });
        return;
      }
      scope.postMessage({ type: "flushed" });
    }
    const timeout = plan.mode === "always" ? 100 : 50;
    const r = Atomics.waitAsync(words, WORKER_WAKE, seen, timeout);
    if (r.async) await r.value;
  }
}

scope.onmessage = (e: MessageEvent<PersistWorkerInit>) => {
  scope.onmessage = null;
  main(e.data).catch((err) => {
    setTimeout(() => {
      throw err;
    });
  });
};
