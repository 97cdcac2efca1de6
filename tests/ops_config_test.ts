/**
 * `--config FILE`, `--log-level` and `--log-format`: every way a file or a
 * flag can be wrong is refused at start with where and why, and the log
 * lines a real server prints are what the format promises.
 */
import assert from "node:assert/strict";
import { KV_SERVICE_URL, Logger, type LogLevel, parseServeFlags, serve } from "../mod.ts";
import { BurstLog } from "../src/ops/log.ts";
import { configFileArgs, ConfigFileError, splitConfigFlag } from "../src/ops/config_file.ts";
import { createOpsMemory } from "../src/ops/recorder.ts";
import { EvictionWatch, startOps } from "../src/ops/ops.ts";
import { sleep } from "./support.ts";

const CLI = new URL("../src/kvserver/cli.ts", import.meta.url).pathname;

function refused(text: string, line: number, reason: RegExp): void {
  assert.throws(() => configFileArgs("evkv.conf", text), (e) => {
    assert.ok(e instanceof ConfigFileError, String(e));
    assert.equal(e.file, "evkv.conf");
    assert.equal(e.line, line);
    assert.match(e.reason, reason);
    assert.match(e.message, new RegExp(`^Read config evkv\\.conf:${line}: `));
    return true;
  });
}

Deno.test("a config file's lines become flags, with comments, quotes and yes/no for switches", () => {
  const args = configFileArgs(
    "evkv.conf",
    [
      "# evkv",
      "",
      "port 7000",
      "  resp-port   6390  ",
      'host "127.0.0.1"',
      "max-body 1MiB",
      "strict-leaks yes",
      "log-format json",
      "metrics-port 9121",
    ].join("\n"),
  );
  assert.deepEqual(args, [
    "--port=7000",
    "--resp-port=6390",
    "--host=127.0.0.1",
    "--max-body=1MiB",
    "--strict-leaks",
    "--log-format=json",
    "--metrics-port=9121",
  ]);
  assert.deepEqual(configFileArgs("f", "strict-leaks no\n"), []);
  // A negative value is a value, not a flag.
  assert.deepEqual(configFileArgs("f", "slowlog-threshold-us -1\n"), ["--slowlog-threshold-us=-1"]);
  const flags = parseServeFlags(args);
  assert.equal(flags.options.port, 7000);
  assert.equal(flags.options.ops?.metricsPort, 9121);
  assert.equal(flags.strictLeaks, true);
  assert.equal(flags.log.format, "json");
});

Deno.test("flags on the command line win over the config file", () => {
  const file = configFileArgs("f", "port 7000\nmode inline\n");
  const flags = parseServeFlags([...file, "--port", "7001"]);
  assert.equal(flags.options.port, 7001);
  assert.equal(flags.options.mode, "inline");
});

Deno.test("a config file refuses an unknown name with its line", () => {
  refused("port 1\nmaxmemory 1gb\n", 2, /^unknown name "maxmemory"$/);
});

Deno.test("a config file refuses a bad value with its line and the parser's reason", () => {
  refused("port seven\n", 1, /^port: "seven" is not an integer >= 0$/);
  refused("# c\nmode turbo\n", 2, /^mode: "turbo" is not one of pool, inline$/);
  refused("max-body lots\n", 1, /is not a size like 4MiB/);
  refused("log-level loud\n", 1, /^log-level: "loud" is not one of error, warn, info, debug$/);
  refused("log-format xml\n", 1, /^log-format: "xml" is not one of text, json$/);
  refused("slowlog-threshold-us -5\n", 1, /^slowlog-threshold-us: "-5" is not an integer >= -1$/);
});

Deno.test("a config file refuses a name without a value, and a switch without yes or no", () => {
  refused("port\n", 1, /^"port" needs a value$/);
  refused("strict-leaks\n", 1, /^"strict-leaks" needs "yes" or "no"$/);
  refused("strict-leaks maybe\n", 1, /^strict-leaks: "maybe" is not yes or no$/);
});

Deno.test("a config file refuses a name set twice, naming the first line", () => {
  refused("port 1\n\nport 2\n", 3, /^"port" is already set on line 1$/);
});

Deno.test("a config file refuses lines that are not name-value pairs, and names meant for the command line", () => {
  refused("= 5\n", 1, /is not a "name value" line/);
  refused("--port 5\n", 1, /is not a "name value" line/);
  refused("config other.conf\n", 1, /^"config" is not allowed in a config file$/);
  refused("help yes\n", 1, /^"help" is not allowed in a config file$/);
});

Deno.test("--config is split out of the arguments once, in either spelling", () => {
  assert.deepEqual(splitConfigFlag(["--config=a", "--port", "1"]), {
    file: "a",
    rest: ["--port", "1"],
  });
  assert.throws(() => splitConfigFlag(["--config", "a", "--config", "b"]), /more than once/);
  assert.throws(() => splitConfigFlag(["--config"]), /needs a file/);
});

Deno.test("log levels filter lines, and each format writes one line per event", () => {
  const lines: [LogLevel, string][] = [];
  const text = new Logger("warn", "text", (l, s) => lines.push([l, s]));
  text.info("not shown");
  text.warn("worker restarted", { index: 1, why: "out of memory" });
  text.error("start failed");
  assert.deepEqual(lines, [
    ["warn", 'evkv: worker restarted index=1 why="out of memory"'],
    ["error", "evkv: start failed"],
  ]);
  lines.length = 0;
  const json = new Logger("debug", "json", (l, s) => lines.push([l, s]));
  json.debug("d", { n: 1 });
  json.block("info", "resource table", "a\nb");
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0][1]);
  assert.equal(first.level, "debug");
  assert.equal(first.msg, "d");
  assert.equal(first.n, 1);
  assert.ok(!Number.isNaN(Date.parse(first.ts)));
  assert.equal(JSON.parse(lines[1][1]).text, "a\nb");
  assert.ok(lines.every(([, s]) => !s.includes("\n")), "JSON lines are single lines");
});

Deno.test("a burst of events is logged once per window, with the count since the last line", () => {
  const lines: string[] = [];
  const burst = new BurstLog(new Logger("info", "text", (_l, s) => lines.push(s)), 1000);
  assert.equal(burst.observe(0, "connections refused", 0), false);
  assert.equal(burst.observe(5, "connections refused", 100), true);
  assert.equal(burst.observe(50, "connections refused", 600), false);
  assert.equal(burst.observe(50, "connections refused", 5000), true);
  assert.equal(burst.observe(50, "connections refused", 9000), false);
  assert.deepEqual(lines, [
    "evkv: connections refused: 5 since the last report total=5",
    "evkv: connections refused: 45 since the last report total=50",
  ]);
});

/** Runs the serve command with `config` as its config file, given on stdin. */
function spawnServe(args: string[], config: string): Deno.ChildProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "--allow-net", "--allow-read", CLI, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  w.write(new TextEncoder().encode(config)).then(() => w.close()).catch(() => {});
  return child;
}

async function runServe(
  args: string[],
  config = "",
): Promise<{ code: number; out: string; err: string }> {
  const r = await spawnServe(args, config).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

Deno.test("the server refuses a bad config file at start with exit 2, the file, the line and the reason", async () => {
  const r = await runServe(
    ["--config", "-"],
    "port 0\nio-threads 1\nworkers none\n",
  );
  assert.equal(r.code, 2);
  assert.match(r.err, /Read config -:3: workers: "none" is not an integer >= 1/);
  const missing = await runServe(["--config", "/nonexistent/evkv.conf"]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /Read config \/nonexistent\/evkv\.conf: /);
  const badLevel = await runServe(["--log-level", "loud"]);
  assert.equal(badLevel.code, 2);
  assert.match(badLevel.err, /Parse --log-level: "loud" is not one of error, warn, info, debug/);
});

Deno.test("a server started from a config file in JSON log format writes only JSON lines, from start to stop", async () => {
  // The command line's --port 0 wins over the file's 7.
  const child = spawnServe(
    ["--config", "-", "--port", "0"],
    "port 7\nio-threads 1\nworkers 1\nlog-format json\nmetrics-port 0\npersist off\n",
  );
  const reader = child.stdout.getReader();
  const d = new TextDecoder();
  let seen = "";
  while (!seen.includes("\n")) {
    const { value, done } = await reader.read();
    assert.ok(!done, `exited early: ${seen}`);
    seen += d.decode(value, { stream: true });
  }
  const start = JSON.parse(seen.split("\n")[0]);
  assert.equal(start.level, "info");
  assert.match(start.msg, /^evkv listening on 127\.0\.0\.1:\d+/);
  assert.notEqual(start.port, 7);
  assert.ok(start.metrics_port > 0, "metrics port from the file");
  const health = await fetch(`http://127.0.0.1:${start.metrics_port}/healthz`);
  assert.equal(await health.text(), "ok\n");
  child.kill("SIGTERM");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += d.decode(value, { stream: true });
  }
  const err = await new Response(child.stderr).text();
  assert.equal((await child.status).code, 0);
  const lines = (seen + err).split("\n").filter((l) => l !== "");
  const parsed = lines.map((l) => JSON.parse(l));
  assert.deepEqual(parsed.slice(0, 3).map((p) => p.msg), [
    start.msg,
    "SIGTERM: draining",
    "resource table at exit",
  ]);
  assert.match(parsed[3].msg, /^stopped cleanly; all \d+ resource kinds back to zero$/);
  assert.equal(parsed.length, 4);
});

Deno.test("a server logs a worker restart and a burst of refused connections, one line each", async () => {
  const lines: [LogLevel, string][] = [];
  const logger = new Logger("info", "json", (l, s) => lines.push([l, s]));
  const server = await serve({
    port: 0,
    ioThreads: 1,
    workers: 1,
    limits: { maxConnections: 1 },
    ops: { logger },
  });
  const conns: Deno.Conn[] = [];
  try {
    await server.killWorker("task", 0);
    conns.push(await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }));
    await sleep(100);
    for (let i = 0; i < 5; i++) {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      // The refusal: one OVERLOADED frame, then the close.
      await c.read(new Uint8Array(512));
      c.close();
    }
    // The watch looks once a second.
    for (let i = 0; i < 30 && !lines.some(([, s]) => s.includes("connections refused")); i++) {
      await sleep(100);
    }
  } finally {
    for (const c of conns) c.close();
    await server.shutdown();
  }
  const parsed = lines.map(([level, s]) => ({ level, ...JSON.parse(s) }));
  const restarts = parsed.filter((p) => /task worker 0 died/.test(p.msg));
  assert.equal(restarts.length, 1);
  assert.equal(restarts[0].level, "error");
  const refused = parsed.filter((p) => p.msg.startsWith("connections refused"));
  assert.equal(refused.length, 1, JSON.stringify(parsed));
  assert.equal(refused[0].level, "warn");
  // A tick may fall between two refusals: the line counts those before it.
  assert.ok(refused[0].total >= 1 && refused[0].total <= 5, `total ${refused[0].total}`);
});

Deno.test("eviction starting is logged once per episode of the store's eviction counter", () => {
  const lines: string[] = [];
  const watch = new EvictionWatch(new Logger("info", "text", (_l, s) => lines.push(s)));
  assert.equal(watch.observe(0), false);
  assert.equal(watch.observe(12), true, "the counter starts at 0 with the server");
  assert.equal(watch.observe(20), false, "same episode");
  for (let i = 0; i < EvictionWatch.QUIET; i++) assert.equal(watch.observe(20), false);
  assert.equal(watch.observe(21), true, "a new episode after a quiet spell");
  assert.deepEqual(lines, [
    "evkv: eviction started: the memory cap is reached, keys are being evicted evicted_total=12",
    "evkv: eviction started: the memory cap is reached, keys are being evicted evicted_total=21",
  ]);
});

Deno.test("the operations watch reads the store's eviction counter from the shared counters", async () => {
  const lines: string[] = [];
  const logger = new Logger("info", "text", (_l, s) => lines.push(s));
  let evicted = 0;
  let looks = 0;
  const rt = await startOps({ logger }, {
    // Called once per look of the watch.
    stats: () =>
      (looks++, { counters: { connections_rejected: 0, evicted_keys: evicted } }) as never,
    ops: createOpsMemory(1),
    serviceUrl: KV_SERVICE_URL,
    startedAt: Date.now(),
    maxConnections: 1,
  });
  try {
    // The watch looks once a second: let it see 0 first, then evict.
    while (looks < 1) await sleep(50);
    evicted = 5;
    for (let i = 0; i < 40 && lines.length === 0; i++) await sleep(100);
  } finally {
    await rt.close();
  }
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0], /eviction started.*evicted_total=5$/);
});
