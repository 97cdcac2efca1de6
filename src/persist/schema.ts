/**
 * The on-disk format: one SQLite database per shard, in WAL mode, with the
 * pairs in a `WITHOUT ROWID` table keyed by the key's bytes (so a lookup
 * and an upsert walk one B-tree) and the absolute expiry in ms since the
 * epoch (0 = none), so a TTL means the same instant after a restart.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";

/** `PRAGMA application_id` of an evkv database: "evkv" in ASCII. */
export const APPLICATION_ID = 0x65766b76;
/** `PRAGMA user_version`: the schema version this code writes and reads. */
export const SCHEMA_VERSION = 1;

const CREATE = `
CREATE TABLE kv (
  key BLOB PRIMARY KEY NOT NULL,
  value BLOB NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
`;

/** What a database file says about itself. */
export interface FileCheck {
  /** Shard count the file was written for. */
  shards: number;
  /** Shard index it holds. */
  shard: number;
}

/**
 * Reads a shard file without changing it and says why it cannot be used,
 * or returns what it holds. An empty file (a crash while it was being
 * created) counts as new: `null`.
 */
export function checkShardFile(path: string): FileCheck | null {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch (e) {
    throw new Error(`${path} cannot be opened: ${message(e)}`);
  }
  try {
    let appId: number;
    let version: number;
    let tables: number;
    try {
      appId = Number(pragma(db, "application_id"));
      version = Number(pragma(db, "user_version"));
      tables = Number(
        (db.prepare("SELECT count(*) AS n FROM sqlite_master").get() as { n: number }).n,
      );
    } catch (e) {
      throw new Error(`${path} is not an evkv database (${message(e)})`);
    }
    if (appId === 0 && tables === 0) return null;
    if (appId !== APPLICATION_ID) {
      throw new Error(`${path} is not an evkv database (its application id is ${appId})`);
    }
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `${path} has schema version ${version}, newer than this evkv (${SCHEMA_VERSION}); ` +
          `run a newer evkv`,
      );
    }
    const meta = new Map<string, number>();
    try {
      for (const r of db.prepare("SELECT name, value FROM meta").all()) {
        meta.set(String(r.name), Number(r.value));
      }
    } catch (e) {
      throw new Error(`${path} is not an evkv database (${message(e)})`);
    }
    const shards = meta.get("shards");
    const shard = meta.get("shard");
    if (shards === undefined || shard === undefined) {
      throw new Error(`${path} is not an evkv database (no shard in its meta table)`);
    }
    return { shards, shard };
  } finally {
    db.close();
  }
}

/** Creates shard `shard` of `shards` at `path` (a new or empty file), in one transaction. */
export function createShardFile(path: string, shard: number, shards: number): void {
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("BEGIN");
    db.exec(CREATE);
    const meta = db.prepare("INSERT INTO meta (name, value) VALUES (?, ?)");
    meta.run("shard", shard);
    meta.run("shards", shards);
    db.exec(`PRAGMA application_id=${APPLICATION_ID}`);
    db.exec(`PRAGMA user_version=${SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

/**
 * Opens a shard's database for writing: WAL, and `synchronous=FULL` when
 * every commit must survive a power cut (`always`), NORMAL otherwise (a
 * commit in WAL mode then survives a crash of the process, not of the OS).
 */
export function openForWriting(path: string, full: boolean, maxPages: number): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec(`PRAGMA synchronous=${full ? "FULL" : "NORMAL"}`);
  // The worker checkpoints by itself between batches; a large WAL only
  // slows readers (loading, backups) down.
  db.exec("PRAGMA wal_autocheckpoint=4000");
  if (maxPages > 0) db.exec(`PRAGMA max_page_count=${maxPages}`);
  return db;
}

function pragma(db: DatabaseSync, name: string): unknown {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, unknown> | undefined;
  return row ? Object.values(row)[0] : 0;
}

/** An error's message. */
export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
