/**
 * The RESP door against Redis 7 itself: the conformance script's replies,
 * byte for byte, raw and through redis-cli, and two real client libraries
 * (node-redis 6 with its default options, ioredis), compared with what
 * redis-server 7.0 answered (tests/fixtures/resp_oracle.json, recorded once
 * by tests/resp_record_oracle.ts, so CI needs only redis-tools).
 */
import assert from "node:assert/strict";
import type { Server } from "../mod.ts";
import { LAYOUTS, withServer } from "./support.ts";
import { cliInput, have, matches, readScript, run, runScript } from "./resp_support.ts";
import { clientScript, haveRedisPy, redisPyScript } from "./resp_clients.ts";

const script = readScript(new URL("./fixtures/resp_script.txt", import.meta.url));
const oracle = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/resp_oracle.json", import.meta.url)),
) as {
  replies: { command: string; reply: string }[];
  redisCli: string;
  clients: unknown;
  redisPy: unknown;
};
const CLI = have("redis-cli");
// CI installs the tools: there, missing tools are a failure, not a skip.
const noCli = !CLI && Deno.env.get("CI") !== "true";

function respPort(server: Server): number {
  return server.addr.respPort!;
}

const layouts = [LAYOUTS[0], LAYOUTS[1]].map((l) => ({
  name: l.name,
  options: { ...l.options, respPort: 0 },
}));

for (const layout of layouts) {
  Deno.test(`${layout.name}: every scripted command answers what Redis 7 answers, byte for byte`, async () => {
    await withServer(layout.options, async (server) => {
      assert.equal(oracle.replies.length, script.length, "the oracle is for this script");
      const got = await runScript(respPort(server), script);
      const wrong = script.flatMap((l, i) => {
        assert.equal(oracle.replies[i].command, l.line);
        const want = oracle.replies[i].reply;
        return matches(l, want, got[i])
          ? []
          : [`${l.line}\n  redis: ${JSON.stringify(want)}\n  evkv:  ${JSON.stringify(got[i])}`];
      });
      assert.deepEqual(wrong, []);
    });
  });

  Deno.test({
    name: `${layout.name}: redis-cli prints for the script what it prints against Redis 7`,
    ignore: noCli,
    fn: async () => {
      await withServer(layout.options, async (server) => {
        const out = await run("redis-cli", ["-p", String(respPort(server))], cliInput(script));
        assert.equal(out, oracle.redisCli);
      });
    },
  });

  Deno.test({
    name: `${layout.name}: redis-py 4.3 with default options gets what Redis 7 gives`,
    ignore: !haveRedisPy() && Deno.env.get("CI") !== "true",
    fn: async () => {
      await withServer(layout.options, async (server) => {
        assert.deepEqual(await redisPyScript(respPort(server)), oracle.redisPy);
      });
    },
  });

  Deno.test(`${layout.name}: node-redis 6 with default options and ioredis get what Redis 7 gives`, async () => {
    await withServer(layout.options, async (server) => {
      assert.deepEqual(await clientScript(respPort(server)), oracle.clients);
    });
  });
}

Deno.test({
  name: "redis-benchmark runs every string-KV test of its default list",
  ignore: !have("redis-benchmark") && Deno.env.get("CI") !== "true",
  fn: async () => {
    await withServer(layouts[0].options, async (server) => {
      // The default list's string tests; the full list exits at LPUSH, since
      // redis-benchmark exits on any error reply and lists are not served.
      const out = await run("redis-benchmark", [
        "-p",
        String(respPort(server)),
        "-t",
        "ping,set,get,incr,mset",
        "-n",
        "2000",
        "-q",
      ]);
      const done = [...out.matchAll(/^\s*([A-Z_]+(?: \(10 keys\))?): [\d.]+ requests per second/gm)]
        .map((m) => m[1]);
      assert.deepEqual(done, ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"]);
    });
  },
});
