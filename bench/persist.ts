/**
 * The persistence benchmark (part of `deno task bench`, or alone with
 * `deno run -A bench/persist.ts [--seconds N] [--rounds N]`):
 *
 * - write-heavy load (Put only, and Get:Put 1:1; 50 connections x pipeline
 *   16, 100-byte values over 10,000 keys) against servers with
 *   `--persist off`, `everysec` and `always`, in alternating rounds (the
 *   order rotates every round), each mode judged by the median of its
 *   per-round ratios to `off` in the same round;
 * - restart time with 1,000,000 keys on disk: from spawning the server to
 *   its listening line, and the load time it reports.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { type BenchResult, runBench } from "../src/loadgen/bench.ts";
import { shardOfKey } from "../src/kv/route.ts";
import { shardFile } from "../src/persist/plan.ts";
import { createShardFile } from "../src/persist/schema.ts";
import { type ServerProcess, startServerProcess } from "./server_process.ts";
import { median } from "./paired.ts";

const ROOT = new URL("../", import.meta.url);
const MODES = ["off", "everysec", "always"] as const;
type Mode = typeof MODES[number];
const SCENARIOS = [
  { name: "Put only", ratio: { get: 0, put: 1 } },
  { name: "Get:Put 1:1", ratio: { get: 1, put: 1 } },
] as const;
/** One IO worker and one task worker (one shard), as the main suite's pool runs. */
const THREADS = ["--io-threads", "1", "--workers", "1"];
const TARGETS = { everysec: 0.8, always: 0.3 } as const;
const RESTART_KEYS = 1_000_000;
const RESTART_TARGET_S = 10;

/** Starts the server from this tree with `flags`; it may write its data dir. */
function start(flags: string[]): Promise<ServerProcess> {
  return startServerProcess({
    name: "the server",
    script: "src/kvserver/cli.ts",
    args: flags,
    allow: ["--allow-write"],
    cwd: ROOT,
    timeoutMs: 120_000,
  });
}

async function stop(s: ServerProcess): Promise<number> {
  // The server installs its SIGTERM handler just after its listening line.
  await new Promise((r) => setTimeout(r, 300));
  s.child.kill("SIGTERM");
  const status = await s.child.status;
  await s.output;
  return status.code;
}

interface Cell {
  mode: Mode;
  scenario: string;
  round: number;
  result: BenchResult;
}

async function runMode(
  mode: Mode,
  round: number,
  seconds: number,
  scratch: string,
  cells: Cell[],
  failures: string[],
): Promise<void> {
  const dir = `${scratch}/${mode}-${round}`;
  let server: ServerProcess;
  try {
    server = await start(["--persist", mode, "--data-dir", dir, ...THREADS]);
  } catch (e) {
    failures.push(`persist ${mode}: did not start: ${e instanceof Error ? e.message : e}`);
    return;
  }
  try {
    for (const s of SCENARIOS) {
      const result = await runBench({
        port: server.port,
        connections: 50,
        pipeline: 16,
        durationS: seconds,
        threads: 2,
        ratio: s.ratio,
        keys: 10_000,
        valueSize: 100,
      });
      cells.push({ mode, scenario: s.name, round, result });
      console.error(
        `  persist ${mode.padEnd(8)} ${s.name.padEnd(12)} ${
          Math.round(result.opsPerSec).toLocaleString("en-US").padStart(9)
        } ops/s  p99 ${result.latencyMs.p99.toFixed(2)} ms  errors ${
          JSON.stringify(result.errors)
        }`,
      );
    }
  } catch (e) {
    failures.push(`persist ${mode} round ${round}: ${e instanceof Error ? e.message : e}`);
  } finally {
    const code = await stop(server);
    if (code !== 0) failures.push(`persist ${mode} round ${round}: exit code ${code}`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Writes `keys` keys of 100 B straight into `shards` shard files, routed as the server routes. */
function writeShards(dir: string, shards: number, keys: number): void {
  Deno.mkdirSync(dir, { recursive: true });
  const dbs = Array.from({ length: shards }, (_, s) => {
    createShardFile(shardFile(dir, s), s, shards);
    const db = new DatabaseSync(shardFile(dir, s));
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN");
    return db;
  });
  const puts = dbs.map((db) =>
    db.prepare("INSERT INTO kv (key, value, expires_at) VALUES (?, ?, 0)")
  );
  const enc = new TextEncoder();
  const value = new Uint8Array(100).fill(0x61);
  for (let i = 0; i < keys; i++) {
    const key = enc.encode(`key:${String(i).padStart(7, "0")}`);
    puts[shardOfKey(key, 0, key.length, shards)].run(key, value);
  }
  for (const db of dbs) {
    db.exec("COMMIT; PRAGMA wal_checkpoint(TRUNCATE)");
    db.close();
  }
}

/** What {@link persistBench} measured, as a Markdown section, and what failed. */
export interface PersistBenchReport {
  /** The section for the report. */
  md: string;
  /** What broke (a missed target is in the section, not here). */
  failures: string[];
}

/** Runs the persistence benchmark; `rounds` paired rounds of `seconds` per run. */
export async function persistBench(seconds: number, rounds: number): Promise<PersistBenchReport> {
  const scratch = `${Deno.cwd()}/tmp/persist-bench-${Date.now()}`;
  await Deno.mkdir(scratch, { recursive: true });
  const failures: string[] = [];
  const cells: Cell[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      console.error(`persist round ${round + 1} of ${rounds}`);
      // The order rotates, so that no mode always runs first or last.
      const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
      for (const mode of order) await runMode(mode, round, seconds, scratch, cells, failures);
    }
    const lines: string[] = [
      "## Persistence",
      "",
      `${rounds} rounds; in each, a fresh server per mode (\`${
        THREADS.join(" ")
      }\`, a fresh data dir) ` +
      `runs each scenario for ${seconds} s (50 connections x pipeline 16, 100 B values, 10,000 ` +
      "keys); the modes' order rotates every round. Ratios are per round against `off` in the " +
      "same round; the verdict uses their median.",
      "",
      "| scenario | off ops/s (median) | everysec ops/s | always ops/s | everysec / off per round | always / off per round | everysec median (goal >= 0.8) | always median (goal >= 0.3) |",
      "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: |",
    ];
    for (const s of SCENARIOS) {
      const ops = (m: Mode) =>
        cells.filter((c) => c.mode === m && c.scenario === s.name).map((c) => c.result.opsPerSec);
      const ratios = (m: Mode) => {
        const out: number[] = [];
        for (let r = 0; r < rounds; r++) {
          const off = cells.find((c) => c.mode === "off" && c.scenario === s.name && c.round === r);
          const it = cells.find((c) => c.mode === m && c.scenario === s.name && c.round === r);
          if (off && it && off.result.opsPerSec > 0) {
            out.push(it.result.opsPerSec / off.result.opsPerSec);
          }
        }
        return out;
      };
      const fmt = (n: number) => Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-";
      const verdict = (m: "everysec" | "always") => {
        const med = median(ratios(m));
        const met = med >= TARGETS[m];
        return `${med.toFixed(3)}x (${met ? "met" : "missed"})`;
      };
      lines.push(
        `| ${s.name} | ${fmt(median(ops("off")))} | ${fmt(median(ops("everysec")))} | ${
          fmt(median(ops("always")))
        } | ${ratios("everysec").map((r) => r.toFixed(2)).join(", ")} | ${
          ratios("always").map((r) => r.toFixed(2)).join(", ")
        } | ${verdict("everysec")} | ${verdict("always")} |`,
      );
    }
    const errs = cells.filter((c) => Object.keys(c.result.errors).length > 0);
    for (const c of errs) {
      failures.push(`persist ${c.mode} ${c.scenario}: errors ${JSON.stringify(c.result.errors)}`);
    }

    console.error(
      `restart: writing ${RESTART_KEYS.toLocaleString("en-US")} keys into 2 shard files`,
    );
    const dir = `${scratch}/restart`;
    const t0 = performance.now();
    writeShards(dir, 2, RESTART_KEYS);
    const writeS = (performance.now() - t0) / 1000;
    const server = await start(["--data-dir", dir, "--io-threads", "1", "--workers", "2"]);
    const load = /loaded (\d+) keys from .* in (\d+) ms/.exec(server.startup);
    const code = await stop(server);
    const loaded = load ? Number(load[1]) : 0;
    const met = server.startS < RESTART_TARGET_S;
    if (loaded !== RESTART_KEYS || code !== 0) {
      failures.push(
        `restart with ${RESTART_KEYS} keys: ${
          server.startS.toFixed(2)
        } s, ${loaded} keys loaded, ` +
          `exit ${code}`,
      );
    }
    console.error(`restart: listening after ${server.startS.toFixed(2)} s, ${load?.[0] ?? "?"}`);
    lines.push(
      "",
      `Restart with ${
        RESTART_KEYS.toLocaleString("en-US")
      } keys of 100 B (2 shard files, written ` +
        `beforehand in ${writeS.toFixed(1)} s; \`--io-threads 1 --workers 2\`): listening ` +
        `${server.startS.toFixed(2)} s after spawn, of which loading took ${load?.[2] ?? "?"} ms ` +
        `(${loaded.toLocaleString("en-US")} keys; goal < ${RESTART_TARGET_S} s: ` +
        `${met ? "met" : "missed"}).`,
      "",
    );
    return { md: lines.join("\n"), failures };
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { seconds: { type: "string" }, rounds: { type: "string" } },
  });
  const r = await persistBench(Number(values.seconds ?? 3), Number(values.rounds ?? 3));
  console.log(r.md);
  for (const f of r.failures) console.error(`missed: ${f}`);
  Deno.exit(r.failures.length > 0 ? 1 : 0);
}
