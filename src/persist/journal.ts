/**
 * The shard side of persistence, in the thread that owns the shard: a
 * {@link StoreObserver} that copies every change of the store into the
 * shard's change ring for the persistence worker, and the start-up load of
 * the shard from its database.
 *
 * The ring is the only hand-off, so a write costs one record copy and no
 * lock; when the ring is full the writer waits for the worker (backpressure)
 * rather than drop a change.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { Ring } from "../server/channel/ring.ts";
import type { ShardStore, StoreObserver } from "../kv/store.ts";
import {
  CHANGE_HEADER,
  Op,
  type PersistPlan,
  shardBase,
  shardFile,
  Word,
  WORKER_WAKE,
} from "./plan.ts";
import { message } from "./schema.ts";

const EMPTY = new Uint8Array(0);

/**
 * How far a shard's changes got, for holding replies under `always`: a
 * reply to a request that pushed changes up to sequence `n` may go once
 * `settled() - n >= 0`, and was saved iff `committed() - n >= 0`.
 */
export interface DurabilityGate {
  /** Sequence number of the last change pushed. */
  pushed(): number;
  /** Changes the worker is done with (committed, or failed to commit). */
  settled(): number;
  /** Changes committed. */
  committed(): number;
}

/** Feeds one shard's changes to the persistence worker. */
export class ShardJournal implements StoreObserver, DurabilityGate {
  /** The mode the server runs in. */
  readonly mode: "everysec" | "always";
  /** The shard. */
  readonly shard: number;
  readonly #ring: Ring;
  readonly #words: Int32Array;
  readonly #base: number;
  #pushed: number;
  /** Ring bytes written since the worker was last woken. */
  #unkicked = 0;
  readonly #kickBytes: number;

  /** Opens shard `shard`'s side of `plan`. */
  constructor(plan: PersistPlan, shard: number) {
    this.mode = plan.mode;
    this.shard = shard;
    this.#ring = new Ring(plan.rings[shard]);
    this.#words = new Int32Array(plan.words);
    this.#base = shardBase(shard);
    // A replacement thread goes on from where the dead one stopped.
    this.#pushed = Atomics.load(this.#words, this.#base + Word.pushed);
    this.#kickBytes = this.#ring.capacity / 4;
  }

  /** See {@link StoreObserver.stored}. */
  stored(key: Uint8Array, value: Uint8Array, expiresAt: number): void {
    this.#push(Op.put, key, value, expiresAt);
  }

  /** See {@link StoreObserver.removed}. */
  removed(key: Uint8Array): void {
    this.#push(Op.remove, key, EMPTY, 0);
  }

  /** See {@link StoreObserver.cleared}. */
  cleared(): void {
    this.#push(Op.clear, EMPTY, EMPTY, 0);
  }

  /** See {@link DurabilityGate.pushed}. */
  pushed(): number {
    return this.#pushed;
  }

  /** See {@link DurabilityGate.settled}. */
  settled(): number {
    return Atomics.load(this.#words, this.#base + Word.settled);
  }

  /** See {@link DurabilityGate.committed}. */
  committed(): number {
    return Atomics.load(this.#words, this.#base + Word.committed);
  }

  /** True while the shard's last commit failed: writes are refused until one succeeds. */
  get failing(): boolean {
    return Atomics.load(this.#words, this.#base + Word.failing) !== 0;
  }

  /** The shard's persistence figures, for INFO. */
  figures(): { lastSave: number; ringFullWaits: number; loadedKeys: number; loadMs: number } {
    const w = this.#words;
    const b = this.#base;
    return {
      lastSave: Atomics.load(w, b + Word.lastSave),
      ringFullWaits: Atomics.load(w, b + Word.ringFullWaits),
      loadedKeys: Atomics.load(w, b + Word.loadedKeys),
      loadMs: Atomics.load(w, b + Word.loadMs),
    };
  }

  /** Wakes the worker if changes are waiting for it. */
  kick(): void {
    if (this.#unkicked === 0) return;
    this.#unkicked = 0;
    Atomics.add(this.#words, WORKER_WAKE, 1);
    Atomics.notify(this.#words, WORKER_WAKE);
  }

  /**
   * Asks for every change pushed so far to be committed now; with `wait`,
   * blocks until it is (true) or the commit failed or `timeoutMs` passed
   * (false).
   */
  save(wait: boolean, timeoutMs = 30_000): boolean {
    const target = this.#pushed;
    Atomics.add(this.#words, this.#base + Word.saveAsked, 1);
    this.#unkicked = 1;
    this.kick();
    if (!wait) return true;
    const until = Date.now() + timeoutMs;
    for (;;) {
      const seen = Atomics.load(this.#words, this.#base + Word.progress);
      if (this.committed() - target >= 0 && !this.failing) return true;
      if (this.settled() - target >= 0 && this.failing) return false;
      const left = until - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.#words, this.#base + Word.progress, seen, Math.min(left, 100));
    }
  }

  #push(op: number, key: Uint8Array, value: Uint8Array, expiresAt: number): void {
    const ring = this.#ring;
    const len = CHANGE_HEADER + key.length + value.length;
    let off = ring.reserve(len);
    if (off < 0) off = this.#waitForRoom(len);
    const w = off >>> 2;
    ring.u32[w] = op;
    ring.u32[w + 1] = key.length;
    ring.u32[w + 2] = value.length;
    ring.f64[(off + 16) >>> 3] = expiresAt;
    ring.u8.set(key, off + CHANGE_HEADER);
    if (value.length > 0) ring.u8.set(value, off + CHANGE_HEADER + key.length);
    ring.commit();
    this.#pushed = (this.#pushed + 1) | 0;
    Atomics.store(this.#words, this.#base + Word.pushed, this.#pushed);
    this.#unkicked += len;
    if (this.#unkicked >= this.#kickBytes) this.kick();
  }

  /** Backpressure: the ring is full, so the writer waits for the worker to release room. */
  #waitForRoom(len: number): number {
    if (Ring.recordSize(len) * 2 > this.#ring.capacity) {
      throw new RangeError(
        `Save change: ${len} bytes is more than a change ring of ${this.#ring.capacity} takes`,
      );
    }
    Atomics.add(this.#words, this.#base + Word.ringFullWaits, 1);
    for (;;) {
      const seen = Atomics.load(this.#words, this.#base + Word.progress);
      const off = this.#ring.reserve(len);
      if (off >= 0) return off;
      this.#unkicked = Math.max(this.#unkicked, 1);
      this.kick();
      Atomics.wait(this.#words, this.#base + Word.progress, seen, 50);
    }
  }
}

/** What the shard thread was told at start, until the service asks. */
let boundPlan: PersistPlan | null = null;
const journals = new Map<number, ShardJournal>();

/**
 * Called by the thread that will own shards, before it creates their
 * state: gives {@link attachPersistence} the plan (undefined when
 * persistence is off).
 */
export function bindPersistence(plan: PersistPlan | undefined): void {
  boundPlan = plan ?? null;
}

/** This thread's journal of shard `shard`, or null when it has none. */
export function shardJournal(shard: number): ShardJournal | null {
  return journals.get(shard) ?? null;
}

/** Wakes the persistence worker for every shard of this thread that pushed changes. */
export function kickPersistence(): void {
  for (const j of journals.values()) j.kick();
}

/** The reply gate for shard `shard` under `always`, else null. */
export function durabilityGate(shard: number): DurabilityGate | null {
  const j = journals.get(shard);
  return j && j.mode === "always" ? j : null;
}

/**
 * Under `always`, blocks until every change this thread pushed has been
 * dealt with by the worker: inline mode calls it before writing a batch's
 * replies, so none leaves before its write is on disk.
 */
export function awaitDurable(): void {
  for (const j of journals.values()) {
    if (j.mode !== "always") continue;
    const target = j.pushed();
    if (j.settled() - target >= 0) continue;
    j.save(true, 60_000);
  }
}

/**
 * Loads shard `shard` from its database into `store`, then makes the store
 * report its changes to the persistence worker. Keys whose expiry passed
 * while the server was down are not loaded, and are deleted from disk.
 * Does nothing when persistence is off or the thread was not bound.
 */
export function attachPersistence(store: ShardStore, shard: number): ShardJournal | null {
  const plan = boundPlan;
  if (plan === null || shard >= plan.shards) return null;
  const journal = new ShardJournal(plan, shard);
  const path = shardFile(plan.dataDir, shard);
  const t0 = performance.now();
  const now = Date.now();
  const expired: Uint8Array[] = [];
  let loaded = 0;
  // Keys the store evicts while loading (a memory cap) leave the disk too;
  // the loaded ones are already there and need no echo.
  store.observer = {
    stored() {},
    removed: (key) => journal.removed(key),
    cleared() {},
  };
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const rows = db.prepare("SELECT key, value, expires_at FROM kv");
    for (const row of rows.iterate()) {
      const key = row.key as Uint8Array;
      const expiresAt = Number(row.expires_at);
      if (expiresAt !== 0 && expiresAt <= now) {
        expired.push(key);
        continue;
      }
      store.putUntil(key, row.value as Uint8Array, expiresAt);
      loaded++;
    }
  } catch (e) {
    throw new Error(`Load shard ${shard} from ${path}: ${message(e)}`);
  } finally {
    db.close();
  }
  store.observer = journal;
  for (const key of expired) journal.removed(key);
  journal.kick();
  const ms = Math.round(performance.now() - t0);
  const words = new Int32Array(plan.words);
  Atomics.store(words, shardBase(shard) + Word.loadedKeys, loaded);
  Atomics.store(words, shardBase(shard) + Word.loadMs, ms);
  journals.set(shard, journal);
  return journal;
}
