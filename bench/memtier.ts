/**
 * The memtier scenario: memtier_benchmark against redis-server and evkv's
 * RESP port in the same run, alternating which goes first each round, at
 * 1 connection, 50 connections and 50 × pipeline 16 (16 B keys, 100 B
 * values, 100k keys filled first, SET:GET 1:10), plus evkv's wire v1
 * path (kvclient bench) at 50 × 16 on the same evkv server, paired with its
 * RESP run. Ratios are medians of per-round ratios.
 *
 * Runs on its own (`deno run -A bench/memtier.ts [--seconds S] [--rounds N]
 * [--evkv "server flags"]`)
 * and as part of `deno task bench`.
 *
 * @module
 */
import { freePort, have, startRedis } from "./resp.ts";
import { startServerProcess } from "./server_process.ts";

/** One measured run. */
export interface MemtierRow {
  /** `1 conn`, `50 conns`, `50 x 16`. */
  scenario: string;
  /** `redis-server`, `evkv RESP` or `evkv wire v1`. */
  server: string;
  /** 1-based round. */
  round: number;
  /** Throughput. */
  opsPerSec: number;
  /** 99th percentile latency in ms. */
  p99Ms: number;
}

/** The scenarios: memtier threads × clients per thread, and pipeline depth. */
export const MEMTIER_SCENARIOS = [
  { name: "1 conn", clients: 1, pipeline: 1 },
  { name: "50 conns", clients: 50, pipeline: 1 },
  { name: "50 x 16", clients: 50, pipeline: 16 },
] as const;

const KEYS = 100_000;
/** evkv's layout by default: one IO worker hosting the shard, like redis-server's one thread. */
const INLINE = ["--mode", "inline", "--io-threads", "1"];
/** "memtier-k-" + up to 6 digits: 16-byte keys. */
const KEY_PREFIX = "memtier-k-";
const ROOT = new URL("../", import.meta.url);

/** Where memtier_benchmark is: $MEMTIER, the PATH, or the peers build. */
export function findMemtier(): string | null {
  let env: string | undefined;
  try {
    env = Deno.env.get("MEMTIER");
  } catch {
    // No --allow-env (deno task bench): look elsewhere.
  }
  if (env) return env;
  if (have("memtier_benchmark")) return "memtier_benchmark";
  try {
    const out = new Deno.Command("bash", {
      args: ["-c", "/work/shared/peers/build-memtier.sh 2>/dev/null | tail -1"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const path = new TextDecoder().decode(out.stdout).trim();
    if (path && Deno.statSync(path).isFile) return path;
  } catch {
    // Not built here.
  }
  return null;
}

/**
 * The Totals row of memtier's ALL STATS table: ops/s and p99 (read from
 * its text output, so the suite needs no write permission for a JSON file).
 */
export function parseMemtierTotals(out: string): { opsPerSec: number; p99Ms: number } {
  const lines = out.split("\n");
  const header = lines.find((l) => /^Type\s+Ops\/sec/.test(l.trim()));
  const totals = lines.find((l) => /^Totals\s/.test(l.trim()));
  if (!header || !totals) throw new Error(`no Totals row in memtier's output:\n${out}`);
  const names = header.trim().split(/\s{2,}/);
  const values = totals.trim().split(/\s+/);
  const p99 = names.findIndex((n) => /^p99 Latency$/.test(n));
  return { opsPerSec: Number(values[1]), p99Ms: p99 >= 0 ? Number(values[p99]) : NaN };
}

async function memtier(
  bin: string,
  port: number,
  args: string[],
): Promise<{ opsPerSec: number; p99Ms: number }> {
  const out = await new Deno.Command(bin, {
    args: [
      "-s",
      "127.0.0.1",
      "-p",
      String(port),
      "--protocol=redis",
      `--key-prefix=${KEY_PREFIX}`,
      "--key-minimum=1",
      `--key-maximum=${KEYS}`,
      "--data-size=100",
      "--hide-histogram",
      "--print-percentiles=50,99,99.9",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`memtier_benchmark failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return parseMemtierTotals(new TextDecoder().decode(out.stdout));
}

/** Fills keys 1..100k with SETs, one each. */
function fill(bin: string, port: number) {
  return memtier(bin, port, [
    "-t",
    "1",
    "-c",
    "10",
    "--pipeline=32",
    "--ratio=1:0",
    "--key-pattern=P:P",
    `--requests=${KEYS / 10}`,
  ]);
}

function run(bin: string, port: number, s: typeof MEMTIER_SCENARIOS[number], seconds: number) {
  return memtier(bin, port, [
    "-t",
    "1",
    "-c",
    String(s.clients),
    `--pipeline=${s.pipeline}`,
    "--ratio=1:10",
    "--key-pattern=R:R",
    `--test-time=${seconds}`,
  ]);
}

/** Starts evkv (inline, one IO worker, like redis-server's one thread) with a RESP port. */
async function startEvkv(
  mode: string[],
): Promise<{ port: number; respPort: number; stop: () => Promise<void> }> {
  const s = await startServerProcess({
    name: "evkv",
    script: "src/kvserver/cli.ts",
    // Memory only, as redis-server runs here (no save, no appendonly).
    args: ["--resp-port", "0", "--persist", "off", ...mode],
    cwd: ROOT,
  });
  return {
    port: s.port,
    respPort: s.respPort!,
    stop: async () => {
      s.child.kill("SIGTERM");
      await s.child.status;
    },
  };
}

/** kvclient bench (wire v1) at 50 × 16 with the same mix, on the filled server. */
async function wireV1(
  port: number,
  seconds: number,
): Promise<{ opsPerSec: number; p99Ms: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "src/client/cli.ts",
      "--port",
      String(port),
      "bench",
      "--connections",
      "50",
      "--pipeline",
      "16",
      "--duration",
      String(seconds),
      "--ratio",
      "10:1",
      "--keys",
      String(KEYS),
      "--value-size",
      "100",
      "--json",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`kvclient bench failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  return { opsPerSec: r.opsPerSec, p99Ms: r.latencyMs.p99 };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[(s.length - 1) >> 1];
}

/**
 * Runs the scenario; returns its rows and its report section (markdown).
 * Failures go to `failures`; without memtier or redis-server it says why.
 */
export async function memtierComparison(
  seconds: number,
  rounds: number,
  failures: string[],
  mode: string[] = INLINE,
): Promise<{ rows: MemtierRow[]; markdown: string }> {
  const head = ["", "## memtier_benchmark: evkv RESP next to redis-server and wire v1", ""];
  const bin = findMemtier();
  if (!bin || !have("redis-server")) {
    head.push("Skipped: memtier_benchmark or redis-server is not available.", "");
    return { rows: [], markdown: head.join("\n") };
  }
  const rows: MemtierRow[] = [];
  const redisPort = freePort();
  const stopRedis = await startRedis(redisPort);
  const evkv = await startEvkv(mode);
  try {
    await fill(bin, redisPort);
    await fill(bin, evkv.respPort);
    for (let round = 1; round <= rounds; round++) {
      for (const s of MEMTIER_SCENARIOS) {
        const order = round % 2 === 1
          ? ["redis-server", "evkv RESP"]
          : ["evkv RESP", "redis-server"];
        if (s.pipeline > 1) order.splice(round % 2 === 1 ? 2 : 0, 0, "evkv wire v1");
        for (const server of order) {
          console.error(`memtier round ${round}: ${s.name} against ${server}`);
          const r = server === "evkv wire v1"
            ? await wireV1(evkv.port, seconds)
            : await run(bin, server === "redis-server" ? redisPort : evkv.respPort, s, seconds);
          rows.push({ scenario: s.name, server, round, ...r });
        }
      }
    }
  } catch (e) {
    failures.push(`memtier comparison: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await evkv.stop();
    await stopRedis();
  }
  head.push(
    `memtier_benchmark (1 thread; 16 B keys, 100 B values, ${KEYS} keys filled first, ` +
      `SET:GET 1:10, ${seconds} s per run, ${rounds} rounds alternating which server goes ` +
      `first) against redis-server (no persistence) and evkv \`${
        mode.join(" ")
      }\`. evkv wire v1 is \`kvclient bench --connections 50 --pipeline 16 ` +
      `--ratio 10:1\` on the same evkv server. Ratios are medians of per-round ratios.`,
    "",
    "| scenario | server | round | ops/s | p99 ms |",
    "|---|---|---:|---:|---:|",
  );
  for (const r of rows) {
    head.push(
      `| ${r.scenario} | ${r.server} | ${r.round} | ${Math.round(r.opsPerSec)} | ${
        r.p99Ms.toFixed(3)
      } |`,
    );
  }
  head.push("", "| scenario | RESP / redis (ops) | RESP p99 / redis p99 | RESP / wire v1 (ops) |");
  head.push("|---|---:|---:|---:|");
  const pick = (sc: string, server: string, round: number) =>
    rows.find((r) => r.scenario === sc && r.server === server && r.round === round);
  for (const s of MEMTIER_SCENARIOS) {
    const ops: number[] = [];
    const p99: number[] = [];
    const wire: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const e = pick(s.name, "evkv RESP", round);
      const r = pick(s.name, "redis-server", round);
      const w = pick(s.name, "evkv wire v1", round);
      if (e && r) {
        ops.push(e.opsPerSec / r.opsPerSec);
        p99.push(e.p99Ms / r.p99Ms);
      }
      if (e && w) wire.push(e.opsPerSec / w.opsPerSec);
    }
    const f = (v: number[]) => (v.length === 0 ? "-" : median(v).toFixed(2));
    head.push(`| ${s.name} | ${f(ops)} | ${f(p99)} | ${f(wire)} |`);
  }
  head.push("");
  return { rows, markdown: head.join("\n") };
}

if (import.meta.main) {
  const arg = (name: string, def: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : def;
  };
  const failures: string[] = [];
  const i = Deno.args.indexOf("--evkv");
  const mode = i >= 0 ? Deno.args[i + 1].split(" ") : INLINE;
  const { markdown } = await memtierComparison(
    arg("--seconds", 5),
    arg("--rounds", 3),
    failures,
    mode,
  );
  console.log(markdown);
  for (const f of failures) console.error(f);
  Deno.exit(failures.length > 0 ? 1 : 0);
}
