/**
 * Authentication on the Redis port, driven by redis-cli: NOAUTH before
 * AUTH, WRONGPASS, NOPERM for commands and keys, ACL WHOAMI/LIST/USERS/CAT,
 * with the strings redis-server 7 sends.
 */
import assert from "node:assert/strict";
import { COMMANDS } from "../src/resp/commands.ts";
import { sha256Hex } from "../src/auth/password.ts";
import { LAYOUTS, withServer } from "./support.ts";
import { ACL, NO_REDIS_CLI, redisCli, redisScript } from "./security_support.ts";

const NOAUTH = "NOAUTH Authentication required.";
const WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled.";
const NOPERM_KEY =
  "NOPERM this user has no permissions to access one of the keys used as arguments";
const noperm = (cmd: string) => `NOPERM this user has no permissions to run the '${cmd}' command`;

const opts = { ...LAYOUTS[0].options, respPort: 0, auth: { acl: ACL, failureDelayMs: 0 } };

/** A plausible argument list for each command, so arity never decides the answer. */
const ARGS: Record<string, string> = {
  echo: "x",
  get: "k",
  set: "k v",
  del: "k",
  exists: "k",
  mget: "k",
  mset: "k v",
  scan: "0",
  config: "GET save",
  select: "0",
  acl: "WHOAMI",
};

Deno.test({
  name: "RESP before AUTH: every command but AUTH and QUIT gets NOAUTH",
  ignore: NO_REDIS_CLI,
  fn: () =>
    withServer(opts, async (server) => {
      const port = server.addr.respPort!;
      const names = Object.keys(COMMANDS).filter((n) => !["auth", "quit", "hello"].includes(n));
      assert.ok(names.length >= 15, names.join());
      for (const name of names) {
        // Enough arguments for the arity check, which Redis makes before NOAUTH.
        const args = ARGS[name]?.split(" ") ??
          Array(Math.abs(COMMANDS[name].arity) - 1).fill("k");
        const { out } = await redisCli(port, [name, ...args]);
        assert.equal(out, NOAUTH, name);
      }
      assert.equal((await redisCli(port, ["AUTH", "admin", "admin-pw"])).out, "OK");
      assert.equal((await redisCli(port, ["QUIT"])).out, "OK");
      // Redis's order: an unknown command or a wrong arity is reported before NOAUTH.
      assert.match((await redisCli(port, ["NOSUCH"])).out, /^ERR unknown command 'NOSUCH'/);
      assert.equal(
        (await redisCli(port, ["GET"])).out,
        "ERR wrong number of arguments for 'get' command",
      );
    }),
});

Deno.test({
  name: "RESP AUTH: wrong, right and disabled users, in both forms",
  ignore: NO_REDIS_CLI,
  fn: () =>
    withServer(opts, async (server) => {
      const answers = await redisScript(server.addr.respPort!, [
        "AUTH wrong",
        "AUTH admin wrong",
        "AUTH nobody admin-pw",
        "AUTH gone gone-pw",
        "GET k",
        "AUTH default-pw",
        "SET k v",
        "AUTH admin nope",
        "GET k",
        "AUTH reader reader-pw",
        "ACL WHOAMI",
        "AUTH a b c",
      ]);
      assert.deepEqual(answers, [
        WRONGPASS,
        WRONGPASS,
        WRONGPASS,
        WRONGPASS,
        NOAUTH,
        "OK",
        "OK",
        WRONGPASS,
        "v",
        "OK",
        noperm("acl|whoami"),
        "ERR syntax error",
      ]);
      assert.equal(server.stats().counters.auth_failures, 5);
    }),
});

Deno.test({
  name: "RESP: a read-only user on app:* cannot write, nor read outside its pattern",
  ignore: NO_REDIS_CLI,
  fn: () =>
    withServer(opts, async (server) => {
      const port = server.addr.respPort!;
      const admin = ["--user", "admin", "--pass", "admin-pw", "--no-auth-warning"];
      assert.equal(
        (await redisCli(port, [...admin, "MSET", "app:1", "a", "other", "b"])).out,
        "OK",
      );
      const answers = await redisScript(port, [
        "AUTH reader reader-pw",
        "GET app:1",
        "SET app:1 x",
        "DEL app:1",
        "GET other",
        "MGET app:1 other",
        "EXISTS app:1",
        "SCAN 0 MATCH other*",
        "SCAN 0",
        "INFO",
        "CONFIG GET save",
        "PING",
        "DBSIZE",
      ]);
      assert.deepEqual(answers, [
        "OK",
        "a",
        noperm("set"),
        noperm("del"),
        NOPERM_KEY,
        NOPERM_KEY,
        "1",
        NOPERM_KEY,
        NOPERM_KEY,
        noperm("info"),
        noperm("config"),
        noperm("ping"),
        "2",
      ]);
      const scan = await redisCli(port, [
        "--user",
        "reader",
        "--pass",
        "reader-pw",
        "--no-auth-warning",
        "--scan",
        "--pattern",
        "app:*",
      ]);
      assert.equal(scan.out, "app:1");
      assert.equal((await redisCli(port, [...admin, "GET", "app:1"])).out, "a");
    }),
});

Deno.test({
  name: "RESP ACL WHOAMI, USERS, LIST and CAT answer as Redis does",
  ignore: NO_REDIS_CLI,
  fn: () =>
    withServer(opts, async (server) => {
      const port = server.addr.respPort!;
      const admin = ["--user", "admin", "--pass", "admin-pw", "--no-auth-warning"];
      assert.equal((await redisCli(port, [...admin, "ACL", "WHOAMI"])).out, "admin");
      assert.equal(
        (await redisCli(port, [...admin, "ACL", "USERS"])).out,
        "admin\ndefault\ngone\nreader\nwriter",
      );
      const list = (await redisCli(port, [...admin, "ACL", "LIST"])).out.split("\n");
      assert.equal(list.length, 5);
      assert.equal(list[0], `user admin on #${sha256Hex("admin-pw")} ~* +@all`);
      assert.equal(list[2], `user gone off #${sha256Hex("gone-pw")} ~* +@all`);
      assert.ok(!list.join().includes("-pw "), "no password in ACL LIST");
      const cats = (await redisCli(port, [...admin, "ACL", "CAT"])).out.split("\n");
      assert.ok(cats.includes("read") && cats.includes("write") && cats.includes("admin"));
      const read = (await redisCli(port, [...admin, "ACL", "CAT", "read"])).out.split("\n");
      assert.ok(read.includes("get") && read.includes("scan") && !read.includes("set"));
      assert.equal(
        (await redisCli(port, [...admin, "ACL", "CAT", "nosuch"])).out,
        "ERR Unknown category 'nosuch'",
      );
      assert.equal(
        (await redisCli(port, [...admin, "ACL", "FOO"])).out,
        "ERR unknown subcommand 'FOO'. Try ACL HELP.",
      );
    }),
});

Deno.test({
  name: "RESP with no password: AUTH pass is refused as Redis refuses it, ACL WHOAMI is default",
  ignore: NO_REDIS_CLI,
  fn: () =>
    withServer({ ...LAYOUTS[0].options, respPort: 0 }, async (server) => {
      const answers = await redisScript(server.addr.respPort!, [
        "AUTH x",
        "AUTH default anything",
        "AUTH bob x",
        "ACL WHOAMI",
        "SET k v",
      ]);
      assert.deepEqual(answers, [
        "ERR AUTH <password> called without any password configured for the default user. " +
        "Are you sure your configuration is correct?",
        "OK",
        WRONGPASS,
        "default",
        "OK",
      ]);
    }),
});
