/**
 * The deployment samples in examples/ work as shipped: the config file
 * parses, and the systemd unit's command line serves with exactly the
 * Deno permissions it grants (loopback network, read of the code and the
 * config) and stops cleanly on SIGTERM.
 */
import assert from "node:assert/strict";
import { parseServeFlags } from "../mod.ts";
import { configFileArgs } from "../src/ops/config_file.ts";
import { connect } from "../src/client/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const conf = () => Deno.readTextFile(`${ROOT}/examples/evkv.conf`);

Deno.test("the sample config file parses into the flags it documents", async () => {
  const flags = parseServeFlags(configFileArgs("examples/evkv.conf", await conf()));
  assert.equal(flags.options.host, "127.0.0.1");
  assert.equal(flags.options.respPort, 6379);
  assert.equal(flags.options.ops?.metricsPort, 9121);
  assert.equal(flags.log.format, "json");
  assert.equal(flags.options.serviceOptions?.eviction, "allkeys-lru");
});

/** ExecStart of the unit, continuation lines joined, split into words. */
async function execStart(): Promise<string[]> {
  const unit = await Deno.readTextFile(`${ROOT}/examples/evkv.service`);
  const joined = unit.replace(/\\\n\s*/g, " ");
  const line = joined.split("\n").find((l) => l.startsWith("ExecStart="));
  assert.ok(line, "the unit has an ExecStart");
  return line.slice("ExecStart=".length).trim().split(/\s+/);
}

Deno.test("the systemd unit's command serves with only the permissions it grants and stops cleanly", async () => {
  const words = await execStart();
  assert.match(words[0], /\/deno$/);
  const perms = words.filter((w) => w.startsWith("--allow") || w === "--allow-all" || w === "-A");
  assert.deepEqual(perms, [
    "--allow-net=127.0.0.1",
    "--allow-read=/opt/evkv,/etc/evkv/evkv.conf,/var/lib/evkv",
    "--allow-write=/var/lib/evkv",
  ]);
  const dataDir = await Deno.makeTempDir({ prefix: "evkv-unit-" });
  // This checkout stands in for /opt/evkv; the config comes on stdin, with
  // free ports instead of the fixed ones.
  const args = words.slice(1).map((w) =>
    w.replace("/opt/evkv", ROOT).replace(/^\/etc\/evkv\/evkv\.conf$/, "-")
  ).map((w) => w.replace(",/etc/evkv/evkv.conf", "").replaceAll("/var/lib/evkv", dataDir));
  const config = (await conf()).replace(/^(port|resp-port|metrics-port) \d+$/gm, "$1 0")
    .replace(/^data-dir .*$/m, `data-dir ${dataDir}`) + "io-threads 1\nworkers 1\n";
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(config));
  await w.close();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  // With persistence on, the line saying what was loaded comes first.
  while (!/listening on[^\n]*\n/.test(out)) {
    const { value, done } = await reader.read();
    if (done) assert.fail(`exited early: ${out}${await new Response(child.stderr).text()}`);
    out += value;
  }
  const start = JSON.parse(out.split("\n").find((l) => l.includes("listening on"))!);
  assert.match(start.msg, /listening on 127\.0\.0\.1:/);
  const health = await fetch(`http://127.0.0.1:${start.metrics_port}/healthz`);
  assert.equal(health.status, 200);
  await health.body?.cancel();
  {
    await using kv = await connect({ port: start.port });
    await kv.put("deployed", "yes");
    assert.equal(new TextDecoder().decode(await kv.get("deployed")), "yes");
  }
  child.kill("SIGTERM");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const err = await new Response(child.stderr).text();
  assert.equal((await child.status).code, 0, err);
  assert.match(out, /"msg":"stopped cleanly/);
  assert.doesNotMatch(err, /NotCapable|PermissionDenied|Requires .* access/);
  await Deno.remove(dataDir, { recursive: true });
});
