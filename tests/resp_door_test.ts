/**
 * What the RESP door does beyond Redis's replies: transactions bounded to
 * one shard (hash tags), hostile input that stays cheap, the output cap,
 * RESP3 replies, the handshake commands Redis 7.0 lacks, and INFO's shape.
 */
import assert from "node:assert/strict";
import { ArgSpans, checkCommand } from "../src/resp/frame.ts";
import { compileGlob } from "../src/resp/glob.ts";
import { shardOfKey } from "../src/kv/route.ts";
import { connect } from "../src/client/mod.ts";
import { LAYOUTS, utf8, withServer } from "./support.ts";
import { have, multibulk, RespConn } from "./resp_support.ts";

const pool = { ...LAYOUTS[0].options, respPort: 0 };
const inline = { ...LAYOUTS[1].options, respPort: 0 };

/** Two keys that live on different shards of two. */
function keysOnTwoShards(): [string, string] {
  for (let i = 1;; i++) {
    const k = `other${i}`;
    if (shardOfKey(utf8(k), 0, k.length, 2) !== shardOfKey(utf8("one"), 0, 3, 2)) return ["one", k];
  }
}

Deno.test("a hash tag decides the shard of a key, so tagged keys share one", () => {
  const a = utf8("{user:1}:name");
  const b = utf8("{user:1}:mail");
  const tag = utf8("user:1");
  for (const shards of [2, 3, 8]) {
    assert.equal(shardOfKey(a, 0, a.length, shards), shardOfKey(b, 0, b.length, shards));
    assert.equal(shardOfKey(a, 0, a.length, shards), shardOfKey(tag, 0, tag.length, shards));
  }
  // An empty tag is no tag: the whole key decides.
  const empty = utf8("{}x");
  assert.equal(shardOfKey(empty, 0, empty.length, 1 << 30), shardOfKey(empty, 0, 3, 1 << 30));
});

for (const [name, options] of [["pool", pool], ["inline", inline]] as const) {
  Deno.test(`${name}: EXEC of keys on two shards gets -CROSSSLOT and applies nothing`, async () => {
    await withServer(options, async (server) => {
      using c = await RespConn.open(server.addr.respPort!);
      const [k1, k2] = keysOnTwoShards();
      assert.equal(await c.command("MULTI"), "+OK\r\n");
      assert.equal(await c.command("SET", k1, "a"), "+QUEUED\r\n");
      assert.equal(await c.command("SET", k2, "b"), "+QUEUED\r\n");
      assert.match(await c.command("EXEC"), /^-CROSSSLOT /);
      assert.equal(await c.command("EXISTS", k1, k2), ":0\r\n");
      // The same with a shared hash tag runs, atomically on one shard.
      await c.command("MULTI");
      await c.command("SET", `{t}${k1}`, "a");
      await c.command("INCR", `{t}${k2}`);
      assert.equal(await c.command("EXEC"), "*2\r\n+OK\r\n:1\r\n");
      // Keys written through RESP under a tag read the same through wire v1.
      await using kv = await connect({ port: server.addr.port });
      assert.equal(new TextDecoder().decode(await kv.get(`{t}${k1}`)), "a");
      assert.equal(await kv.incr(`{t}${k2}`), 2n);
      assert.equal(await c.command("GET", `{t}${k2}`), "$1\r\n2\r\n");
    });
  });
}

Deno.test("commands on hashes, lists, sets and pub/sub get Redis's unknown-command error", async () => {
  await withServer(pool, async (server) => {
    using c = await RespConn.open(server.addr.respPort!);
    for (
      const cmd of [["HSET", "h", "f", "v"], ["LPUSH", "l", "x"], ["SADD", "s", "x"], [
        "SUBSCRIBE",
        "ch",
      ]]
    ) {
      const args = cmd.slice(1).map((a) => `'${a}' `).join("");
      assert.equal(
        await c.command(...cmd),
        `-ERR unknown command '${cmd[0]}', with args beginning with: ${args}\r\n`,
      );
    }
    assert.equal(await c.command("PING"), "+PONG\r\n");
  });
});

Deno.test("multi-key commands spanning shards are split and joined in key order", async () => {
  await withServer(pool, async (server) => {
    using c = await RespConn.open(server.addr.respPort!);
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    assert.equal(await c.command("MSET", ...keys.flatMap((k) => [k, `v-${k}`])), "+OK\r\n");
    const want = "*21\r\n" + keys.map((k) => `$${k.length + 2}\r\nv-${k}\r\n`).join("") + "$-1\r\n";
    assert.equal(await c.command("MGET", ...keys, "missing"), want);
    assert.equal(await c.command("EXISTS", ...keys, "missing"), ":20\r\n");
    assert.equal(await c.command("MSETNX", "k0", "x", "fresh", "y"), ":0\r\n");
    assert.equal(await c.command("DEL", ...keys), ":20\r\n");
    assert.equal(await c.command("DBSIZE"), ":0\r\n");
  });
});

Deno.test("RESP3 after HELLO 3: null, maps and doubles where Redis 7 uses them; CLIENT SETINFO and NO-TOUCH", async () => {
  await withServer(pool, async (server) => {
    using c = await RespConn.open(server.addr.respPort!);
    const hello = await c.command("HELLO", "3", "AUTH", "default", "anything", "SETNAME", "app");
    assert.match(hello, /^%7\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n/);
    assert.match(hello, /\$5\r\nproto\r\n:3\r\n/);
    assert.equal(await c.command("GET", "missing"), "_\r\n");
    assert.equal(
      await c.command("CONFIG", "GET", "maxmemory"),
      "%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n",
    );
    assert.equal(await c.command("CLIENT", "GETNAME"), "$3\r\napp\r\n");
    assert.equal(await c.command("CLIENT", "SETINFO", "LIB-NAME", "evkv-test"), "+OK\r\n");
    assert.equal(await c.command("CLIENT", "SETINFO", "LIB-VER", "1.0"), "+OK\r\n");
    assert.match(
      await c.command("CLIENT", "INFO"),
      /name=app .*resp=3 lib-name=evkv-test lib-ver=1\.0/,
    );
    assert.equal(await c.command("CLIENT", "NO-TOUCH", "on"), "+OK\r\n");
    assert.match(await c.command("HELLO", "3", "AUTH", "someone", "pw"), /^-WRONGPASS /);
    assert.match(await c.command("HELLO", "2"), /^\*14\r\n/);
    assert.equal(await c.command("GET", "missing"), "$-1\r\n");
  });
});

Deno.test("INFO has Redis's sections, answers one section when asked, and counts keys in db0", async () => {
  await withServer(pool, async (server) => {
    using c = await RespConn.open(server.addr.respPort!);
    for (let i = 0; i < 10; i++) {
      await c.command("SET", `info:${i}`, "v", ...(i < 3 ? ["EX", "100"] : []));
    }
    const all = await c.command("INFO");
    for (
      const s of [
        "Server",
        "Clients",
        "Memory",
        "Persistence",
        "Stats",
        "Replication",
        "CPU",
        "Keyspace",
      ]
    ) {
      assert.match(all, new RegExp(`# ${s}\r\n`));
    }
    assert.match(all, /redis_version:7\.\d+\.\d+\r\n/);
    assert.match(all, /evkv_version:/);
    assert.match(all, /role:master\r\n/);
    assert.match(all, /db0:keys=10,expires=3,avg_ttl=0\r\n/);
    const used = Number(all.match(/used_memory:(\d+)/)![1]);
    assert.ok(used > 0, "used_memory counts the stored keys");
    const one = await c.command("INFO", "keyspace");
    assert.match(one, /^\$\d+\r\n# Keyspace\r\ndb0:keys=10,/);
    assert.doesNotMatch(one, /# Server/);
  });
});

Deno.test("a command over the body limit is refused from its headers and closes only that connection", async () => {
  await withServer({ ...pool, maxBody: 64 * 1024 }, async (server) => {
    using bad = await RespConn.open(server.addr.respPort!);
    using good = await RespConn.open(server.addr.respPort!);
    // Many small arguments: no single bulk is too big, the command is.
    const head = `*100000\r\n$4\r\nMSET\r\n`;
    await bad.send(utf8(head));
    const chunk = utf8("$3\r\nkey\r\n$3\r\nval\r\n".repeat(1000));
    let reply: Uint8Array | null = null;
    for (let i = 0; i < 10 && reply === null; i++) {
      try {
        await bad.send(chunk);
      } catch {
        break;
      }
      if (i === 9) reply = await bad.reply();
    }
    reply ??= await bad.reply();
    assert.match(
      new TextDecoder().decode(reply!),
      /^-ERR Protocol error: command larger than 65536 bytes/,
    );
    assert.equal(await bad.reply(), null, "the connection is closed");
    assert.equal(await good.command("PING"), "+PONG\r\n");
  });
});

Deno.test("a reply or a transaction that would pass the body limit gets an error instead", async () => {
  await withServer({ ...pool, maxBody: 64 * 1024 }, async (server) => {
    using c = await RespConn.open(server.addr.respPort!);
    const big = "x".repeat(40 * 1024);
    assert.equal(await c.command("SET", "{b}1", big), "+OK\r\n");
    assert.equal(await c.command("SET", "{b}2", big), "+OK\r\n");
    assert.match(await c.command("MGET", "{b}1", "{b}2"), /^-ERR .*reply limit/);
    assert.equal(await c.command("STRLEN", "{b}1"), `:${big.length}\r\n`);
    // A transaction is bounded the same way: what EXEC sends must fit in one body.
    assert.equal(await c.command("MULTI"), "+OK\r\n");
    assert.equal(await c.command("SET", "{b}3", big), "+QUEUED\r\n");
    assert.match(await c.command("SET", "{b}4", big), /^-ERR Transaction over 65536 bytes/);
    assert.match(await c.command("EXEC"), /^-EXECABORT /);
    assert.equal(await c.command("EXISTS", "{b}3", "{b}4"), ":0\r\n");
  });
});

Deno.test("an unfinished command resumes where the last read stopped", () => {
  const cmd = multibulk(["SET", "key", "value"].map(utf8));
  const args = new ArgSpans();
  // Up to the middle of the third argument: two arguments are done.
  const cut = cmd.length - 4;
  assert.equal(checkCommand(cmd, 0, cut, 1 << 20, args), 0);
  assert.equal(args.count, 2);
  const resumeAt = args.next;
  assert.equal(checkCommand(cmd, 0, cut, 1 << 20, args), 0);
  assert.equal(args.count, 2, "the parsed arguments are kept, not parsed again");
  assert.equal(args.next, resumeAt);
  assert.equal(checkCommand(cmd, 0, cmd.length, 1 << 20, args), cmd.length);
  assert.equal(args.count, 3);
});

Deno.test("MATCH runs in linear time on patterns that make a backtracking matcher explode", () => {
  const key = utf8("a".repeat(5000));
  const hostile = compileGlob(utf8("*a*a*a*a*a*a*a*a*a*a*a*a*b"));
  assert.equal(hostile.matches(key), false);
  assert.equal(compileGlob(utf8("*a*a*a*a*a*a*a*a*a*a*a*a")).matches(key), true);
  const g = compileGlob(utf8("user:[0-9]?\\*[^x]"));
  assert.equal(g.matches(utf8("user:12*y")), true);
  assert.equal(g.matches(utf8("user:12*x")), false);
  assert.deepEqual([...compileGlob(utf8("user:*")).prefix], [...utf8("user:")]);
  assert.equal(compileGlob(utf8("exact")).matches(utf8("exactly")), false);
});

Deno.test({
  name: "prometheus-redis-exporter reads the key counts and memory from INFO",
  ignore: !have("prometheus-redis-exporter") && Deno.env.get("CI") !== "true",
  fn: async () => {
    await withServer(pool, async (server) => {
      using c = await RespConn.open(server.addr.respPort!);
      for (let i = 0; i < 7; i++) {
        await c.command("SET", `exp:${i}`, "v", ...(i < 2 ? ["EX", "100"] : []));
      }
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      const exporter = new Deno.Command("prometheus-redis-exporter", {
        args: [
          "-redis.addr",
          `redis://127.0.0.1:${server.addr.respPort}`,
          "-web.listen-address",
          `127.0.0.1:${port}`,
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        let metrics = "";
        for (let i = 0; i < 100 && !metrics.includes("redis_up"); i++) {
          try {
            metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        assert.match(metrics, /^redis_up 1$/m);
        assert.match(metrics, /^redis_db_keys\{db="db0"\} 7$/m);
        assert.match(metrics, /^redis_db_keys_expiring\{db="db0"\} 2$/m);
        const used = Number(/^redis_memory_used_bytes (\S+)$/m.exec(metrics)?.[1]);
        assert.ok(used > 0, "used memory is reported");
        assert.match(metrics, /redis_version="7\.\d+\.\d+"/);
      } finally {
        exporter.kill("SIGTERM");
        await exporter.status;
      }
    });
  },
});
