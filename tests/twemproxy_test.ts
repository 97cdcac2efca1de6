/**
 * Scale-out through twemproxy (Debian's `nutcracker`): three evkv servers
 * behind the proxy on loopback, driven with redis-cli; the client
 * library's ketama ring must put every key where the proxy did; and when a
 * server stops, clients see errors until the proxy ejects it, then its keys
 * land on the others where the ring of the live servers says.
 */
import assert from "node:assert/strict";
import { serve, type Server } from "../mod.ts";
import { connect, connectSharded, KetamaRing } from "../src/client/mod.ts";
import { sleep } from "./support.ts";

function have(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}
const TOOLS = have("nutcracker") && have("redis-cli");
// CI installs them (.ci/run): there a missing tool is a failure, not a skip.
const ignore = !TOOLS && Deno.env.get("CI") !== "true";

const decoder = new TextDecoder();
const NAMES = ["evkv-a", "evkv-b", "evkv-c"];
const KEYS = 1000;

async function sh(script: string, stdin = ""): Promise<string> {
  const child = new Deno.Command("sh", {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  assert.ok(out.success, `${script}: ${decoder.decode(out.stderr)}`);
  return decoder.decode(out.stdout);
}

/** redis-cli against `port`, commands one per line on stdin; one line of output per reply. */
async function redisCli(port: number, lines: string[]): Promise<string[]> {
  const out = await sh(`redis-cli -p ${port}`, lines.join("\n") + "\n");
  return out.replace(/\n$/, "").split("\n");
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * The sample config in examples/, pointed at these servers' RESP ports, and
 * a second pool of the same servers that hashes keys with md5.
 */
async function proxyConfig(listen: number, md5: number, respPorts: number[]): Promise<string> {
  const sample = await Deno.readTextFile(new URL("../examples/nutcracker.yml", import.meta.url));
  const pool = (port: number) => {
    let i = 0;
    return sample
      .replace(/listen: 127\.0\.0\.1:\d+/, `listen: 127.0.0.1:${port}`)
      .replace(
        /127\.0\.0\.1:\d+:1 (evkv-[abc])/g,
        (_m, name) => `127.0.0.1:${respPorts[i++]}:1 ${name}`,
      );
  };
  const second = pool(md5).replace(/^evkv:$/m, "evkv_md5:").replace(
    /hash: fnv1a_64/,
    "hash: md5",
  );
  assert.match(second, /^evkv_md5:$/m);
  assert.match(second, /hash: md5/);
  return `${pool(listen)}\n${second}`;
}

interface Proxy {
  /** The sample's pool (fnv1a_64). */
  port: number;
  /** The same servers, keys hashed with md5. */
  md5Port: number;
  stop(): Promise<void>;
}

async function startProxy(respPorts: number[]): Promise<Proxy> {
  const port = freePort();
  const md5Port = freePort();
  const stats = freePort();
  const config = await proxyConfig(port, md5Port, respPorts);
  // The test may not write files itself: a shell does.
  const file = (await sh('f=$(mktemp --suffix=.yml) && cat > "$f" && echo "$f"', config))
    .trim();
  const child = new Deno.Command("nutcracker", {
    args: ["-c", file, "-s", String(stats), "-a", "127.0.0.1", "-o", "/dev/null"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Ready once it answers PING (it answers that itself).
  for (let i = 0;; i++) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      break;
    } catch {
      assert.ok(i < 100, "nutcracker did not start listening");
      await sleep(50);
    }
  }
  return {
    port,
    md5Port,
    stop: async () => {
      child.kill("SIGTERM");
      await child.stderr.cancel();
      await child.status;
      await sh(`rm -f "${file}"`);
    },
  };
}

Deno.test({
  name:
    "three servers behind nutcracker: redis-cli writes and reads through it, keys spread, connectSharded agrees key by key, and a stopped server is ejected",
  ignore,
  async fn() {
    const servers: Server[] = [];
    for (let i = 0; i < 3; i++) {
      servers.push(await serve({ port: 0, respPort: 0, ioThreads: 1, mode: "inline" }));
    }
    const respPorts = servers.map((s) => s.addr.respPort!);
    const proxy = await startProxy(respPorts);
    const live = new Set(servers);
    try {
      // Write through the proxy with redis-cli, read back through it.
      // Some keys are not ASCII: twemproxy hashes bytes through a signed
      // char, and the ring must do the same.
      const keys = Array.from({ length: KEYS }, (_, i) => i % 10 === 9 ? `ключ:${i}` : `key:${i}`);
      const set = await redisCli(proxy.port, keys.map((k) => `SET ${k} v-${k}`));
      assert.deepEqual(new Set(set), new Set(["OK"]));
      const some = keys.slice(0, 50);
      const mget = await redisCli(proxy.port, [`MGET ${some.join(" ")}`]);
      assert.deepEqual(mget, some.map((k) => `v-${k}`));

      // The spread: every server holds a fair part, and together all keys.
      const sizes = await Promise.all(
        respPorts.map(async (p) => Number((await redisCli(p, ["DBSIZE"]))[0])),
      );
      assert.equal(sizes.reduce((a, b) => a + b, 0), KEYS);
      for (const n of sizes) assert.ok(n > KEYS / 6 && n < KEYS / 2, `spread ${sizes}`);

      // Key by key: the server connectSharded picks is the one that has it.
      await using sharded = await connectSharded(
        servers.map((s, i) => ({ port: s.addr.port, name: NAMES[i] })),
        { hash: "fnv1a_64" },
      );
      const direct = await Promise.all(servers.map((s) => connect({ port: s.addr.port })));
      try {
        const ownersOf = (ks: string[]) =>
          Promise.all(ks.map(async (k) => {
            const found = await Promise.all(direct.map((c) => c.get(k)));
            const at = found.flatMap((v, i) => (v ? [i] : []));
            assert.equal(at.length, 1, `${k} is on exactly one server`);
            return at[0];
          }));
        const owners = await ownersOf(keys);
        const disagree = keys.filter((k, i) => sharded.serverFor(k) !== owners[i]);
        assert.deepEqual(disagree, [], "keys placed elsewhere than by nutcracker");
        // And the other way: what the sharded client writes, the proxy reads.
        await sharded.put("from:wire", "hello");
        assert.deepEqual(await redisCli(proxy.port, ["GET from:wire"]), ["hello"]);

        // The md5 pool: same servers, another hash, the same agreement.
        const md5Keys = Array.from(
          { length: 300 },
          (_, i) => i % 10 === 9 ? `mд5:${i}` : `m5:${i}`,
        );
        const md5Set = await redisCli(proxy.md5Port, md5Keys.map((k) => `SET ${k} x`));
        assert.deepEqual(new Set(md5Set), new Set(["OK"]));
        const md5Ring = new KetamaRing(NAMES.map((name) => ({ name })), { hash: "md5" });
        const md5Owners = await ownersOf(md5Keys);
        const md5Disagree = md5Keys.filter((k, i) => md5Ring.nodeFor(k) !== md5Owners[i]);
        assert.deepEqual(md5Disagree, [], "md5: keys placed elsewhere than by nutcracker");
        await Promise.all(md5Keys.map((k) => direct[md5Ring.nodeFor(k)].delete(k)));
      } finally {
        await Promise.all(direct.map((c) => c.close()));
      }

      // Stop evkv-b. Its keys first fail (the proxy cannot reach it), then,
      // once it is ejected (server_failure_limit), go to the live servers,
      // where a ring of the two live servers says.
      const dead = 1;
      const victim = keys.find((k) => sharded.serverFor(k) === dead)!;
      await servers[dead].shutdown();
      live.delete(servers[dead]);
      const seen: string[] = [];
      for (let i = 0; i < 20; i++) {
        const [reply] = await redisCli(proxy.port, [`GET ${victim}`]);
        seen.push(reply);
        if (reply === "") break; // nil: ejected, the key now maps to a live server
        await sleep(100);
      }
      // What a client sees: errors while the proxy still tries the dead
      // server, then, once it is ejected, a miss (the key now maps to a
      // live server that never had it).
      console.log(`GET ${victim} after its server stopped: ${JSON.stringify(seen)}`);
      assert.match(seen[0], /^ERR /, `the first read after the stop is an error: ${seen}`);
      for (const r of seen.slice(0, -1)) assert.match(r, /^ERR /);
      assert.equal(seen.at(-1), "", `the key reads as missing once ejected: ${seen}`);
      assert.deepEqual(await redisCli(proxy.port, [`SET ${victim} again`]), ["OK"]);
      const ring2 = new KetamaRing([{ name: NAMES[0] }, { name: NAMES[2] }], { hash: "fnv1a_64" });
      const now = [servers[0], servers[2]][ring2.nodeFor(victim)];
      await using c = await connect({ port: now.addr.port });
      assert.equal(decoder.decode(await c.get(victim)), "again");
      // Keys of the live servers were never affected.
      const kept = keys.find((k) => sharded.serverFor(k) === 0)!;
      assert.deepEqual(await redisCli(proxy.port, [`GET ${kept}`]), [`v-${kept}`]);
    } finally {
      await proxy.stop();
      for (const s of live) await s.shutdown();
    }
  },
});

Deno.test("the ketama ring gives 160 points per server at equal weights and follows the weights", () => {
  const ring = new KetamaRing([{ name: "a" }, { name: "b" }, { name: "c" }]);
  assert.equal(ring.size, 480);
  const weighted = new KetamaRing([{ name: "a", weight: 1 }, { name: "b", weight: 3 }]);
  assert.equal(weighted.size, 80 + 240);
  const counts = [0, 0];
  for (let i = 0; i < 4000; i++) counts[weighted.nodeFor(`k${i}`)]++;
  assert.ok(counts[1] > 2 * counts[0], `weights steer keys: ${counts}`);
  assert.throws(() => new KetamaRing([]), /no servers/);
  assert.throws(() => new KetamaRing([{ name: "a", weight: 0 }]), /weight 0/);
});

Deno.test("the ketama ring's hash tag places keys by the part inside the tag", () => {
  const ring = new KetamaRing([{ name: "a" }, { name: "b" }, { name: "c" }], { hashTag: "{}" });
  for (let i = 0; i < 50; i++) {
    assert.equal(ring.nodeFor(`{user:${i}}:name`), ring.nodeFor(`user:${i}`));
    assert.equal(ring.nodeFor(`{user:${i}}:mail`), ring.nodeFor(`{user:${i}}:name`));
  }
  // An empty tag is no tag.
  assert.equal(
    ring.nodeFor("{}x"),
    new KetamaRing([{ name: "a" }, { name: "b" }, {
      name: "c",
    }]).nodeFor("{}x"),
  );
});
