/**
 * `kvclient bench`: a load generator for the wire v1 protocol, kept out of
 * the published client library (it shares nothing with `Client`). It spreads
 * its connections over worker threads (so that the generator is not what
 * limits the numbers), fills the keyspace with pipelined Puts, then keeps a
 * window of requests in flight on every connection for a duration or a
 * request count, and reports ops/s, MB/s, and latency percentiles from an
 * HDR histogram merged over the workers.
 *
 * @example
 * ```sh
 * deno task client -- bench --connections 50 --pipeline 16 --duration 5 --ratio 9:1
 * deno task client -- bench --requests 100000 --json
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  decodeHistogram,
  encodeHistogram,
  type FromWorker,
  newHistogram,
  prepareShare,
  type ShareConfig,
  type ShareResult,
  type ToWorker,
} from "./bench_worker.ts";

/** Options of {@link runBench}; every field but `port` has a default. */
export interface BenchOptions {
  /** Server host. Default `127.0.0.1`. */
  host?: string;
  /** Server port. Default 7379. */
  port?: number;
  /** TCP connections. Default 50. */
  connections?: number;
  /** Requests in flight per connection; 1 = no pipelining. Default 1. */
  pipeline?: number;
  /** Timed phase in seconds, when `requests` is not set. Default 5. */
  durationS?: number;
  /** Requests in the timed phase; when set (> 0), it ends the run instead of a duration. */
  requests?: number;
  /** Relative weights of Gets and Puts. Default 9:1. */
  ratio?: { get: number; put: number };
  /** Keys in the keyspace, all written before the timed phase. Default 10000. */
  keys?: number;
  /** Bytes per value. Default 100. */
  valueSize?: number;
  /** Whether to fill the keyspace first. Default true. */
  fill?: boolean;
  /**
   * Worker threads that generate the load; 0 runs it in the calling thread
   * (which then must not be busy). Default 1.
   */
  threads?: number;
  /** Give up on requests after this many ms without any reply. Default 10000. */
  stallMs?: number;
  /** Called about every 250 ms in the timed phase with OK replies so far and seconds elapsed. */
  onProgress?: (ok: number, elapsedS: number) => void;
  /** Speak TLS, trusting these CA certificates (PEM). Default: plain TCP. */
  tlsCaCerts?: string[];
}

/** Latency percentiles, in milliseconds (µs resolution). */
export interface LatencyMs {
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
  /** 99.9th percentile. */
  p999: number;
  /** Largest latency seen. */
  max: number;
  /** Smallest latency seen. */
  min: number;
  /** Arithmetic mean. */
  mean: number;
}

/** What {@link runBench} measured; `--json` prints exactly this object. */
export interface BenchResult {
  /** The options the run used, defaults filled in. */
  config: {
    host: string;
    port: number;
    connections: number;
    pipeline: number;
    durationS: number | null;
    requests: number | null;
    ratio: { get: number; put: number };
    keys: number;
    valueSize: number;
    threads: number;
  };
  /** OK replies in the timed phase. */
  ops: number;
  /** OK replies per second. */
  opsPerSec: number;
  /** Bytes written plus read, per second, in MB (10^6 bytes). */
  mbPerSec: number;
  /** Bytes written in the timed phase. */
  txBytes: number;
  /** Bytes read in the timed phase. */
  rxBytes: number;
  /** Timed phase, from start until the last reply, in seconds. */
  elapsedS: number;
  /** Requests sent in the timed phase, by method. */
  sent: { get: number; put: number };
  /** Latency of OK replies, from writing the request to reading its reply. */
  latencyMs: LatencyMs;
  /** Failed requests by status name (or client-side error name); empty when none failed. */
  errors: Record<string, number>;
  /** The keyspace fill before the timed phase. */
  fill: { keys: number; seconds: number; errors: Record<string, number> };
  /** The merged latency histogram (µs), HdrHistogram compressed base64, for later merging. */
  histogram: string;
}

/** The `--json` fields, for scripts that check the shape. */
export const BENCH_JSON_FIELDS: readonly (keyof BenchResult)[] = [
  "config",
  "ops",
  "opsPerSec",
  "mbPerSec",
  "txBytes",
  "rxBytes",
  "elapsedS",
  "sent",
  "latencyMs",
  "errors",
  "fill",
  "histogram",
];

const WORKER_URL = new URL("./bench_worker.ts", import.meta.url);

function positiveInt(name: string, v: number, min: number): number {
  if (!Number.isSafeInteger(v) || v < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  }
  return v;
}

/** Splits `total` into `parts` nearly equal shares. */
function split(total: number, parts: number, i: number): number {
  return Math.floor(total / parts) + (i < total % parts ? 1 : 0);
}

/**
 * Runs a load test against an evkv server (or any server that answers or
 * echoes wire-v1 frames) and resolves with what it measured.
 *
 * @example
 * ```ts ignore
 * import { runBench } from "./bench.ts";
 * const r = await runBench({ port: 7379, connections: 8, pipeline: 4, durationS: 2 });
 * console.log(r.opsPerSec, r.latencyMs.p99);
 * ```
 */
export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const host = opts.host ?? "127.0.0.1";
  const port = positiveInt("port", opts.port ?? 7379, 1);
  const connections = positiveInt("connections", opts.connections ?? 50, 1);
  const pipeline = positiveInt("pipeline", opts.pipeline ?? 1, 1);
  const requests = positiveInt("requests", opts.requests ?? 0, 0);
  const durationS = requests > 0 ? 0 : opts.durationS ?? 5;
  if (requests === 0 && !(durationS > 0)) {
    throw new RangeError(`duration must be over 0 seconds, got ${durationS}`);
  }
  const ratio = opts.ratio ?? { get: 9, put: 1 };
  if (!(ratio.get >= 0 && ratio.put >= 0 && ratio.get + ratio.put > 0)) {
    throw new RangeError(`ratio needs non-negative weights, not both 0`);
  }
  const keys = positiveInt("keys", opts.keys ?? 10000, 1);
  const valueSize = positiveInt("value size", opts.valueSize ?? 100, 0);
  const inThread = (opts.threads ?? 1) === 0;
  // A share needs a connection and, with a request count, a request.
  const threads = inThread ? 1 : Math.min(
    positiveInt("threads", opts.threads ?? 1, 0),
    connections,
    requests > 0 ? requests : Infinity,
  );
  const stallMs = opts.stallMs ?? 10_000;
  const fill = opts.fill ?? true;

  const progress = new SharedArrayBuffer(8 * threads);
  const counts = new Float64Array(progress);
  const configs: ShareConfig[] = Array.from({ length: threads }, (_, i) => ({
    host,
    port,
    connections: split(connections, threads, i),
    pipeline,
    durationMs: durationS * 1000,
    requests: requests > 0 ? split(requests, threads, i) : 0,
    getFraction: ratio.get / (ratio.get + ratio.put),
    keys,
    valueSize,
    fillStride: fill ? threads : 0,
    fillOffset: i,
    stallMs,
    seed: (0x9e3779b9 * (i + 1)) >>> 0,
    tlsCaCerts: opts.tlsCaCerts,
  }));

  let results: ShareResult[];
  let ticker: ReturnType<typeof setInterval> | undefined;
  const startTicker = () => {
    if (!opts.onProgress) return;
    const t0 = performance.now();
    const onProgress = opts.onProgress;
    ticker = setInterval(() => {
      let ok = 0;
      for (const c of counts) ok += c;
      onProgress(ok, (performance.now() - t0) / 1000);
    }, 250);
  };
  try {
    if (inThread) {
      const share = await prepareShare(configs[0], counts, 0);
      startTicker();
      results = [await share.run()];
    } else {
      results = await runWorkers(configs, progress, startTicker);
    }
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
  }
  return merge(results, {
    host,
    port,
    connections,
    pipeline,
    durationS: durationS > 0 ? durationS : null,
    requests: requests > 0 ? requests : null,
    ratio: { get: ratio.get, put: ratio.put },
    keys,
    valueSize,
    threads: inThread ? 0 : threads,
  });
}

/** Starts one worker per share, fills, releases them together, and collects their results. */
async function runWorkers(
  configs: ShareConfig[],
  progress: SharedArrayBuffer,
  onGo: () => void,
): Promise<ShareResult[]> {
  const workers: Worker[] = [];
  const inbox: { next: (type: "ready" | "done") => Promise<FromWorker> }[] = [];
  try {
    for (let i = 0; i < configs.length; i++) {
      const w = new Worker(WORKER_URL, { type: "module", name: `evkv-bench-${i}` });
      workers.push(w);
      const queue: FromWorker[] = [];
      let waiter: ((m: FromWorker) => void) | null = null;
      let failure: Error | null = null;
      const deliver = (m: FromWorker) => {
        if (waiter) {
          const wake = waiter;
          waiter = null;
          wake(m);
        } else {
          queue.push(m);
        }
      };
      w.onmessage = (e: MessageEvent<FromWorker>) => deliver(e.data);
      w.onerror = (e) => {
        e.preventDefault();
        failure = new Error(`Bench worker ${i} failed: ${e.message}`);
        deliver({ type: "error", message: failure.message });
      };
      inbox.push({
        next: (type) =>
          new Promise<FromWorker>((resolve, reject) => {
            const take = (m: FromWorker) => {
              if (m.type === "error") reject(new Error(m.message));
              else if (m.type !== type) reject(new Error(`Bench worker ${i}: got ${m.type}`));
              else resolve(m);
            };
            const m = queue.shift();
            if (m) take(m);
            else if (failure) reject(failure);
            else waiter = take;
          }),
      });
      const init: ToWorker = { type: "init", config: configs[i], progress, index: i };
      w.postMessage(init);
    }
    await Promise.all(inbox.map((b) => b.next("ready")));
    onGo();
    const go: ToWorker = { type: "go" };
    for (const w of workers) w.postMessage(go);
    const done = await Promise.all(inbox.map((b) => b.next("done")));
    return done.map((m) => (m as { result: ShareResult }).result);
  } finally {
    for (const w of workers) w.terminate();
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

function merge(results: ShareResult[], config: BenchResult["config"]): BenchResult {
  const hist = newHistogram();
  const errors: Record<string, number> = {};
  const fillErrors: Record<string, number> = {};
  let ops = 0;
  let tx = 0;
  let rx = 0;
  let elapsedMs = 0;
  let filled = 0;
  let fillMs = 0;
  const sent = { get: 0, put: 0 };
  for (const r of results) {
    hist.add(decodeHistogram(r.histogram));
    addCounts(errors, r.errors);
    addCounts(fillErrors, r.fillErrors);
    ops += r.ok;
    tx += r.txBytes;
    rx += r.rxBytes;
    sent.get += r.sent.get;
    sent.put += r.sent.put;
    // Shares start together; the run lasts until the slowest one is done.
    elapsedMs = Math.max(elapsedMs, r.elapsedMs);
    filled += r.filled;
    fillMs = Math.max(fillMs, r.fillMs);
  }
  const us = (v: number) => round3(v / 1000);
  const empty = hist.totalCount === 0;
  const elapsedS = elapsedMs / 1000;
  return {
    config,
    ops,
    opsPerSec: Math.round(ops / elapsedS),
    mbPerSec: round3((tx + rx) / 1e6 / elapsedS),
    txBytes: tx,
    rxBytes: rx,
    elapsedS: round3(elapsedS),
    sent,
    latencyMs: {
      p50: us(hist.getValueAtPercentile(50)),
      p90: us(hist.getValueAtPercentile(90)),
      p99: us(hist.getValueAtPercentile(99)),
      p999: us(hist.getValueAtPercentile(99.9)),
      max: us(hist.maxValue),
      min: empty ? 0 : us(hist.minNonZeroValue),
      mean: empty ? 0 : us(hist.mean),
    },
    errors,
    fill: { keys: filled, seconds: round3(fillMs / 1000), errors: fillErrors },
    histogram: encodeHistogram(hist),
  };
}

/**
 * The report `kvclient bench` prints without `--json`.
 *
 * @example
 * ```ts ignore
 * import { formatResult, runBench } from "./bench.ts";
 * console.log(formatResult(await runBench({ port: 7379, durationS: 1 })));
 * ```
 */
export function formatResult(r: BenchResult): string {
  const c = r.config;
  const n = (x: number) => x.toLocaleString("en-US");
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  const lines = [
    `Target      ${c.host}:${c.port}`,
    `Load        ${c.connections} connections x pipeline ${c.pipeline}, ` +
    `${c.threads === 0 ? "in this thread" : `${c.threads} thread(s)`}, ` +
    (c.requests !== null ? `${n(c.requests)} requests` : `${c.durationS} s`),
    `Workload    Get:Put ${c.ratio.get}:${c.ratio.put} over ${n(c.keys)} keys, ` +
    `${n(c.valueSize)}-byte values (filled ${n(r.fill.keys)} keys in ${r.fill.seconds} s)`,
    "",
    `Requests    ${n(r.ops)} OK in ${r.elapsedS.toFixed(3)} s ` +
    `(sent ${n(r.sent.get)} Get, ${n(r.sent.put)} Put)`,
    `Throughput  ${n(r.opsPerSec)} ops/s, ${r.mbPerSec.toFixed(2)} MB/s ` +
    `(tx ${n(r.txBytes)} B, rx ${n(r.rxBytes)} B)`,
    `Latency     p50 ${ms(r.latencyMs.p50)}  p90 ${ms(r.latencyMs.p90)}  ` +
    `p99 ${ms(r.latencyMs.p99)}  p99.9 ${ms(r.latencyMs.p999)}  max ${ms(r.latencyMs.max)}`,
  ];
  const errs = Object.entries(r.errors);
  if (errs.length === 0) {
    lines.push("Errors      none");
  } else {
    lines.push("Errors");
    for (const [name, count] of errs) lines.push(`  ${name.padEnd(22)} ${n(count)}`);
  }
  const fillErrs = Object.entries(r.fill.errors);
  if (fillErrs.length > 0) {
    lines.push("Fill errors");
    for (const [name, count] of fillErrs) lines.push(`  ${name.padEnd(22)} ${n(count)}`);
  }
  return lines.join("\n");
}

/** Text of `kvclient bench --help`. */
export const BENCH_USAGE: string = `Usage: kvclient bench [options]

Load generator for evkv wire v1. Fills the keyspace with
pipelined Puts, then runs a mix of Gets and Puts and reports ops/s, MB/s
and latency percentiles (HDR histogram), and errors by status.

Options:
  --host HOST          Server host (default 127.0.0.1)
  --port PORT          Server port (default 7379)
  --connections N      TCP connections (default 50)
  --pipeline N         Requests in flight per connection; 1 = none (default 1)
  --duration S         Seconds of load (default 5), unless --requests is given
  --requests N         Send N requests in total instead of running for a duration
  --ratio GET:PUT      Weights of Gets and Puts (default 9:1)
  --keys N             Keyspace size, filled before the timed phase (default 10000)
  --value-size BYTES   Bytes per value (default 100)
  --no-fill            Skip the fill (the keys are already there)
  --threads N          Worker threads generating the load; 0 = this thread (default 1)
  --tls --ca FILE      Speak TLS, trusting the CA certificate in FILE (PEM)
  --json               Print one JSON object instead of the report
  -h, --help           Print this help`;

function parseRatio(text: string): { get: number; put: number } {
  const m = /^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$/.exec(text);
  const r = m ? { get: Number(m[1]), put: Number(m[2]) } : null;
  if (!r || r.get + r.put === 0) {
    throw new RangeError(`--ratio must look like GET:PUT, e.g. 9:1, got "${text}"`);
  }
  return r;
}

function intFlag(flag: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= min) || !Number.isSafeInteger(n)) {
    throw new RangeError(`${flag} must be an integer >= ${min}, got "${text}"`);
  }
  return n;
}

/** Whether this process may load the worker module (workers need read access). */
function canStartWorkers(): boolean {
  try {
    return Deno.permissions.querySync({ name: "read", path: WORKER_URL }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * The arguments of a `bench` command line, or null when `args` is another
 * command: `bench` must be the first word that is not a global option
 * (`--host`, `--port`, `--timeout` with their values, `--json`), and the
 * global options travel along.
 *
 * @example
 * ```ts
 * import { benchArgs } from "./bench.ts";
 * benchArgs(["--port", "7380", "bench", "--pipeline", "8"]); // ["--port", "7380", "--pipeline", "8"]
 * benchArgs(["get", "bench"]); // null
 * ```
 */
export function benchArgs(args: string[]): string[] | null {
  let i = 0;
  while (i < args.length) {
    const a = args[i];
    if (a === "--host" || a === "--port" || a === "--timeout") i += 2;
    else if (a === "--json" || /^--(host|port|timeout)=/.test(a)) i += 1;
    else break;
  }
  if (args[i] !== "bench") return null;
  return [...args.slice(0, i).filter((_, j, all) => !isTimeout(all, j)), ...args.slice(i + 1)];
}

/** `--timeout` is a kvclient per-call option with no meaning for bench. */
function isTimeout(args: string[], j: number): boolean {
  return args[j] === "--timeout" || args[j - 1] === "--timeout" || args[j].startsWith("--timeout=");
}

/**
 * Runs `kvclient bench` with its arguments (after `bench`); resolves with
 * the exit code: 0 when every request succeeded, 1 when some failed, none
 * succeeded, or the run could not start, 2 on a usage error.
 *
 * @example
 * ```ts ignore
 * import { benchMain } from "./bench.ts";
 * Deno.exit(await benchMain(["--connections", "4", "--duration", "2"]));
 * ```
 */
export async function benchMain(args: string[]): Promise<number> {
  let opts: BenchOptions;
  let json: boolean;
  try {
    const { values: v } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        connections: { type: "string" },
        pipeline: { type: "string" },
        duration: { type: "string" },
        requests: { type: "string" },
        ratio: { type: "string" },
        keys: { type: "string" },
        "value-size": { type: "string" },
        "no-fill": { type: "boolean" },
        threads: { type: "string" },
        tls: { type: "boolean" },
        ca: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (v.help) {
      console.log(BENCH_USAGE);
      return 0;
    }
    const duration = v.duration === undefined ? undefined : Number(v.duration);
    if (duration !== undefined && !(duration > 0)) {
      throw new RangeError(`--duration must be a number of seconds over 0, got "${v.duration}"`);
    }
    if (duration !== undefined && v.requests !== undefined) {
      throw new RangeError("Give --duration or --requests, not both");
    }
    opts = {
      host: v.host,
      port: intFlag("--port", v.port, 1),
      connections: intFlag("--connections", v.connections, 1),
      pipeline: intFlag("--pipeline", v.pipeline, 1),
      durationS: duration,
      requests: intFlag("--requests", v.requests, 1),
      ratio: v.ratio === undefined ? undefined : parseRatio(v.ratio),
      keys: intFlag("--keys", v.keys, 1),
      valueSize: intFlag("--value-size", v["value-size"], 0),
      fill: v["no-fill"] !== true,
      threads: intFlag("--threads", v.threads, 0),
      tlsCaCerts: v.tls || v.ca ? (v.ca ? [Deno.readTextFileSync(v.ca)] : []) : undefined,
    };
    json = v.json === true;
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${BENCH_USAGE}`);
    return 2;
  }
  if ((opts.threads ?? 1) > 0 && !canStartWorkers()) {
    console.error("bench: worker threads need --allow-read; generating the load in this thread");
    opts.threads = 0;
  }
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  if (tty) {
    opts.onProgress = (ok, s) => {
      const line = `\r  ${s.toFixed(1).padStart(6)} s  ${
        Math.round(ok / Math.max(s, 1e-3)).toLocaleString("en-US").padStart(11)
      } ops/s  ${ok.toLocaleString("en-US").padStart(13)} ops`;
      Deno.stderr.writeSync(enc.encode(line));
    };
  }
  let result: BenchResult;
  try {
    result = await runBench(opts);
  } catch (err) {
    if (tty) Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
    console.error(`Bench failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  if (tty) Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
  console.log(json ? JSON.stringify(result) : formatResult(result));
  const failed = Object.keys(result.errors).length + Object.keys(result.fill.errors).length;
  return failed > 0 || result.ops === 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await benchMain(Deno.args));
