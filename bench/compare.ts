/**
 * `deno task bench:compare --baseline DIR`: this checkout against another
 * checkout of evkv (for example the previous commit, made with
 * `git worktree add /work/base <commit>`), in one run, for changes that must
 * leave the speed as it was. Each side's server starts through that
 * checkout's own `deno task serve` entry, on free loopback ports, in memory
 * only. In each round both sides' servers are up together (an idle one
 * costs next to no CPU) and every case runs on one side and straight after
 * on the other, the first side alternating round by round (A B, B A, ...);
 * each case is judged on the median of its per-round ratios (this /
 * baseline), since the shared VM drifts by more than the changes it is
 * meant to show, and the two runs of a pair are only seconds apart.
 *
 * Cases: wire v1 Get:Put 9:1 (`kvclient bench`'s load generator, the suite's
 * workload) at 50 connections without pipelining and with 16 in flight, in
 * `--mode pool` and `--mode inline` (`--accept reuseport`), one connection's
 * latency in pool mode, and RESP SET and GET with `redis-benchmark -P 16` in
 * pool mode when redis-benchmark is installed. Writes
 * `bench/results/<date>-compare.md` and prints it.
 *
 * ```sh
 * deno task bench:compare --baseline /work/base               # 4 s x 5 rounds, ~5 minutes
 * deno task bench:compare --baseline /work/base --seconds 1 --rounds 2   # a smoke test
 * ```
 *
 * It holds `/tmp/evkv-bench.lock` (flock) while it runs, so that benchmarks
 * do not overlap; under `flock /tmp/evkv-bench.lock ...` it uses the lock it
 * was given.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BenchResult, runBench } from "../src/loadgen/bench.ts";
import { memoryOnly, serveEntry } from "./checkout.ts";
import { inTurn, median } from "./paired.ts";
import {
  cpuSeconds,
  type ServerProcess,
  startServerProcess,
  stopServerProcess,
} from "./server_process.ts";
import { have, redisBenchmark, type RespRun } from "./resp.ts";
import {
  INLINE_THREADS,
  LOADGEN_THREADS,
  POOL_THREADS,
  type Scenario,
  SCENARIOS,
  stampNow,
  WORKLOAD,
} from "./run.ts";

/** The lock every benchmark on this machine runs under. */
export const BENCH_LOCK = "/tmp/evkv-bench.lock";

const ROOT = new URL("../", import.meta.url).pathname;

/** A server mode of the comparison and the cases measured on one server started in it. */
interface Mode {
  /** `pool` or `inline`. */
  name: string;
  /** Its server flags. */
  flags: string[];
  /** Its wire v1 scenarios. */
  scenarios: Scenario[];
  /** Whether redis-benchmark runs against its RESP port too. */
  resp: boolean;
}

/** One case's figures from one side in one round. */
export interface Sample {
  /** OK replies per second. */
  opsPerSec: number;
  /** Median latency in ms. */
  p50Ms: number;
  /** 99th percentile latency in ms; NaN where the client does not give it. */
  p99Ms: number;
  /** Server CPU time (user + system) per request in µs; NaN where unknown. */
  cpuUs: number;
  /** Failed requests, by kind. */
  errors: Record<string, number>;
}

/** One side's samples in one round, by case name. */
export type Samples = Map<string, Sample>;

/** One side of the comparison. */
interface Side {
  /** Name in the report. */
  name: string;
  /** Its checkout. */
  root: string;
}

function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-";
}

/** Milliseconds and ratios: 3 decimals, or "-" where there is no figure. */
function fmt3(n: number): string {
  return Number.isFinite(n) ? n.toFixed(3) : "-";
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A case's name in the report. */
function caseName(mode: Mode, what: string): string {
  return `${mode.name}: ${what}`;
}

function wireSample(r: BenchResult, cpuUs: number): Sample {
  return {
    opsPerSec: r.opsPerSec,
    p50Ms: r.latencyMs.p50,
    p99Ms: r.latencyMs.p99,
    cpuUs,
    errors: { ...r.errors, ...r.fill.errors },
  };
}

function respSample(run: RespRun, test: string): Sample {
  return {
    opsPerSec: run.rps[test] ?? NaN,
    p50Ms: run.p50Ms[test] ?? NaN,
    p99Ms: NaN,
    cpuUs: NaN,
    errors: run.rps[test] === undefined ? { [`no ${test} result`]: 1 } : {},
  };
}

/**
 * Starts `side`'s server as its checkout's `deno task serve` does (same
 * script, same `deno run` flags, the checkout as working folder, so its own
 * deno.json applies), on a free port, in memory only, with `flags`.
 */
function startServe(side: Side, flags: string[]): Promise<ServerProcess> {
  const entry = serveEntry(side.root);
  return startServerProcess({
    name: side.name,
    script: entry.script,
    // startServerProcess gives every server these three already.
    allow: entry.flags.filter((f) =>
      !["--unstable-net", "--allow-net", "--allow-read"].includes(f)
    ),
    args: [...memoryOnly(side.root), ...flags],
    cwd: side.root,
  });
}

/** One case (or two, for redis-benchmark's SET and GET) on one side's server. */
type Step = (server: ServerProcess, side: Side) => Promise<[string, Sample][]>;

/** A load generator run with the suite's workload and load generator threads. */
function bench(
  server: ServerProcess,
  connections: number,
  pipeline: number,
  durationS: number,
  fill: boolean,
): Promise<BenchResult> {
  return runBench({
    port: server.port,
    connections,
    pipeline,
    durationS,
    fill,
    threads: LOADGEN_THREADS,
    ...WORKLOAD,
  });
}

/** The cases of `mode`, each to run on both sides. */
function steps(mode: Mode, seconds: number): Step[] {
  const wire = mode.scenarios.map((s): Step => async (server) => {
    const cpu0 = cpuSeconds(server.child.pid);
    const r = await bench(server, s.connections, s.pipeline, seconds, false);
    const cpuUs = (cpuSeconds(server.child.pid) - cpu0) * 1e6 / (r.ops || 1);
    return [[caseName(mode, s.name), wireSample(r, cpuUs)]];
  });
  const resp: Step = async (server, side) => {
    if (server.respPort === undefined) throw new Error("no RESP port in its listening line");
    // About `seconds` of SETs and as many of GETs at this VM's ~250k requests/s.
    const run = await redisBenchmark(side.name, server.respPort, 60_000 * seconds);
    return ["SET", "GET"].map((test) => [
      caseName(mode, `RESP ${test}, redis-benchmark -P 16`),
      respSample(run, test),
    ]);
  };
  return mode.resp ? [...wire, resp] : wire;
}

/**
 * One round of `mode`: starts both sides' servers (an idle one costs next
 * to no CPU), warms both up (which also fills the keyspace), then runs
 * each case on one side and straight after on the other, in `order`, so
 * that the two runs of a case are seconds apart rather than a whole mode's
 * worth; stops both.
 */
async function measureMode(
  sides: readonly [Side, Side],
  mode: Mode,
  order: readonly [number, number],
  seconds: number,
  into: [Samples, Samples],
  failures: string[],
): Promise<void> {
  const servers: ServerProcess[] = [];
  const flags = [...mode.flags, ...(mode.resp ? ["--resp-port", "0"] : [])];
  try {
    for (const i of order) servers[i] = await startServe(sides[i], flags);
    // Warm the JIT on both ends so that the first case does not pay for it.
    for (const i of order) await bench(servers[i], 8, 8, Math.min(0.5, seconds / 2), true);
    for (const step of steps(mode, seconds)) {
      for (const i of order) {
        try {
          for (const [name, sample] of await step(servers[i], sides[i])) into[i].set(name, sample);
        } catch (err) {
          failures.push(`${sides[i].name}, ${mode.name}: ${message(err)}`);
        }
      }
    }
  } catch (err) {
    failures.push(`${mode.name}: ${message(err)}`);
  } finally {
    for (const [i, server] of servers.entries()) {
      if (!server) continue;
      const { code } = await stopServerProcess(server);
      if (code !== 0) {
        failures.push(`${sides[i].name}, ${mode.name}: the server exited with ${code}`);
      }
    }
  }
}

/** Per case: both sides' medians and the median of the per-round ratios. */
export interface CaseSummary {
  /** `pool: 50 conns, pipeline 16` and the like. */
  name: string;
  /** Rounds in which both sides measured the case. */
  rounds: number;
  /** Median ops/s of the baseline, then of this checkout. */
  opsPerSec: [number, number];
  /** Median of the rounds' ops/s ratios, this / baseline. */
  ratio: number;
  /** Smallest and largest round ratio. */
  spread: [number, number];
  /** Median p50 and p99 in ms, baseline then this checkout. */
  p50Ms: [number, number];
  p99Ms: [number, number];
  /** Median of the rounds' server CPU per request ratios, this / baseline; NaN if unknown. */
  cpuRatio: number;
  /** Errors over all rounds, baseline then this checkout. */
  errors: [number, number];
}

/**
 * Folds the rounds into one summary per case, in the order the cases were
 * first measured.
 *
 * @example
 * ```ts ignore
 * const rows = summarise(pairs); // one [baseline, this] pair of Samples per round
 * ```
 */
export function summarise(pairs: [Samples, Samples][]): CaseSummary[] {
  const names = [...new Set(pairs.flatMap(([a, b]) => [...a.keys(), ...b.keys()]))];
  return names.map((name) => {
    const both = pairs.filter(([a, b]) => a.has(name) && b.has(name))
      .map(([a, b]) => [a.get(name)!, b.get(name)!] as const);
    const each = (f: (s: Sample) => number): [number, number] => [
      median(both.map(([a]) => f(a))),
      median(both.map(([, b]) => f(b))),
    ];
    const ratios = both.map(([a, b]) => b.opsPerSec / a.opsPerSec);
    const errors = (s: Sample) => Object.values(s.errors).reduce((x, y) => x + y, 0);
    return {
      name,
      rounds: both.length,
      opsPerSec: each((s) => s.opsPerSec),
      ratio: median(ratios),
      spread: [Math.min(...ratios), Math.max(...ratios)],
      p50Ms: each((s) => s.p50Ms),
      p99Ms: each((s) => s.p99Ms),
      cpuRatio: median(both.map(([a, b]) => b.cpuUs / a.cpuUs)),
      errors: [
        both.reduce((n, [a]) => n + errors(a), 0),
        both.reduce((n, [, b]) => n + errors(b), 0),
      ],
    };
  });
}

/** `abc1234` plus a note when the tree has uncommitted changes; "" outside git. */
function revision(root: string): string {
  const git = (...args: string[]) => {
    try {
      const out = new Deno.Command("git", { args: ["-C", root, ...args], stdout: "piped" })
        .outputSync();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
    } catch {
      return "";
    }
  };
  const head = git("rev-parse", "--short", "HEAD");
  if (!head) return "";
  return git("status", "--porcelain").length > 0 ? `${head} + uncommitted changes` : head;
}

/** The markdown report. */
function render(
  sides: [Side, Side],
  modes: Mode[],
  rows: CaseSummary[],
  failures: string[],
  meta: { stamp: string; seconds: number; rounds: number; totalS: number; load: number[] },
): string {
  const base = sides[0];
  const out = [
    `# evkv: this checkout against ${base.root}, ${meta.stamp}`,
    "",
    ...sides.map((side) =>
      `- ${side.name}: \`${side.root}\` ${revision(side.root)}, serving \`${
        serveEntry(side.root).script
      }\``
    ),
    "",
    `${navigator.hardwareConcurrency} cores, ${Deno.build.os} ${Deno.build.arch}, Deno ` +
    `${Deno.version.deno}; load average at start ${
      meta.load.map((l) => l.toFixed(2)).join(" ")
    }. ${meta.rounds} rounds; in each, both sides' servers run side by side and every case ` +
    "runs on one and straight after on the other, the first side alternating by round (A B, " +
    `B A, ...); ${meta.seconds} s per wire v1 run. Each side's server starts through its ` +
    "checkout's own `deno task serve` entry with `--port 0` and, where it has persistence, " +
    "`--persist off`, once per mode per round: " +
    modes.map((m) => `\`${m.name}\` \`${m.flags.join(" ")}\``).join(", ") + ". Wire v1 load: " +
    `\`kvclient bench\`'s generator in ${LOADGEN_THREADS} threads, Get:Put ` +
    `${WORKLOAD.ratio.get}:${WORKLOAD.ratio.put} over ${fmtInt(WORKLOAD.keys)} keys of ` +
    `${WORKLOAD.valueSize} B (filled in a 0.5 s warm-up). RESP: \`redis-benchmark -t set,get ` +
    `-n ${60_000 * meta.seconds} -P 16 -q\` (50 clients).`,
    "",
    "Ratios are this / baseline: the median of the rounds' ratios, then the smallest and " +
    "largest round. ops/s, p50 and p99 are each side's medians over the rounds. CPU is the " +
    "server's user + system time per request (wire v1 only).",
    "",
    ...(modes.some((m) => m.resp)
      ? []
      : ["RESP cases skipped: redis-benchmark is not installed (Debian: redis-tools).", ""]),
    "| case | baseline ops/s | this ops/s | ratio | rounds' range | p50 ms base / this | " +
    "p99 ms base / this | CPU/request ratio | errors |",
    "|---|---:|---:|---:|---|---:|---:|---:|---|",
    ...rows.map((r) =>
      `| ${r.name} | ${fmtInt(r.opsPerSec[0])} | ${fmtInt(r.opsPerSec[1])} | ` +
      `**${fmt3(r.ratio)}** | ${
        r.rounds > 0 ? `${r.spread[0].toFixed(2)}–${r.spread[1].toFixed(2)} ` : ""
      }(${r.rounds}) | ${fmt3(r.p50Ms[0])} / ${fmt3(r.p50Ms[1])} | ` +
      `${fmt3(r.p99Ms[0])} / ${fmt3(r.p99Ms[1])} | ` +
      `${fmt3(r.cpuRatio)} | ` +
      `${r.errors[0] + r.errors[1] === 0 ? "none" : `${r.errors[0]} / ${r.errors[1]}`} |`
    ),
    "",
  ];
  if (failures.length > 0) {
    out.push("Runs that failed:", "", ...failures.map((f) => `- ${f}`), "");
  }
  out.push(`Time: ${meta.totalS.toFixed(0)} s.`, "");
  return out.join("\n");
}

/**
 * Whether a process above this one has {@link BENCH_LOCK} open: run as
 * `flock BENCH_LOCK deno task bench:compare ...`, flock holds the lock and
 * taking it again would wait forever (deno task and npx do not hand its
 * descriptor down, so the ancestors' are what tells). Walked in `sh`, since
 * Deno reads other processes' /proc files only with --allow-all.
 */
function ancestorHoldsLock(): boolean {
  const walk = `p=$PPID; while [ "$p" -gt 1 ]; do ` +
    `for f in /proc/$p/fd/*; do [ "$(readlink "$f")" = '${BENCH_LOCK}' ] && exit 0; done; ` +
    `p=$(awk '/^PPid:/ { print $2 }' /proc/$p/status); done; exit 1`;
  try {
    return new Deno.Command("sh", { args: ["-c", walk], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Takes {@link BENCH_LOCK} (flock) for as long as this process lives,
 * waiting for whoever holds it, unless an ancestor already holds it.
 */
async function holdBenchLock(): Promise<void> {
  if (ancestorHoldsLock()) return;
  const file = await Deno.open(BENCH_LOCK, { create: true, write: true });
  const note = setTimeout(() => console.error(`Waiting for ${BENCH_LOCK}...`), 1000);
  await file.lock(true);
  clearTimeout(note);
  // Kept open on purpose: the lock goes when the process exits.
}

const USAGE = `Usage: deno task bench:compare --baseline DIR [--seconds 4] [--rounds 5]

  --baseline DIR  another evkv checkout (git worktree add /work/base <commit>)
  --seconds N     seconds per wire v1 run (default 4)
  --rounds N      rounds (default 5; about 50 s each at 4 s per run)
  --out DIR       where the report goes (default bench/results; the task may write only there)`;

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      baseline: { type: "string" },
      seconds: { type: "string", default: "4" },
      rounds: { type: "string", default: "5" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  if (values.help || values.baseline === undefined) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (!(seconds > 0 && seconds <= 60) || !(Number.isInteger(rounds) && rounds >= 1)) {
    console.error(`--seconds must be in (0, 60] and --rounds a whole number >= 1\n\n${USAGE}`);
    return 2;
  }
  const sides: [Side, Side] = [
    { name: "baseline", root: values.baseline.replace(/\/$/, "") },
    { name: "this", root: ROOT.replace(/\/$/, "") },
  ];
  try {
    // Fail now rather than in every round: DIR must be a checkout with a serve task.
    for (const side of sides) serveEntry(side.root);
  } catch (err) {
    console.error(`--baseline ${values.baseline}: ${message(err)}\n\n${USAGE}`);
    return 2;
  }
  const resp = have("redis-benchmark");
  const modes: Mode[] = [
    {
      name: "pool",
      flags: ["--mode", "pool", "--accept", "reuseport", ...POOL_THREADS],
      scenarios: SCENARIOS,
      resp,
    },
    {
      name: "inline",
      flags: ["--mode", "inline", "--accept", "reuseport", ...INLINE_THREADS],
      scenarios: SCENARIOS.filter((s) => s.connections > 1),
      resp: false,
    },
  ];
  await holdBenchLock();
  const began = performance.now();
  const load = Deno.loadavg();
  const failures: string[] = [];
  const pairs: [Samples, Samples][] = [];
  for (let round = 0; round < rounds; round++) {
    const into: [Samples, Samples] = [new Map(), new Map()];
    for (const mode of modes) {
      await measureMode(sides, mode, inTurn(round), seconds, into, failures);
    }
    for (const [name, s] of into[1]) {
      const b = into[0].get(name);
      console.error(
        `round ${round + 1} ${name.padEnd(42)} ${fmtInt(b?.opsPerSec ?? NaN).padStart(9)} ` +
          `-> ${fmtInt(s.opsPerSec).padStart(9)} ops/s  ratio ${
            fmt3(s.opsPerSec / (b?.opsPerSec ?? NaN))
          }`,
      );
    }
    pairs.push(into);
  }
  const totalS = (performance.now() - began) / 1000;
  const stamp = stampNow(new Date());
  const rows = summarise(pairs);
  const md = render(sides, modes, rows, failures, {
    stamp,
    seconds,
    rounds,
    totalS,
    load,
  });
  const outDir = (values.out ?? new URL("results/", import.meta.url).pathname).replace(/\/$/, "");
  const file = `${outDir}/${stamp}-compare.md`;
  console.log(md);
  try {
    await Deno.mkdir(outDir, { recursive: true });
    await Deno.writeTextFile(file, md);
  } catch (err) {
    // The task may write to bench/results only; the figures are printed above either way.
    console.error(`Could not write ${file}: ${message(err)}`);
    return 1;
  }
  console.error(`Wrote ${file}`);
  const errors = rows.some((r) => r.errors[0] + r.errors[1] > 0);
  return errors || failures.length > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
