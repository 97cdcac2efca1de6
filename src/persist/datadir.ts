/**
 * Opening `--data-dir` in the main thread, before any worker starts: the
 * checks that refuse a bad directory with one clear line, the lock that
 * keeps a second server out, and the shard files' creation. A refusal
 * leaves the disk as it was.
 *
 * @module
 */
import { shardFile } from "./plan.ts";
import { checkShardFile, createShardFile, message } from "./schema.ts";

/**
 * Thrown when a data directory cannot be used; its message is the one line to print.
 *
 * @example
 * ```ts
 * import { DataDirError, serve } from "@evkv/evkv";
 * try {
 *   await serve({ persist: { mode: "always", dataDir: "/etc/passwd" } });
 * } catch (e) {
 *   if (e instanceof DataDirError) console.error(e.message); // "... it is not a directory"
 * }
 * ```
 */
export class DataDirError extends Error {
  /** Makes the error. */
  constructor(msg: string) {
    super(msg);
    this.name = "DataDirError";
  }
}

/** An open, locked data directory. */
export interface DataDir {
  /** The directory. */
  path: string;
  /** Releases the lock (the lock file stays, so the next server needs no new file). */
  close(): void;
}

const LOCK = "LOCK";

/**
 * Checks `dir` for a server with `shards` shards, locks it, and creates the
 * missing shard files. Throws {@link DataDirError} when the directory is
 * not a directory, not writable, locked by another server, or holds a file
 * that is not an evkv database, has a newer schema, or was written for
 * another shard count.
 */
export function openDataDir(dir: string, shards: number): DataDir {
  const what = `Open data dir ${dir}`;
  let created = false;
  try {
    const st = Deno.statSync(dir);
    if (!st.isDirectory) throw new DataDirError(`${what}: it is not a directory`);
  } catch (e) {
    if (e instanceof DataDirError) throw e;
    if (!(e instanceof Deno.errors.NotFound)) throw new DataDirError(`${what}: ${message(e)}`);
    try {
      Deno.mkdirSync(dir, { recursive: true });
      created = true;
    } catch (e2) {
      throw new DataDirError(`${what}: cannot create it (${message(e2)})`);
    }
  }
  const lockPath = `${dir}/${LOCK}`;
  let lockExisted = true;
  try {
    Deno.statSync(lockPath);
  } catch {
    lockExisted = false;
  }
  let lock: Deno.FsFile;
  try {
    lock = Deno.openSync(lockPath, { read: true, write: true, create: true });
  } catch (e) {
    throw new DataDirError(`${what}: it is not writable (${message(e)})`);
  }
  /** Undoes what this call did to the disk, then throws. */
  const made: string[] = [];
  const refuse = (msg: string): never => {
    lock.close();
    for (const path of made) for (const end of ["", "-wal", "-shm"]) tryRemove(path + end);
    if (!lockExisted) tryRemove(lockPath);
    if (created) tryRemove(dir);
    throw new DataDirError(`${what}: ${msg}`);
  };
  if (!lock.tryLockSync(true)) {
    let holder = "";
    try {
      holder = new TextDecoder().decode(Deno.readFileSync(lockPath)).trim();
    } catch {
      // The holder's pid is only a hint.
    }
    refuse(`another evkv server is using it${holder ? ` (pid ${holder})` : ""}`);
  }
  try {
    Deno.writeFileSync(`${dir}/.evkv-write-test`, new Uint8Array(0));
    Deno.removeSync(`${dir}/.evkv-write-test`);
  } catch (e) {
    refuse(`it is not writable (${message(e)})`);
  }
  // Every file first, so that a bad one refuses before anything is created.
  const missing: number[] = [];
  for (let s = 0; s < shards; s++) {
    const path = shardFile(dir, s);
    let exists = true;
    try {
      Deno.statSync(path);
    } catch {
      exists = false;
    }
    let check = null;
    if (exists) {
      try {
        check = checkShardFile(path);
      } catch (e) {
        refuse(message(e));
      }
    }
    if (check === null) {
      missing.push(s);
    } else if (check.shards !== shards || check.shard !== s) {
      refuse(
        `${path} holds shard ${check.shard} of ${check.shards}, but this server runs ${shards} ` +
          `shards; start it with ${check.shards} shards (--workers, or --io-threads in inline mode)`,
      );
    }
  }
  for (const name of dirNames(dir)) {
    const m = /^shard-(\d+)\.db$/.exec(name);
    if (m && Number(m[1]) >= shards) {
      refuse(
        `it holds ${name}, but this server runs ${shards} shards; start it with the shard ` +
          `count the data was written with (--workers, or --io-threads in inline mode)`,
      );
    }
  }
  for (const s of missing) {
    try {
      made.push(shardFile(dir, s));
      createShardFile(shardFile(dir, s), s, shards);
    } catch (e) {
      refuse(`cannot create ${shardFile(dir, s)} (${message(e)})`);
    }
  }
  try {
    lock.truncateSync(0);
    lock.writeSync(new TextEncoder().encode(`${Deno.pid}\n`));
  } catch {
    // The pid is only a hint for the next server's refusal.
  }
  return {
    path: dir,
    close() {
      try {
        lock.unlockSync();
      } catch {
        // Closing releases it too.
      }
      lock.close();
    },
  };
}

function dirNames(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return [];
  }
}

function tryRemove(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Best effort: what stays is empty.
  }
}
