/**
 * Durability end to end: real servers (the `deno task serve` entry in a
 * subprocess where a signal or a kill -9 matters, `serve()` otherwise) on
 * temporary data dirs.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DataDirError, serve, type ServeOptions } from "../mod.ts";
import { type Client, connect } from "../src/client/mod.ts";
import { shardFile } from "../src/persist/plan.ts";
import { createShardFile, SCHEMA_VERSION } from "../src/persist/schema.ts";
import { main as kvclient } from "../src/client/cli.ts";
import { sleep, text, withServer } from "./support.ts";

const CLI = new URL("../src/kvserver/cli.ts", import.meta.url).pathname;

interface Running {
  child: Deno.ChildProcess;
  port: number;
  /** What it printed up to its listening line. */
  startup: string;
  /** All it printed, once it has exited. */
  stdout: Promise<string>;
  stderr: Promise<string>;
}

function spawnServer(flags: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      CLI,
      "--port",
      "0",
      "--workers",
      "2",
      "--io-threads",
      "2",
      ...flags,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Starts `deno task serve`'s entry with `flags`; resolves once it listens. */
async function startServer(flags: string[]): Promise<Running> {
  const child = spawnServer(flags);
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  const stderr = new Response(child.stderr).text();
  let seen = "";
  const deadline = Date.now() + 30_000;
  while (!/listening on [^:]+:(\d+)/.test(seen)) {
    assert.ok(Date.now() < deadline, `server did not start: ${seen}`);
    const { value, done } = await reader.read();
    if (done) assert.fail(`server exited before listening: ${seen}${await stderr}`);
    seen += decoder.decode(value, { stream: true });
  }
  const port = Number(/listening on [^:]+:(\d+)/.exec(seen)![1]);
  const stdout = (async () => {
    let rest = seen;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return rest;
      rest += decoder.decode(value, { stream: true });
    }
  })();
  return { child, port, startup: seen, stdout, stderr };
}

async function stopServer(r: Running, signal: "SIGTERM" | "SIGKILL"): Promise<string> {
  r.child.kill(signal);
  const status = await r.child.status;
  if (signal === "SIGTERM") assert.equal(status.code, 0, await r.stderr);
  await r.stderr;
  return await r.stdout;
}

/** Runs `fn` with a fresh temporary data dir, removed afterwards. */
async function withDataDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "evkv-persist-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const key = (i: number) => `key-${String(i).padStart(6, "0")}`;
const value = (i: number) => `value-${i}-${"x".repeat(i % 50)}`;

Deno.test("data written before SIGTERM is all there after a restart", async () => {
  await withDataDir(async (dir) => {
    const first = await startServer(["--data-dir", dir]);
    const client = await connect({ port: first.port });
    await Promise.all(Array.from({ length: 1000 }, (_, i) => client.put(key(i), value(i))));
    await client.delete(key(7));
    await client.close();
    await stopServer(first, "SIGTERM");

    const second = await startServer(["--data-dir", dir]);
    assert.match(second.startup, /loaded 999 keys from /);
    const again = await connect({ port: second.port });
    const got = await Promise.all(Array.from({ length: 1000 }, (_, i) => again.get(key(i))));
    await again.close();
    await stopServer(second, "SIGTERM");
    for (let i = 0; i < 1000; i++) {
      if (i === 7) assert.equal(got[i], undefined, "a deleted key came back");
      else assert.equal(text(got[i]), value(i), `${key(i)} after the restart`);
    }
  });
});

/**
 * Writers on several connections put keys (each pipelining a few) and
 * record the time each put was acknowledged, until the server dies.
 */
async function writeUntilKilled(
  port: number,
  runMs: number,
  kill: () => void,
): Promise<{ acked: Map<number, number>; killedAt: number }> {
  const acked = new Map<number, number>();
  let next = 0;
  let stop = false;
  const clients: Client[] = await Promise.all(
    Array.from({ length: 4 }, () => connect({ port, timeoutMs: 5000 })),
  );
  const writer = async (c: Client) => {
    while (!stop) {
      const batch = Array.from({ length: 8 }, () => next++);
      const results = await Promise.allSettled(batch.map((i) => c.put(key(i), value(i))));
      const now = Date.now();
      results.forEach((r, j) => {
        if (r.status === "fulfilled") acked.set(batch[j], now);
      });
      if (results.some((r) => r.status === "rejected")) return;
    }
  };
  const writing = Promise.all(clients.map(writer));
  await sleep(runMs);
  const killedAt = Date.now();
  kill();
  stop = true;
  await writing;
  await Promise.all(clients.map((c) => c.close()));
  return { acked, killedAt };
}

for (const mode of ["pool", "inline"]) {
  Deno.test(`under --persist always, no acknowledged write is lost to kill -9 (${mode} mode)`, async () => {
    await withDataDir(async (dir) => {
      const first = await startServer(["--data-dir", dir, "--persist", "always", "--mode", mode]);
      const { acked } = await writeUntilKilled(first.port, 1500, () => first.child.kill("SIGKILL"));
      await stopServer(first, "SIGKILL").catch(() => "");
      assert.ok(acked.size > 100, `only ${acked.size} writes were acknowledged`);

      const second = await startServer(["--data-dir", dir, "--persist", "always"]);
      const c = await connect({ port: second.port });
      const ids = [...acked.keys()];
      const got = await Promise.all(ids.map((i) => c.get(key(i))));
      await c.close();
      await stopServer(second, "SIGTERM");
      const lost = ids.filter((i, j) => text(got[j]) !== value(i));
      assert.deepEqual(lost, [], `${lost.length} of ${ids.length} acknowledged writes were lost`);
    });
  });
}

Deno.test("under --persist everysec, kill -9 loses only writes of about the last second", async () => {
  await withDataDir(async (dir) => {
    const first = await startServer(["--data-dir", dir]);
    const { acked, killedAt } = await writeUntilKilled(
      first.port,
      3000,
      () => first.child.kill("SIGKILL"),
    );
    await stopServer(first, "SIGKILL").catch(() => "");

    const second = await startServer(["--data-dir", dir]);
    const c = await connect({ port: second.port });
    const ids = [...acked.keys()];
    const got = await Promise.all(ids.map((i) => c.get(key(i))));
    await c.close();
    await stopServer(second, "SIGTERM");
    const lostAges = ids.filter((i, j) => text(got[j]) !== value(i)).map((i) =>
      killedAt - acked.get(i)!
    );
    const oldest = Math.max(0, ...lostAges);
    // One interval of 1 s, plus the commit under way and the scheduling
    // slack of a loaded 2-core machine.
    assert.ok(
      oldest <= 2000,
      `${lostAges.length} of ${ids.length} writes lost, the oldest acknowledged ${oldest} ms ` +
        `before the kill`,
    );
    assert.ok(lostAges.length < ids.length / 2, "most acknowledged writes were lost");
  });
});

Deno.test("TTLs survive a restart as absolute times", async () => {
  await withDataDir(async (dir) => {
    const first = await startServer(["--data-dir", dir]);
    const c = await connect({ port: first.port });
    const putAt = Date.now();
    await c.put("short", "gone by the restart", { ttlMs: 1500 });
    await c.put("long", "still here", { ttlMs: 600_000 });
    await c.close();
    await stopServer(first, "SIGTERM");

    // On disk: the expiry is the instant, not the duration.
    for (let s = 0; s < 2; s++) {
      const db = new DatabaseSync(shardFile(dir, s), { readOnly: true });
      for (const row of db.prepare("SELECT key, expires_at FROM kv").all()) {
        const ttl = text(row.key as Uint8Array) === "long" ? 600_000 : 1500;
        const at = Number(row.expires_at);
        assert.ok(at >= putAt + ttl && at <= Date.now() + ttl, `expires_at ${at}`);
      }
      db.close();
    }
    await sleep(Math.max(0, putAt + 1600 - Date.now()));
    const second = await startServer(["--data-dir", dir]);
    assert.match(second.startup, /loaded 1 keys/);
    const again = await connect({ port: second.port });
    assert.equal(await again.get("short"), undefined);
    assert.equal(text(await again.get("long")), "still here");
    await again.close();
    await stopServer(second, "SIGTERM");
  });
});

for (const mode of ["pool", "inline"] as const) {
  Deno.test(`a killed worker comes back with its shard (${mode} mode)`, async () => {
    await withDataDir(async (dir) => {
      const options: ServeOptions = { mode, persist: { mode: "everysec", dataDir: dir } };
      await withServer(options, async (server) => {
        const c = await connect({ port: server.addr.port });
        await Promise.all(Array.from({ length: 300 }, (_, i) => c.put(key(i), value(i))));
        await c.close();
        await server.killWorker(mode === "pool" ? "task" : "io", 0);
        const again = await connect({ port: server.addr.port });
        const got = await Promise.all(Array.from({ length: 300 }, (_, i) => again.get(key(i))));
        await again.close();
        const lost = got.filter((g, i) => text(g) !== value(i)).length;
        assert.equal(lost, 0, `${lost} of 300 keys did not come back`);
      });
    });
  });
}

Deno.test("a second server on the same data dir refuses to start", async () => {
  await withDataDir(async (dir) => {
    await withServer({ persist: { mode: "everysec", dataDir: dir } }, async () => {
      await assert.rejects(
        serve({ port: 0, workers: 2, ioThreads: 2, persist: { mode: "everysec", dataDir: dir } }),
        (e) => e instanceof DataDirError && /another evkv server is using it/.test(e.message),
      );
    });
    // Once the first has stopped, the dir is free again.
    await withServer({ persist: { mode: "everysec", dataDir: dir } }, async () => {});
  });
});

/** Every file under `dir` with its bytes, to show that a refusal changed nothing. */
async function snapshotDir(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) {
        out.set(p, "dir");
        await walk(p);
      } else {
        out.set(p, Array.from(await Deno.readFile(p)).join(","));
      }
    }
  };
  await walk(dir);
  return out;
}

Deno.test("each bad data dir is refused with one line, a non-zero exit and no change on disk", async () => {
  await withDataDir(async (root) => {
    const cases: { name: string; make: () => Promise<string | null>; says: RegExp }[] = [
      {
        name: "a file, not a directory",
        make: async () => {
          await Deno.writeTextFile(`${root}/plain`, "not a dir");
          return `${root}/plain`;
        },
        says: /is not a directory/,
      },
      {
        name: "a shard file that is not a database",
        make: async () => {
          await Deno.mkdir(`${root}/garbage`);
          await Deno.writeTextFile(
            `${root}/garbage/shard-0.db`,
            "hello, this is text\n".repeat(50),
          );
          return `${root}/garbage`;
        },
        says: /shard-0\.db is not an evkv database/,
      },
      {
        name: "another application's SQLite database",
        make: async () => {
          await Deno.mkdir(`${root}/other`);
          const db = new DatabaseSync(`${root}/other/shard-0.db`);
          db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1);");
          db.close();
          return `${root}/other`;
        },
        says: /shard-0\.db is not an evkv database/,
      },
      {
        name: "a database from a newer schema version",
        make: async () => {
          await Deno.mkdir(`${root}/newer`);
          createShardFile(`${root}/newer/shard-0.db`, 0, 2);
          const db = new DatabaseSync(`${root}/newer/shard-0.db`);
          db.exec(`PRAGMA user_version=${SCHEMA_VERSION + 1}`);
          db.exec("PRAGMA journal_mode=DELETE");
          db.close();
          return `${root}/newer`;
        },
        says: /has schema version 2, newer than this evkv/,
      },
      {
        name: "data written with another shard count",
        make: async () => {
          await Deno.mkdir(`${root}/three`);
          for (let s = 0; s < 3; s++) {
            createShardFile(`${root}/three/shard-${s}.db`, s, 3);
            const db = new DatabaseSync(`${root}/three/shard-${s}.db`);
            db.exec("PRAGMA journal_mode=DELETE");
            db.close();
          }
          return `${root}/three`;
        },
        says: /holds shard 0 of 3, but this server runs 2 shards/,
      },
    ];
    // Root writes through mode bits, so for root the directory is made immutable instead.
    const locked = `${root}/locked`;
    let immutable = false;
    /** Makes `locked` unwritable (or writable again); false when this machine cannot. */
    const lockDown = async (on: boolean): Promise<boolean> => {
      if (!on) {
        if (immutable) await new Deno.Command("chattr", { args: ["-i", locked] }).output();
        await Deno.chmod(locked, 0o755);
        return true;
      }
      await Deno.chmod(locked, 0o555);
      try {
        await Deno.writeTextFile(`${locked}/probe`, "");
        await Deno.remove(`${locked}/probe`);
      } catch {
        return true;
      }
      const r = await new Deno.Command("chattr", { args: ["+i", locked] }).output()
        .catch(() => null);
      immutable = r?.success ?? false;
      return immutable;
    };
    cases.push({
      name: "a directory that is not writable",
      make: async () => {
        await Deno.mkdir(locked);
        if (await lockDown(true)) return locked;
        // Root on a file system without chattr +i (overlayfs): no way to make it unwritable.
        console.log("skipped the unwritable data dir: root here cannot make a dir unwritable");
        return null;
      },
      says: /it is not writable/,
    });
    try {
      for (const c of cases) {
        const dir = await c.make();
        if (dir === null) continue;
        const before = await snapshotDir(root);
        const child = spawnServer(["--data-dir", dir]);
        const [status, out, err] = await Promise.all([
          child.status,
          new Response(child.stdout).text(),
          new Response(child.stderr).text(),
        ]);
        assert.notEqual(status.code, 0, `${c.name}: exit code`);
        assert.equal(out.includes("listening"), false, `${c.name}: it listened`);
        const lines = err.trim().split("\n");
        assert.equal(lines.length, 1, `${c.name}: more than one line on stderr:\n${err}`);
        assert.match(lines[0], c.says, c.name);
        assert.match(lines[0], /^evkv: Open data dir /, c.name);
        assert.deepEqual(await snapshotDir(root), before, `${c.name}: the disk changed`);
      }
    } finally {
      await lockDown(false).catch(() => {});
    }
  });
});

Deno.test("a full disk turns writes into error replies while reads keep working", async () => {
  await withDataDir(async (dir) => {
    // max_page_count makes SQLite report SQLITE_FULL, as a full disk does.
    const persist = { mode: "always" as const, dataDir: dir, maxPagesForTest: 40 };
    // One shard, so that every write meets the full database.
    await withServer({ persist, workers: 1 }, async (server) => {
      const c = await connect({ port: server.addr.port, timeoutMs: 10_000 });
      const big = "v".repeat(8000);
      const stored: string[] = [];
      let refusal = "";
      for (let i = 0; i < 200 && refusal === ""; i++) {
        try {
          await c.put(key(i), big);
          stored.push(key(i));
        } catch (e) {
          refusal = e instanceof Error ? e.message : String(e);
        }
      }
      assert.match(refusal, /could not be committed to disk|cannot save to its data dir/);
      assert.ok(stored.length > 0, "no write succeeded before the disk filled");
      // Reads keep working, and so do later writes' refusals (no crash).
      for (const k of stored) assert.equal(text(await c.get(k)), big);
      await assert.rejects(c.put("one-more", "x".repeat(20_000)));
      assert.equal(text(await c.get(stored[0])), big);
      await c.close();
      assert.equal(server.stats().counters.worker_restarts, 0);
    });
  });
});

/** Sends one RESP command and returns its reply, raw (simple, error, integer or bulk). */
async function resp(conn: Deno.Conn, ...args: string[]): Promise<string> {
  const enc = new TextEncoder();
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${enc.encode(a).length}\r\n${a}\r\n`;
  await conn.write(enc.encode(out));
  const buf = new Uint8Array(64 * 1024);
  let got = "";
  for (;;) {
    const n = await conn.read(buf);
    assert.ok(n !== null, "the server closed the connection");
    got += new TextDecoder().decode(buf.subarray(0, n));
    const end = got.indexOf("\r\n");
    if (end < 0) continue;
    if (got[0] !== "$") return got.slice(0, end);
    const len = Number(got.slice(1, end));
    if (got.length >= end + 2 + len + 2) return got.slice(end + 2, end + 2 + len);
  }
}

Deno.test("RESP SAVE, BGSAVE, LASTSAVE and INFO persistence tell what is on disk", async () => {
  await withDataDir(async (dir) => {
    await withServer({ respPort: 0, persist: { mode: "everysec", dataDir: dir } }, async (s) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.addr.respPort! });
      const started = Math.floor(Date.now() / 1000) - 1;
      assert.equal(await resp(conn, "SET", "k", "v"), "+OK");
      assert.equal(await resp(conn, "SAVE"), "+OK");
      const info = await resp(conn, "INFO", "persistence");
      assert.match(info, /^# Persistence\r\n/);
      assert.match(info, /evkv_persist:everysec\r\n/);
      assert.match(info, /rdb_changes_since_last_save:0\r\n/);
      assert.match(info, /rdb_last_bgsave_status:ok\r\n/);
      const last = Number((await resp(conn, "LASTSAVE")).slice(1));
      assert.ok(last >= started && last <= Date.now() / 1000 + 1, `LASTSAVE ${last}`);
      assert.equal(await resp(conn, "BGSAVE"), "+Background saving started");
      conn.close();
    });
    // What SAVE committed is in a shard file.
    let found = 0;
    for (let sh = 0; sh < 2; sh++) {
      const db = new DatabaseSync(shardFile(dir, sh), { readOnly: true });
      found += db.prepare("SELECT count(*) AS n FROM kv WHERE key = ?").get(
        new TextEncoder().encode("k"),
      )!.n as number;
      db.close();
    }
    assert.equal(found, 1);
  });
});

Deno.test("RESP SAVE with --persist off says that nothing is saved", async () => {
  await withServer({ respPort: 0 }, async (s) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.addr.respPort! });
    assert.match(await resp(conn, "SAVE"), /^-ERR Save: persistence is off/);
    assert.match(await resp(conn, "INFO", "persistence"), /evkv_persist:off\r\n/);
    conn.close();
  });
});

Deno.test("kvclient backup copies a running server's data into a dir another server can start on", async () => {
  await withDataDir(async (dir) => {
    const target = `${dir}-backup`;
    try {
      await withServer({ persist: { mode: "always", dataDir: dir } }, async (s) => {
        const c = await connect({ port: s.addr.port });
        await Promise.all(Array.from({ length: 200 }, (_, i) => c.put(key(i), value(i))));
        await c.close();
        assert.equal(await kvclient(["backup", target, "--data-dir", dir]), 0);
        // A second backup into the same place is refused.
        assert.equal(await kvclient(["backup", target, "--data-dir", dir]), 1);
      });
      await withServer({ persist: { mode: "everysec", dataDir: target } }, async (s) => {
        assert.equal(s.persistence()!.loadedKeys.reduce((a, b) => a + b, 0), 200);
        const c = await connect({ port: s.addr.port });
        assert.equal(text(await c.get(key(123))), value(123));
        await c.close();
      });
    } finally {
      await Deno.remove(target, { recursive: true }).catch(() => {});
    }
  });
});

Deno.test("a full change ring makes writers wait instead of dropping changes", async () => {
  await withDataDir(async (dir) => {
    // A ring of 64 KiB holds about 50 changes of 1 KiB; 16 connections x 16 in flight outrun it.
    const persist = { mode: "always" as const, dataDir: dir, minRingBytesForTest: 64 * 1024 };
    const big = "b".repeat(1024);
    await withServer({ persist, maxBody: 16 * 1024, respPort: 0 }, async (s) => {
      const clients = await Promise.all(
        Array.from({ length: 16 }, () => connect({ port: s.addr.port, maxBody: 16 * 1024 })),
      );
      await Promise.all(
        clients.map((c, ci) =>
          Promise.all(Array.from({ length: 64 }, (_, i) => c.put(key(ci * 64 + i), big)))
        ),
      );
      await Promise.all(clients.map((c) => c.close()));
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: s.addr.respPort! });
      const waits = Number(
        /evkv_ring_full_waits:(\d+)/.exec(await resp(conn, "INFO", "persistence"))![1],
      );
      conn.close();
      assert.ok(waits > 0, "the ring never filled, so backpressure was not exercised");
    });
    // Every change reached the disk.
    let rows = 0;
    for (let sh = 0; sh < 2; sh++) {
      const db = new DatabaseSync(shardFile(dir, sh), { readOnly: true });
      rows += (db.prepare("SELECT count(*) AS n FROM kv").get() as { n: number }).n;
      db.close();
    }
    assert.equal(rows, 16 * 64);
  });
});
