/**
 * The RESP2 front door, driven by the real redis-cli and redis-benchmark
 * (Debian's redis-tools; .ci/run installs them).
 */
import assert from "node:assert/strict";
import { connect } from "../src/client/mod.ts";
import type { Server } from "../mod.ts";
import { LAYOUTS, sleep, text, utf8, withServer } from "./support.ts";

function have(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}
const TOOLS = have("redis-cli") && have("redis-benchmark");
// CI installs the tools: there, missing tools are a failure, not a skip.
const ignore = !TOOLS && Deno.env.get("CI") !== "true";

async function run(cmd: string, args: string[], stdin?: Uint8Array): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  const all = text(out.stdout) + text(out.stderr);
  assert.ok(out.success, `${cmd} ${args.slice(0, 6).join(" ")} failed: ${all}`);
  return text(out.stdout);
}

/** redis-cli against the server's RESP port; output without the trailing newline. */
async function cli(server: Server, ...args: string[]): Promise<string> {
  return (await run("redis-cli", ["-p", String(server.addr.respPort), ...args])).replace(/\n$/, "");
}

const RESP_LAYOUTS = [LAYOUTS[0], LAYOUTS[3]]; // pool + reuseport, inline + main accept

/** Sends one RESP command on `conn` and reads one whole reply (arrays included). */
async function command(conn: Deno.Conn, reader: RespReader, ...args: string[]): Promise<unknown> {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) parts.push(`$${utf8(a).length}\r\n${a}\r\n`);
  await conn.write(utf8(parts.join("")));
  return await reader.next();
}

/** A minimal RESP reply reader for tests. */
class RespReader {
  #buf = "";
  readonly #conn: Deno.Conn;
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  async #line(): Promise<string> {
    for (let i = 0; i < 1000; i++) {
      const at = this.#buf.indexOf("\r\n");
      if (at >= 0) {
        const line = this.#buf.slice(0, at);
        this.#buf = this.#buf.slice(at + 2);
        return line;
      }
      const chunk = new Uint8Array(65536);
      const n = await this.#conn.read(chunk);
      assert.ok(n !== null, "connection closed mid-reply");
      this.#buf += text(chunk.subarray(0, n));
    }
    throw new Error("no reply line");
  }
  async next(): Promise<unknown> {
    const line = await this.#line();
    if (line[0] === "*") {
      const items = [];
      for (let i = 0; i < Number(line.slice(1)); i++) items.push(await this.next());
      return items;
    }
    if (line[0] === "$") return Number(line.slice(1)) < 0 ? null : await this.#line();
    return line;
  }
}

/** conn.read that gives up (null) after `ms`. */
async function readWithin(conn: Deno.Conn, buf: Uint8Array, ms: number): Promise<number | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((r) => timer = setTimeout(() => r(null), Math.max(1, ms)));
  try {
    return await Promise.race([conn.read(buf), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function scanByHand(port: number, pattern: string, count: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new RespReader(conn);
  const keys: string[] = [];
  let cursor = "0";
  let pages = 0;
  try {
    do {
      const [next, batch] = await command(
        conn,
        reader,
        "SCAN",
        cursor,
        "MATCH",
        pattern,
        "COUNT",
        String(count),
      ) as [string, string[]];
      assert.ok(batch.length <= count);
      keys.push(...batch);
      cursor = next;
      pages++;
    } while (cursor !== "0" && pages < 1000);
  } finally {
    conn.close();
  }
  return { keys, pages };
}

for (const layout of RESP_LAYOUTS) {
  Deno.test({
    name: `${layout.name}: redis-cli runs every supported command`,
    ignore,
    fn: async () => {
      await withServer({ ...layout.options, respPort: 0 }, async (server) => {
        assert.equal(await cli(server, "PING"), "PONG");
        assert.equal(await cli(server, "PING", "hi"), "hi");
        assert.equal(await cli(server, "ECHO", "hello world"), "hello world");
        assert.equal(await cli(server, "SET", "k", "v1"), "OK");
        assert.equal(await cli(server, "GET", "k"), "v1");
        assert.equal(await cli(server, "GET", "missing"), "");
        assert.equal(await cli(server, "SET", "k", "v2", "NX"), "");
        assert.equal(await cli(server, "SET", "fresh", "v", "NX"), "OK");
        assert.equal(await cli(server, "SET", "absent", "v", "XX"), "");
        assert.equal(await cli(server, "SET", "k", "v3", "XX"), "OK");
        assert.equal(await cli(server, "GET", "k"), "v3");
        assert.equal(await cli(server, "SET", "short", "v", "PX", "80"), "OK");
        assert.equal(await cli(server, "SET", "long", "v", "EX", "100"), "OK");
        assert.match(await cli(server, "SET", "bad", "v", "EX", "0"), /invalid expire time/);
        assert.match(await cli(server, "SET", "bad", "v", "BOGUS"), /syntax error/);
        await sleep(200);
        assert.equal(await cli(server, "GET", "short"), "");
        assert.equal(await cli(server, "GET", "long"), "v");
        assert.equal(await cli(server, "MSET", "a", "1", "b", "2", "c", "3"), "OK");
        assert.equal(await cli(server, "MGET", "a", "nope", "c"), "1\n\n3");
        assert.equal(await cli(server, "EXISTS", "a", "b", "nope", "a"), "3");
        assert.equal(await cli(server, "DEL", "a", "b", "nope"), "2");
        assert.equal(await cli(server, "EXISTS", "a"), "0");
        // k, fresh, long, c
        assert.equal(await cli(server, "DBSIZE"), "4");
        assert.match(await cli(server, "INFO"), /requests:\d+/);
        assert.match(await cli(server, "COMMAND", "COUNT"), /^\d+$/);
        assert.match(
          await cli(server, "NOSUCH", "x"),
          /ERR unknown command 'NOSUCH', with args beginning with: 'x'/,
        );
        assert.match(await cli(server, "GET"), /wrong number of arguments for 'get'/);
        for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
          assert.match(await cli(server, name), /ERR unknown command/, name);
        }
        assert.equal(await cli(server, "QUIT"), "OK");
        // Binary-safe values survive.
        assert.equal(await cli(server, "SET", "bin", "a\tb c"), "OK");
        assert.equal(await cli(server, "GET", "bin"), "a\tb c");
      });
    },
  });

  Deno.test({
    name:
      `${layout.name}: SCAN with MATCH and COUNT pages through every key, also with redis-cli --scan`,
    ignore,
    fn: async () => {
      await withServer({ ...layout.options, respPort: 0 }, async (server) => {
        const args = ["MSET"];
        for (let i = 0; i < 150; i++) args.push(`user:${i}`, "x", `other:${i}`, "y");
        assert.equal(await cli(server, ...args), "OK");
        const seen = new Set(
          (await cli(server, "--scan", "--pattern", "user:*")).split("\n"),
        );
        assert.equal(seen.size, 150);
        assert.ok([...seen].every((k) => k.startsWith("user:")));
        // Cursors belong to the connection that got them: page by hand on one.
        const paged = await scanByHand(server.addr.respPort!, "other:*", 7);
        assert.equal(paged.pages > 150 / 7, true, `${paged.pages} pages`);
        assert.deepEqual(
          paged.keys.sort(),
          Array.from({ length: 150 }, (_, i) => `other:${i}`).sort(),
        );
        const glob = (await cli(server, "--scan", "--pattern", "user:1?")).split("\n").sort();
        assert.deepEqual(glob, Array.from({ length: 10 }, (_, i) => `user:1${i}`).sort());
        const first = (await cli(server, "SCAN", "0", "COUNT", "5")).split("\n");
        assert.notEqual(first[0], "0", "a cursor to continue from");
        assert.equal(first.length, 6);
      });
    },
  });

  Deno.test({
    name: `${layout.name}: redis-cli --pipe loads 100k SETs with no errors`,
    ignore,
    fn: async () => {
      await withServer({ ...layout.options, respPort: 0 }, async (server) => {
        const parts: string[] = [];
        for (let i = 0; i < 100_000; i++) {
          const k = `pk:${i}`;
          const v = `val-${i}`;
          parts.push(`*3\r\n$3\r\nSET\r\n$${k.length}\r\n${k}\r\n$${v.length}\r\n${v}\r\n`);
        }
        const out = await run(
          "redis-cli",
          ["-p", String(server.addr.respPort), "--pipe"],
          utf8(parts.join("")),
        );
        assert.match(out, /errors: 0, replies: 100000/);
        assert.equal(await cli(server, "DBSIZE"), "100000");
        assert.equal(await cli(server, "GET", "pk:99999"), "val-99999");
      });
    },
  });

  Deno.test({
    name: `${layout.name}: one store behind both protocols`,
    ignore,
    fn: async () => {
      await withServer({ ...layout.options, respPort: 0 }, async (server) => {
        await using kv = await connect({ port: server.addr.port });
        assert.equal(await cli(server, "SET", "from-resp", "hello"), "OK");
        assert.equal(text(await kv.get("from-resp")), "hello");
        await kv.put("from-wire", "world");
        assert.equal(await cli(server, "GET", "from-wire"), "world");
        await kv.put("ttl-wire", "x", { ttlMs: 60_000 });
        assert.equal(await cli(server, "EXISTS", "ttl-wire"), "1");
      });
    },
  });
}

Deno.test({
  name: "RESP replies come back in request order even when shards finish out of order",
  ignore,
  fn: async () => {
    await withServer({ mode: "pool", respPort: 0 }, async (server) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.respPort! });
      const big = "v".repeat(300_000); // a slow shard: big values take longer to copy
      const cmds: string[] = [];
      const expect: string[] = [];
      for (let i = 0; i < 200; i++) {
        const value = i % 10 === 0 ? big : `v${i}`;
        cmds.push(
          `*3\r\n$3\r\nSET\r\n$${`k${i}`.length}\r\nk${i}\r\n$${value.length}\r\n${value}\r\n`,
        );
        cmds.push(`*2\r\n$3\r\nGET\r\n$${`k${i}`.length}\r\nk${i}\r\n`);
        expect.push("+OK\r\n", `$${value.length}\r\n${value}\r\n`);
      }
      cmds.push("PING\r\n");
      expect.push("+PONG\r\n");
      const want = expect.join("");
      const bytes = utf8(cmds.join(""));
      const writing = (async () => {
        for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
      })();
      let got = "";
      const buf = new Uint8Array(1 << 16);
      const decoder = new TextDecoder();
      const deadline = Date.now() + 10_000;
      while (got.length < want.length && Date.now() < deadline) {
        const n = await readWithin(conn, buf, deadline - Date.now());
        if (n === null) break;
        got += decoder.decode(buf.subarray(0, n), { stream: true });
      }
      await writing;
      conn.close();
      assert.equal(got.length, want.length);
      assert.ok(got === want, "replies are byte-for-byte in request order");
    });
  },
});

Deno.test({
  name: "redis-benchmark -t set,get -n 100000 -P 16 completes with no errors",
  ignore,
  fn: async () => {
    await withServer({ mode: "pool", respPort: 0 }, async (server) => {
      const out = await run("redis-benchmark", [
        "-p",
        String(server.addr.respPort),
        "-t",
        "set,get",
        "-n",
        "100000",
        "-P",
        "16",
        "-q",
      ]);
      assert.match(out, /SET: [\d.]+ requests per second/);
      assert.match(out, /GET: [\d.]+ requests per second/);
      assert.doesNotMatch(out, /ERR|error/i);
    });
  },
});

Deno.test({
  name: "a RESP protocol error gets -ERR Protocol error and closes only that connection",
  ignore,
  fn: async () => {
    await withServer({ mode: "pool", respPort: 0 }, async (server) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.respPort! });
      await conn.write(utf8("*1\r\n$3\r\nGET\r\n*x\r\n"));
      const buf = new Uint8Array(4096);
      let got = "";
      for (let i = 0; i < 20; i++) {
        const n = await readWithin(conn, buf, 5000);
        if (n === null) break;
        got += text(buf.subarray(0, n));
      }
      conn.close();
      assert.match(
        got,
        /^-ERR wrong number of arguments for 'get' command\r\n-ERR Protocol error: invalid multibulk length\r\n$/,
      );
      assert.equal(await cli(server, "PING"), "PONG");
    });
  },
});
