/**
 * Resource accounting end to end: the real `deno task serve` entry in a
 * subprocess, mixed and hostile traffic, SIGUSR2 dumps under load, then a
 * SIGTERM drain whose final table must be all zero.
 */
import assert from "node:assert/strict";
import { KvMethod, pb, RESOURCE_KINDS } from "../mod.ts";
import { encodeFrame, writeHeader } from "../src/protocol/frame.ts";
import { TRANSIENT_KINDS } from "../src/stats/resources.ts";
import { connect } from "../src/client/mod.ts";
import { sleep, utf8 } from "./support.ts";

const CLI = new URL("../src/kvserver/cli.ts", import.meta.url).pathname;

interface Running {
  child: Deno.ChildProcess;
  port: number;
  /** Everything the server printed so far, and what it prints later. */
  stdout: Promise<string>;
  stderr: Promise<string>;
}

/** Starts `deno task serve`'s entry on a free port with `flags`. */
async function startServer(flags: string[]): Promise<Running> {
  // Memory only: these servers must not lock (or fill) ./data.
  flags = ["--persist", "off", ...flags];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "--allow-net", "--allow-read", CLI, "--port", "0", ...flags],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  const deadline = Date.now() + 15_000;
  while (!/listening on [^:]+:(\d+)/.test(seen)) {
    assert.ok(Date.now() < deadline, `server did not start: ${seen}`);
    const { value, done } = await reader.read();
    assert.ok(!done, `server exited before listening: ${seen}`);
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
  const stderr = new Response(child.stderr).text();
  return { child, port, stdout, stderr };
}

interface Row {
  kind: string;
  held: number;
  alloc: number;
  free: number;
}

/** The rows of the last resource table in `out`. */
function lastTable(out: string): Row[] {
  const at = out.lastIndexOf("==== evkv resources");
  assert.ok(at >= 0, "no resource table printed");
  const rows: Row[] = [];
  for (const line of out.slice(at).split("\n").slice(2)) {
    const m = /^(\w+)\s+(-?\d+)\s+(\d+)\s+(\d+)$/.exec(line.trim());
    if (!m) break;
    rows.push({ kind: m[1], held: Number(m[2]), alloc: Number(m[3]), free: Number(m[4]) });
  }
  return rows;
}

/** Well-behaved clients: pipelined Gets and Puts, some with 256 KiB values. */
async function politeLoad(port: number, until: number): Promise<number> {
  let done = 0;
  const big = "v".repeat(256 * 1024);
  await Promise.all(Array.from({ length: 3 }, async (_, c) => {
    await using kv = await connect({ port });
    for (let round = 0; round < 10_000 && Date.now() < until; round++) {
      await Promise.all(Array.from({ length: 24 }, (_, i) => {
        const key = `c${c}-k${i}`;
        if (i === 0 && round % 4 === 0) return kv.put(key, big);
        return i % 3 === 0 ? kv.put(key, `r${round}`) : kv.get(key);
      }));
      done += 24;
    }
  }));
  return done;
}

/** Hostile peers: bad frames, half frames, abrupt disconnects, never reading. */
async function hostileLoad(port: number, until: number): Promise<number> {
  let peers = 0;
  for (let round = 0; round < 500 && Date.now() < until; round++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    peers++;
    const kind = round % 6;
    try {
      if (kind === 0) {
        // Error frames: corrupt CRC, unknown method, empty key; then vanish.
        const bad = encodeFrame({
          flags: 0,
          code: KvMethod.Get,
          requestId: 1,
          status: 0,
          timeoutMs: 0,
        }, utf8("xx"));
        bad[bad.length - 1] ^= 0xff;
        await conn.write(bad);
        await conn.write(
          encodeFrame(
            { flags: 0, code: 999, requestId: 2, status: 0, timeoutMs: 0 },
            new Uint8Array(0),
          ),
        );
        await conn.write(
          encodeFrame(
            { flags: 0, code: KvMethod.Get, requestId: 3, status: 0, timeoutMs: 0 },
            new Uint8Array(0),
          ),
        );
      } else if (kind === 1) {
        // Half a frame, then close.
        const f = encodeFrame({
          flags: 0,
          code: KvMethod.Put,
          requestId: 1,
          status: 0,
          timeoutMs: 0,
        }, pb.PutRequest.encode({ key: utf8("h"), value: new Uint8Array(4096) }).finish());
        await conn.write(f.subarray(0, 2000));
      } else if (kind === 2) {
        // Many pipelined requests, close without reading a single reply.
        const frames: number[] = [];
        for (let i = 0; i < 200; i++) {
          frames.push(
            ...encodeFrame(
              { flags: 0, code: KvMethod.Get, requestId: i, status: 0, timeoutMs: 0 },
              pb.GetRequest.encode({ key: utf8(`k${i}`) }).finish(),
            ),
          );
        }
        await conn.write(new Uint8Array(frames));
      } else if (kind === 3) {
        // Garbage: the server drops the connection without a reply.
        await conn.write(utf8("GET / HTTP/1.1\r\n\r\n"));
      } else if (kind === 4) {
        // A header promising a large body that never comes.
        const h = new Uint8Array(24);
        writeHeader(h, 0, 0, KvMethod.Put, 9, 0, 1024 * 1024, 0);
        await conn.write(h);
      } else {
        // A Scan (fans out to every shard), then gone before the reply.
        await conn.write(
          encodeFrame(
            { flags: 0, code: KvMethod.Scan, requestId: 1, status: 0, timeoutMs: 0 },
            pb.ScanRequest.encode({ limit: 50 }).finish(),
          ),
        );
      }
    } catch {
      // The server may already have closed it: that is its right.
    }
    await sleep(kind === 2 ? 2 : 0);
    conn.close();
  }
  return peers;
}

Deno.test("after mixed and hostile traffic with SIGUSR2 dumps, SIGTERM leaves every kind at zero", async () => {
  const server = await startServer(["--io-threads", "2", "--workers", "2", "--strict-leaks"]);
  const until = Date.now() + 2000;
  const polite = politeLoad(server.port, until);
  const hostile = hostileLoad(server.port, until);
  const progress: number[] = [];
  let dumps = 0;
  for (let i = 0; i < 4; i++) {
    await sleep(350);
    Deno.kill(server.child.pid, "SIGUSR2");
    dumps++;
    // Still serving right after a dump: a fresh client gets an answer.
    await using probe = await connect({ port: server.port, timeoutMs: 5000 });
    progress.push((await probe.stats()).find((r) => r.name === "requests")!.value);
  }
  const [ops, peers] = await Promise.all([polite, hostile]);
  assert.ok(ops > 0 && peers > 0);
  for (let i = 1; i < progress.length; i++) {
    assert.ok(progress[i] > progress[i - 1], `requests kept flowing between dumps: ${progress}`);
  }

  // With every client gone, Stats over the wire already reads zero held.
  let rows = new Map<string, number>();
  for (let attempt = 0; attempt < 50; attempt++) {
    await using probe = await connect({ port: server.port });
    rows = new Map((await probe.stats()).map((r) => [r.name, r.value]));
    if (rows.get("res.connection.alloc") === rows.get("res.connection.free")) break;
    await sleep(50);
  }
  for (const kind of TRANSIENT_KINDS) {
    assert.equal(rows.get(`res.${kind}.held_bytes`), 0, `${kind} held bytes over the wire`);
    assert.equal(
      rows.get(`res.${kind}.alloc`),
      rows.get(`res.${kind}.free`),
      `${kind} alloc == free over the wire`,
    );
  }
  assert.ok(rows.get("errors.CRC_MISMATCH")! > 0 && rows.get("errors.UNKNOWN_METHOD")! > 0);

  Deno.kill(server.child.pid, "SIGTERM");
  const [status, out, err] = await Promise.all([server.child.status, server.stdout, server.stderr]);
  assert.equal(status.code, 0, `exit code; stderr: ${err}`);
  assert.ok(
    (out.match(/==== evkv resources/g) ?? []).length >= dumps + 1,
    "each SIGUSR2 and the exit printed a table",
  );
  const table = lastTable(out);
  assert.deepEqual(table.map((r) => r.kind), [...RESOURCE_KINDS]);
  for (const r of table) {
    assert.equal(r.held, 0, `${r.kind} held bytes at exit`);
    assert.equal(r.alloc, r.free, `${r.kind} alloc == free at exit`);
  }
  assert.ok(
    table.find((r) => r.kind === "request")!.alloc > 1000,
    "the table counted real traffic",
  );
  assert.match(out, /stopped cleanly/);
});

Deno.test("a deliberate leak is reported at exit, and --strict-leaks turns it into a failure", async () => {
  for (const strict of [true, false]) {
    const server = await startServer([
      "--io-threads",
      "1",
      "--workers",
      "1",
      "--test-leak",
      "task",
      ...(strict ? ["--strict-leaks"] : []),
    ]);
    await using kv = await connect({ port: server.port });
    assert.equal(await kv.put("k", "v"), false);
    await kv.close();
    Deno.kill(server.child.pid, "SIGTERM");
    const [status, out, err] = await Promise.all([
      server.child.status,
      server.stdout,
      server.stderr,
    ]);
    assert.equal(status.code, strict ? 1 : 0);
    assert.match(err, /resources not released at exit: task \(held 1 B, alloc \d+, free \d+\)/);
    const task = lastTable(out).find((r) => r.kind === "task")!;
    assert.equal(task.alloc - task.free, 1);
    assert.doesNotMatch(out, /stopped cleanly/);
  }
});
