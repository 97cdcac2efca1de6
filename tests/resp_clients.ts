/**
 * The same command sequence through two real client libraries, node-redis 6
 * (default options: it opens with HELLO 3) and ioredis, with results made
 * JSON-comparable. tests/resp_record_oracle.ts records what redis-server
 * gives; tests/resp_oracle_test.ts holds evkv to it.
 */
// Test-only dependencies, pinned here rather than in deno.json's imports.
// deno-lint-ignore no-import-prefix
import { createClient } from "npm:redis@6.3.1";
// deno-lint-ignore no-import-prefix
import { Redis } from "npm:ioredis@6.0.0";

/** Results of the node-redis and ioredis sequences against `port`. */
export async function clientScript(port: number): Promise<unknown> {
  const nr = createClient({ url: `redis://127.0.0.1:${port}` });
  const nrErrors: string[] = [];
  nr.on("error", (e: Error) => nrErrors.push(e.message));
  await nr.connect();
  const nodeRedis: Record<string, unknown> = {};
  nodeRedis.flush = await nr.flushDb();
  nodeRedis.set = await nr.set("nr:k", "v", { EX: 100 });
  nodeRedis.ttl = await nr.ttl("nr:k");
  nodeRedis.get = await nr.get("nr:k");
  nodeRedis.missing = await nr.get("nr:none");
  nodeRedis.incr = [await nr.incr("nr:n"), await nr.incrBy("nr:n", 41), await nr.decr("nr:n")];
  nodeRedis.float = await nr.incrByFloat("nr:f", 2.5);
  nodeRedis.mset = await nr.mSet({ "nr:a": "1", "nr:b": "2", "nr:c": "3" });
  nodeRedis.mget = await nr.mGet(["nr:a", "nr:b", "nr:none", "nr:c"]);
  nodeRedis.exists = await nr.exists(["nr:a", "nr:b", "nr:none"]);
  nodeRedis.append = await nr.append("nr:a", "xyz");
  nodeRedis.strlen = await nr.strLen("nr:a");
  nodeRedis.getRange = await nr.getRange("nr:a", 1, -1);
  nodeRedis.setRange = await nr.setRange("nr:a", 6, "!");
  nodeRedis.getDel = await nr.getDel("nr:b");
  nodeRedis.getEx = await nr.getEx("nr:c", { type: "PX", value: 50_000 });
  nodeRedis.persist = await nr.persist("nr:c");
  nodeRedis.type = [await nr.type("nr:a"), await nr.type("nr:none")];
  nodeRedis.expire = await nr.expire("nr:a", 100);
  nodeRedis.rename = await nr.rename("nr:a", "nr:renamed");
  nodeRedis.setNx = [await nr.setNX("nr:renamed", "x"), await nr.setNX("nr:new", "x")];
  nodeRedis.del = await nr.del(["nr:new", "nr:none"]);
  nodeRedis.multi = await nr.multi().set("{nr}1", "1").incr("{nr}1").get("{nr}1").exec();
  nodeRedis.dbSize = await nr.dbSize();
  const scanned: string[] = [];
  for await (const batch of nr.scanIterator({ MATCH: "nr:*", COUNT: 2 })) {
    scanned.push(...(Array.isArray(batch) ? batch : [batch]));
  }
  nodeRedis.scan = scanned.sort();
  nodeRedis.keys = (await nr.keys("nr:*")).sort();
  nodeRedis.clientName = [await nr.clientSetName("app"), await nr.clientGetName()];
  nodeRedis.ping = await nr.ping();
  nodeRedis.errors = nrErrors;
  nr.destroy();

  const io = new Redis({ port, host: "127.0.0.1", lazyConnect: true });
  await io.connect();
  const ioredis: Record<string, unknown> = {};
  ioredis.set = await io.set("io:k", "v", "PX", 100_000, "NX");
  ioredis.setAgain = await io.set("io:k", "v", "PX", 100_000, "NX");
  ioredis.getSet = await io.getset("io:k", "w");
  ioredis.pipeline = await io.pipeline().incr("io:c").incrby("io:c", 5).get("io:c").get("io:none")
    .exec();
  ioredis.multi = await io.multi().set("{io}x", "a").append("{io}x", "b").get("{io}x").exec();
  try {
    await io.incr("io:k");
    ioredis.incrError = null;
  } catch (e) {
    ioredis.incrError = (e as Error).message;
  }
  try {
    await io.call("NOSUCH", "x");
  } catch (e) {
    ioredis.unknown = (e as Error).message;
  }
  ioredis.setex = await io.setex("io:t", 10, "v");
  ioredis.ttl = await io.ttl("io:t");
  ioredis.msetnx = await io.msetnx("io:m1", "1", "io:m2", "2");
  ioredis.unlink = await io.unlink("io:m1", "io:m2", "io:none");
  ioredis.echo = await io.echo("hello");
  ioredis.flush = await io.flushdb();
  ioredis.dbsize = await io.dbsize();
  io.disconnect();
  return { nodeRedis, ioredis };
}

/** Where Debian's python3-redis is importable (pyenv's python3 may come first on the PATH). */
export const PYTHON = "/usr/bin/python3";

/** The redis-py script's results against `port`, or null without python3-redis. */
export async function redisPyScript(port: number): Promise<unknown> {
  const script = new URL("./fixtures/resp_redis_py.py", import.meta.url).pathname;
  const out = await new Deno.Command(PYTHON, {
    args: [script, String(port)],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`redis-py script failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** True when Debian's python3-redis is installed. */
export function haveRedisPy(): boolean {
  try {
    return new Deno.Command(PYTHON, {
      args: ["-c", "import redis"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().success;
  } catch {
    return false;
  }
}
