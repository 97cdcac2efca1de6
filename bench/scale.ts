/**
 * The scale scenario of `deno task bench`: evkv's RESP port and a real
 * redis-server, both running at once, driven by memtier_benchmark with the
 * same settings, in alternating turns so that noise from other work on the
 * machine lands on both:
 *
 * 1. fresh servers holding 10k keys: Get:Set 10:1 at 50 connections x
 *    pipeline 16, uniform over them, each server twice, alternating;
 * 2. fresh servers again, loaded in steps up to {@link DEFAULT_MAX_KEYS}
 *    (16-byte keys `memtier-kNNNNNNN`, 100-byte values, 10 connections x
 *    pipeline 16, as in issue #13), timing each step (load rate against key
 *    count, the chart); at 1M keys, bytes per key (RSS loaded - empty, as
 *    the issue measured it) and the same Get:Set runs over 1M keys.
 *
 * @module
 */
import type { ChartRow } from "./svg.ts";

/** Key count the load steps go up to unless told otherwise. */
export const DEFAULT_MAX_KEYS = 5_000_000;
/** Load steps (cumulative key counts); the chart's x axis. */
const STEPS = [10_000, 100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000];
/** Keys are `memtier-k` and 7 digits, 16 bytes, from this number on. */
const KEY_BASE = 1_000_000;
const KEY_PREFIX = "memtier-k";
const VALUE_BYTES = 100;
const LOAD_ARGS = ["-t", "1", "-c", "10", "--pipeline=16", "--ratio=1:0", "--key-pattern=P:P"];
const MIXED_ARGS = ["-t", "2", "-c", "25", "--pipeline=16", "--ratio=1:10", "--key-pattern=R:R"];
/** How often a load step polls DBSIZE. */
const POLL_MS = 10;
/** Mixed-workload runs per server and key count (alternating servers). */
const MIXED_ROUNDS = 2;

/** A server under test: its RESP port, its pid (for RSS) and how to stop it. */
export interface ScaleServer {
  /** `evkv (inline/reuseport)` or `redis-server`. */
  name: string;
  /** RESP port on 127.0.0.1. */
  port: number;
  /** Process id, for /proc/<pid>/status. */
  pid: number;
  /** Stops it. */
  stop(): Promise<void>;
}

/** What one memtier run measured. */
interface MemtierRun {
  opsPerSec: number;
  p99Ms: number;
}

/** The scenario's results. */
export interface ScaleResult {
  /** The report section, markdown. */
  markdown: string;
  /** Load rate per step per server, for the chart (p99 from memtier). */
  chart: ChartRow[];
  /** Keys per second loading the first 1M keys, per server (0 when not reached). */
  load1M: number[];
}

/** memtier_benchmark's path: on the PATH, or built by ../shared/peers/build-memtier.sh. */
export async function findMemtier(root: URL): Promise<string | null> {
  const sh = (cmd: string) =>
    new Deno.Command("sh", { args: ["-c", cmd], stdout: "piped", stderr: "null" }).output();
  const onPath = await sh("command -v memtier_benchmark");
  if (onPath.success) return new TextDecoder().decode(onPath.stdout).trim();
  const script = new URL("../shared/peers/build-memtier.sh", root).pathname;
  try {
    await Deno.stat(script);
  } catch {
    return null;
  }
  const built = await sh(`bash ${script} | tail -1`);
  const path = new TextDecoder().decode(built.stdout).trim();
  return built.success && path.startsWith("/") ? path : null;
}

/** Sends one RESP command on a fresh connection and returns the raw reply text. */
async function respCommand(port: number, ...args: string[]): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const parts = [`*${args.length}\r\n`, ...args.map((a) => `$${a.length}\r\n${a}\r\n`)];
    await conn.write(new TextEncoder().encode(parts.join("")));
    let text = "";
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return text;
      text += new TextDecoder().decode(buf.subarray(0, n));
      // An integer reply, or a bulk string read to its end.
      if (text.startsWith(":") && text.endsWith("\r\n")) return text;
      const m = /^\$(\d+)\r\n/.exec(text);
      if (m && text.length >= m[0].length + Number(m[1]) + 2) return text;
      if (text.startsWith("-")) return text;
    }
  } finally {
    conn.close();
  }
}

/** Keys the server holds (DBSIZE). */
async function dbsize(port: number): Promise<number> {
  return Number(/^:(\d+)/.exec(await respCommand(port, "DBSIZE"))?.[1] ?? NaN);
}

/** The server's own `used_memory` (INFO), or 0 when it does not say. */
async function usedMemory(port: number): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await respCommand(port, "INFO"))?.[1] ?? 0);
}

/**
 * Runs a load step with memtier while polling DBSIZE every {@link POLL_MS}:
 * the rate is the keys added over the time from the first poll that saw
 * the count rise to the first that saw all of them (memtier's own run time
 * is coarse for short runs: its JSON once said 100k keys in 1 ms).
 */
async function timedLoad(bin: string, port: number, from: number, to: number): Promise<MemtierRun> {
  const run = memtier(bin, port, [
    ...LOAD_ARGS,
    `--key-minimum=${KEY_BASE + from}`,
    `--key-maximum=${KEY_BASE + to - 1}`,
    "-n",
    "allkeys",
  ]);
  let done = false;
  run.finally(() => done = true).catch(() => {});
  let began = 0;
  let ended = 0;
  const start = performance.now();
  while (ended === 0 && performance.now() - start < 600_000) {
    const t = performance.now();
    const n = await dbsize(port);
    if (began === 0 && n > from) began = t - POLL_MS / 2;
    if (n >= to) ended = t;
    if (done && ended === 0 && n < to) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const r = await run;
  if (ended === 0 || began === 0) {
    throw new Error(`Load ${from}..${to}: DBSIZE never reached ${to}`);
  }
  return { opsPerSec: (to - from) / Math.max(POLL_MS, ended - began) * 1000, p99Ms: r.p99Ms };
}

/** Resident set size of `pid` in bytes (via ps: Deno reads /proc only with --allow-all). */
async function rss(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", {
    args: ["-o", "rss=", "-p", String(pid)],
    stdout: "piped",
  })
    .output();
  const kb = Number(new TextDecoder().decode(out.stdout).trim());
  if (!out.success || !(kb > 0)) throw new Error(`Read RSS of ${pid}: ps gave nothing`);
  return kb * 1024;
}

/**
 * Where memtier writes its JSON report (read back, then overwritten by the
 * next run): its text table rounds short runs' rates, sometimes to 0.
 */
const JSON_OUT = `/tmp/evkv-scale-memtier-${Deno.pid}.json`;

/** Runs memtier against `port`; its rate is requests over its own run time. */
async function memtier(bin: string, port: number, args: string[]): Promise<MemtierRun> {
  const out = await new Deno.Command(bin, {
    args: [
      "-s",
      "127.0.0.1",
      "-p",
      String(port),
      "--protocol=redis",
      `--key-prefix=${KEY_PREFIX}`,
      "-d",
      String(VALUE_BYTES),
      "--hide-histogram",
      `--json-out-file=${JSON_OUT}`,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).split("\n").slice(-5).join(" ");
    throw new Error(`memtier against port ${port} failed: ${err}`);
  }
  const all = JSON.parse(await Deno.readTextFile(JSON_OUT))["ALL STATS"];
  const ms = Number(all.Runtime["Total duration"]);
  const totals = all.Totals;
  return {
    opsPerSec: Number(totals.Count) / (Math.max(1, ms) / 1000),
    p99Ms: Number(totals["Percentile Latencies"]?.["p99.00"] ?? 0),
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : "n/a");
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? 0
    : s.length % 2
    ? s[s.length >> 1]
    : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Runs the scenario on `servers` (evkv first, redis-server second), both
 * already started and empty. Failures go to `failures`; what was measured
 * is reported either way.
 */
export async function runScale(
  bin: string,
  start: () => Promise<ScaleServer[]>,
  opts: { maxKeys: number; seconds: number },
  failures: string[],
): Promise<ScaleResult> {
  const steps = STEPS.filter((s) => s <= opts.maxKeys);
  const loadRate: Record<string, { keys: number; rate: number; p99: number }[]> = {};
  const mixed: Record<string, Record<number, number[]>> = {};

  /** Loads keys [from, to) into every server, alternating who goes first by `turn`. */
  const loadStep = async (servers: ScaleServer[], from: number, to: number, turn: number) => {
    const order = turn % 2 === 0 ? servers : [...servers].reverse();
    const rates = servers.map(() => 0);
    for (const s of order) {
      try {
        const r = await timedLoad(bin, s.port, from, to);
        (loadRate[s.name] ??= []).push({ keys: to, rate: r.opsPerSec, p99: r.p99Ms });
        rates[servers.indexOf(s)] = r.opsPerSec;
        console.error(`  scale: ${s.name} ${fmt(from)}..${fmt(to)} keys at ${fmt(r.opsPerSec)}/s`);
      } catch (err) {
        failures.push(`scale load to ${to} on ${s.name}: ${(err as Error).message}`);
      }
    }
    return rates;
  };
  /** Get:Set 10:1 over the first `keys` keys, {@link MIXED_ROUNDS} rounds alternating. */
  const mixedRuns = async (servers: ScaleServer[], keys: number) => {
    for (let round = 0; round < MIXED_ROUNDS; round++) {
      for (const s of round % 2 === 0 ? servers : [...servers].reverse()) {
        const range = [
          `--key-minimum=${KEY_BASE}`,
          `--key-maximum=${KEY_BASE + keys - 1}`,
          `--test-time=${opts.seconds}`,
        ];
        try {
          const r = await memtier(bin, s.port, [...MIXED_ARGS, ...range]);
          ((mixed[s.name] ??= {})[keys] ??= []).push(r.opsPerSec);
          console.error(`  scale: ${s.name} Get:Set 10:1 over ${fmt(keys)}: ${fmt(r.opsPerSec)}/s`);
        } catch (err) {
          failures.push(`scale mixed over ${keys} on ${s.name}: ${(err as Error).message}`);
        }
      }
    }
  };
  const settle = () => new Promise((r) => setTimeout(r, 2000));

  // A store of 10k keys, on fresh servers.
  let servers = await start();
  try {
    await loadStep(servers, 0, 10_000, 0);
    await mixedRuns(servers, 10_000);
  } finally {
    for (const s of servers) await s.stop();
  }
  for (const s of servers) loadRate[s.name] = [];

  // Fresh servers again: a pure load in steps (bytes per key as issue #13
  // measured it: RSS loaded - empty), Get:Set at 1M, then on to the largest.
  servers = await start();
  const empty = servers.map(() => 0);
  const at10k = servers.map(() => 0);
  const at1M = servers.map(() => 0);
  const used1M = servers.map(() => 0);
  const loadTime = servers.map(() => 0);
  try {
    for (const [j, s] of servers.entries()) empty[j] = await rss(s.pid);
    let loaded = 0;
    for (const [i, target] of steps.entries()) {
      const rates = await loadStep(servers, loaded, target, i);
      if (target <= 1_000_000) {
        rates.forEach((r, j) => loadTime[j] += r > 0 ? (target - loaded) / r : Infinity);
      }
      loaded = target;
      if (target === 10_000 || target === 1_000_000) {
        // A moment idle first, so that garbage the load left can be collected.
        await settle();
        const at = target === 10_000 ? at10k : at1M;
        for (const [j, s] of servers.entries()) at[j] = await rss(s.pid);
      }
      if (target === 1_000_000) {
        for (const [j, s] of servers.entries()) used1M[j] = await usedMemory(s.port);
        await mixedRuns(servers, 1_000_000);
      }
    }
    if (loaded < 1_000_000) loadTime.fill(Infinity);
  } finally {
    for (const s of servers) await s.stop();
  }

  const [evkv, redis] = servers;
  const perKey = servers.map((_, j) => at1M[j] > 0 ? (at1M[j] - empty[j]) / 1_000_000 : 0);
  // From 10k keys on, start-up costs (JIT code, first buffers) are paid:
  // what the next 990k keys add is the cost of a key.
  const perKeyWarm = servers.map((_, j) =>
    at1M[j] > 0 && at10k[j] > 0 ? (at1M[j] - at10k[j]) / 990_000 : 0
  );
  const rate1M = servers.map((_, j) => 1_000_000 / loadTime[j]);
  const mix = (s: ScaleServer, n: number) => median(mixed[s.name]?.[n] ?? []);
  const out: string[] = [];
  out.push("## Scale: 1M+ keys, evkv vs redis-server (memtier_benchmark on RESP)");
  out.push("");
  out.push(
    `Both servers run at once and take turns (alternating who goes first); 16-byte keys ` +
      `(\`${KEY_PREFIX}NNNNNNN\`), ${VALUE_BYTES}-byte values. Load: memtier ` +
      `\`${LOAD_ARGS.join(" ")} -n allkeys\` per step. Mixed: memtier \`${MIXED_ARGS.join(" ")} ` +
      `--test-time=${opts.seconds}\` (Get:Set 10:1, 50 connections x pipeline 16, uniform over ` +
      `the keys), ${MIXED_ROUNDS} runs per server, median; the 10k-key runs on servers holding ` +
      `10k keys, then fresh servers for the load and the 1M-key runs. A load step's rate is the keys it added over ` +
      `the time DBSIZE took to go from the first to the last of them (polled every ${POLL_MS} ms); ` +
      `the 1M load rate is 1M over the summed time of the steps up to 1M; mixed rates are ` +
      `memtier's. Bytes per ` +
      `key: (RSS at 1M keys - RSS empty) / 1M.`,
  );
  out.push("");
  out.push("| | " + servers.map((s) => s.name).join(" | ") + " | evkv / redis | target |");
  out.push("|---|" + servers.map(() => "---:|").join("") + "---:|---|");
  out.push(
    `| bytes per key, RSS (1M keys - empty) / 1M | ${
      perKey.map((b) => b.toFixed(0)).join(" | ")
    } | ` +
      `${ratio(perKey[0], perKey[1])} | <= 1.00 |`,
  );
  out.push(
    `| bytes per key, RSS (1M keys - 10k keys) / 990k | ` +
      `${perKeyWarm.map((b) => b.toFixed(0)).join(" | ")} | ${
        ratio(perKeyWarm[0], perKeyWarm[1])
      } | ` +
      `<= 1.00 |`,
  );
  out.push(
    `| used_memory per key at 1M (the server's own INFO) | ` +
      `${used1M.map((b) => (b / 1_000_000).toFixed(0)).join(" | ")} | ${
        ratio(used1M[0], used1M[1])
      } | |`,
  );
  out.push(
    `| load 1M keys, keys/s | ${rate1M.map(fmt).join(" | ")} | ${ratio(rate1M[0], rate1M[1])} | ` +
      `>= 0.50 |`,
  );
  for (const n of [10_000, 1_000_000]) {
    out.push(
      `| Get:Set 10:1 over ${fmt(n)} keys, ops/s | ${
        servers.map((s) => fmt(mix(s, n))).join(" | ")
      } ` +
        `| ${ratio(mix(evkv, n), mix(redis, n))} | |`,
    );
  }
  out.push(
    `| ops/s at 1M / at 10k | ${
      servers.map((s) => ratio(mix(s, 1_000_000), mix(s, 10_000))).join(" | ")
    } ` +
      `| | evkv >= 0.80 |`,
  );
  out.push("");
  out.push("Load rate by key count (keys/s while loading up to that count, p99 ms):");
  out.push("");
  out.push("| keys | " + servers.map((s) => s.name).join(" | ") + " | evkv / redis |");
  out.push("|---:|" + servers.map(() => "---:|").join("") + "---:|");
  for (const n of steps) {
    const cells = servers.map((s) => loadRate[s.name].find((r) => r.keys === n));
    out.push(
      `| ${fmt(n)} | ${
        cells.map((c) => c ? `${fmt(c.rate)} (p99 ${c.p99.toFixed(1)})` : "-").join(" | ")
      } ` +
        `| ${ratio(cells[0]?.rate ?? 0, cells[1]?.rate ?? 0)} |`,
    );
  }
  out.push("");
  out.push(
    `RSS empty: ${empty.map((b) => `${(b / 2 ** 20).toFixed(0)} MiB`).join(", ")}; at 10k keys: ` +
      `${at10k.map((b) => `${(b / 2 ** 20).toFixed(0)} MiB`).join(", ")}; at 1M keys: ` +
      `${at1M.map((b) => `${(b / 2 ** 20).toFixed(0)} MiB`).join(", ")}` +
      ` (${servers.map((s) => s.name).join(", ")}).`,
  );
  const chart: ChartRow[] = [];
  for (const n of steps.filter((n) => n >= 100_000)) {
    for (const s of servers) {
      const c = loadRate[s.name].find((r) => r.keys === n);
      if (c) {
        chart.push({
          scenario: `load up to ${fmt(n)} keys`,
          target: s.name,
          opsPerSec: c.rate,
          p99Ms: c.p99,
        });
      }
    }
  }
  return { markdown: out.join("\n") + "\n", chart, load1M: rate1M };
}

/** Starts redis-server (no persistence) on `port` and waits until it answers. */
export async function startRedisServer(port: number): Promise<ScaleServer> {
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    name: "redis-server",
    port,
    pid: child.pid,
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
    },
  };
}
