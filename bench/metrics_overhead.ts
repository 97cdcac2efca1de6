/**
 * What `--metrics-port` costs: the same server with and without the metrics
 * endpoint, the former scraped every second during the run, in alternating
 * rounds of the same run (the order flips every round), judged on the
 * median of the per-round ratios. With `--baseline DIR`, a third target runs
 * the server from another checkout (main, before request metrics existed),
 * which prices the per-request recording as well.
 *
 * ```sh
 * flock /tmp/evkv-bench.lock deno run --allow-run --allow-net --allow-read \
 *   bench/metrics_overhead.ts --rounds 5 --seconds 4 [--baseline ../main]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BenchResult, runBench } from "../src/loadgen/bench.ts";
import { memoryOnly, serverCli } from "./checkout.ts";
import { median } from "./paired.ts";
import { type ServerProcess, startServerProcess } from "./server_process.ts";

interface Target {
  name: string;
  /** The checkout whose server runs. */
  root: string;
  args: string[];
  scrape: boolean;
}

const ROOT = new URL("../", import.meta.url).pathname;
const SERVER = ["--mode", "inline", "--io-threads", "1"];
const LOAD = {
  connections: 50,
  pipeline: 16,
  threads: 1,
  ratio: { get: 9, put: 1 },
  keys: 10_000,
  valueSize: 100,
};

function start(t: Target): Promise<ServerProcess> {
  return startServerProcess({
    name: t.name,
    script: serverCli(t.root),
    args: [...memoryOnly(t.root), ...SERVER, ...t.args],
  });
}

async function run(t: Target, seconds: number): Promise<{ result: BenchResult; scrapes: number }> {
  const server = await start(t);
  let scrapes = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  try {
    await runBench({ port: server.port, ...LOAD, durationS: 0.5 }); // warm-up
    if (t.scrape) {
      if (server.metricsPort === undefined) throw new Error(`${t.name}: no metrics port`);
      timer = setInterval(async () => {
        const r = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`);
        const text = await r.text();
        if (r.status === 200 && text.includes("evkv_request_duration_seconds_count")) scrapes++;
      }, 1000);
    }
    const result = await runBench({ port: server.port, ...LOAD, durationS: seconds, fill: false });
    return { result, scrapes };
  } finally {
    clearInterval(timer);
    server.child.kill("SIGTERM");
    await server.child.status;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "5" },
      seconds: { type: "string", default: "4" },
      baseline: { type: "string" },
    },
  });
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const targets: Target[] = [
    { name: "no --metrics-port", root: ROOT, args: [], scrape: false },
    {
      name: "--metrics-port, scraped 1/s",
      root: ROOT,
      args: ["--metrics-port", "0"],
      scrape: true,
    },
  ];
  if (values.baseline) {
    targets.push({
      name: `baseline (${values.baseline})`,
      root: values.baseline,
      args: [],
      scrape: false,
    });
  }
  const ops: number[][] = targets.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const order = targets.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    for (const i of order) {
      const { result, scrapes } = await run(targets[i], seconds);
      ops[i].push(result.opsPerSec);
      const errs = Object.keys(result.errors).length ? JSON.stringify(result.errors) : "none";
      console.log(
        `round ${r + 1} ${targets[i].name.padEnd(40)} ${
          Math.round(result.opsPerSec).toLocaleString("en-US").padStart(9)
        } ops/s  p50 ${result.latencyMs.p50.toFixed(3)} ms  errors ${errs}` +
          (targets[i].scrape ? `  scrapes ${scrapes}` : ""),
      );
    }
  }
  const ratios = (a: number, b: number) => ops[a].map((x, r) => x / ops[b][r]);
  const withMetrics = ratios(1, 0);
  console.log(
    `\nwith / without --metrics-port, per round: ${
      withMetrics.map((x) => x.toFixed(3)).join(" ")
    }; median ${median(withMetrics).toFixed(3)}`,
  );
  if (values.baseline) {
    const vsBase = ratios(0, 2);
    console.log(
      `this branch (no metrics port) / baseline, per round: ${
        vsBase.map((x) => x.toFixed(3)).join(" ")
      }; median ${median(vsBase).toFixed(3)}`,
    );
  }
}

if (import.meta.main) await main();
