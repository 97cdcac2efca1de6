/**
 * `kvclient backup DIR`: a consistent copy of a running server's data,
 * made beside it with SQLite's online backup API on a read-only connection
 * to each shard file. WAL mode lets this read while the server writes; a
 * backup that a commit interrupts starts over, so each copy holds exactly
 * one commit's state of its shard. The copy is itself a data dir: start a server on it (or move
 * its files into an empty `--data-dir`) to restore.
 *
 * @module
 */
import { backup as sqliteBackup, DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { checkShardFile, message } from "./schema.ts";
import { shardFile } from "./plan.ts";

/**
 * What {@link backup} copied.
 *
 * @example
 * ```ts
 * import type { BackupReport } from "@evkv/evkv";
 * const r: BackupReport = { shards: 2, keys: 1000 };
 * ```
 */
export interface BackupReport {
  /** Shard files copied. */
  shards: number;
  /** Keys in the copy (expired ones included until a server loads it). */
  keys: number;
}

/**
 * Copies every shard file of `dataDir` into `target`, a directory that
 * must not exist yet or be empty. Throws with a sentence naming what failed.
 *
 * @example
 * ```ts
 * import { backup } from "@evkv/evkv";
 * const r = await backup("data", "backup-2026-11-29");
 * console.log(`${r.keys} keys in ${r.shards} shard files`);
 * ```
 */
export async function backup(dataDir: string, target: string): Promise<BackupReport> {
  const first = checkShardFile(shardFile(dataDir, 0));
  if (first === null) throw new Error(`Back up ${dataDir}: it holds no evkv data`);
  try {
    const entries = [...Deno.readDirSync(target)];
    if (entries.length > 0) throw new Error(`Back up ${dataDir}: ${target} is not empty`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    Deno.mkdirSync(target, { recursive: true });
  }
  let keys = 0;
  for (let s = 0; s < first.shards; s++) {
    const from = shardFile(dataDir, s);
    const to = shardFile(target, s);
    const db = new DatabaseSync(from, { readOnly: true });
    try {
      // All pages in one step: a step that a commit interrupts restarts the copy.
      await sqliteBackup(db, to, { rate: -1 });
    } catch (e) {
      throw new Error(`Back up ${from} into ${to}: ${message(e)}`);
    } finally {
      db.close();
    }
    // Read-write, so that closing it removes the -wal and -shm files it would leave.
    const copy = new DatabaseSync(to);
    keys += Number((copy.prepare("SELECT count(*) AS n FROM kv").get() as { n: number }).n);
    copy.close();
  }
  return { shards: first.shards, keys };
}

/** `kvclient backup` usage. */
export const BACKUP_USAGE = `Usage: kvclient backup DIR [--data-dir DIR]

Copies the server's committed data (every shard file under --data-dir,
default "data") into DIR, which must be new or empty, while the server runs.
To restore: stop the server and start it with --data-dir DIR (or move DIR's
files into an empty data dir).`;

/** Runs `kvclient backup ARGS`; resolves with the exit code. */
export async function backupMain(args: string[]): Promise<number> {
  let target: string;
  let dataDir: string;
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { "data-dir": { type: "string" }, help: { type: "boolean", short: "h" } },
    });
    if (values.help) {
      console.log(BACKUP_USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw new Error("backup needs one target directory");
    target = positionals[0];
    dataDir = values["data-dir"] ?? "data";
  } catch (e) {
    console.error(`${message(e)}\n\n${BACKUP_USAGE}`);
    return 2;
  }
  try {
    const r = await backup(dataDir, target);
    console.log(`Backed up ${r.keys} keys in ${r.shards} shard files from ${dataDir} to ${target}`);
    return 0;
  } catch (e) {
    console.error(message(e));
    return 1;
  }
}
