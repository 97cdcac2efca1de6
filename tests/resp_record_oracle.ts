/**
 * Records the oracle for tests/resp_oracle_test.ts: what redis-server
 * answers to tests/fixtures/resp_script.txt, byte for byte, and what
 * redis-cli prints for its deterministic lines. Run once against a fresh
 * redis-server 7.0 and commit the output:
 *
 *   redis-server --port 6399 --save "" --appendonly no &
 *   deno run --allow-net --allow-read --allow-write --allow-run tests/resp_record_oracle.ts 6399
 */
import { cliInput, readScript, run, runScript } from "./resp_support.ts";
import { clientScript, redisPyScript } from "./resp_clients.ts";

const port = Number(Deno.args[0] ?? 6399);
const script = readScript(new URL("./fixtures/resp_script.txt", import.meta.url));
const version = await run("redis-cli", ["-p", String(port), "info", "server"]);
const replies = await runScript(port, script);
const cli = await run("redis-cli", ["-p", String(port)], cliInput(script));
const oracle = {
  recordedFrom: version.match(/redis_version:(\S+)/)?.[1] ?? "unknown",
  replies: script.map((l, i) => ({ command: l.line, reply: replies[i] })),
  redisCli: cli,
  clients: await clientScript(port),
  redisPy: await redisPyScript(port),
};
Deno.writeTextFileSync(
  new URL("./fixtures/resp_oracle.json", import.meta.url),
  JSON.stringify(oracle, null, 2) + "\n",
);
console.log(`recorded ${replies.length} replies from redis ${oracle.recordedFrom}`);
