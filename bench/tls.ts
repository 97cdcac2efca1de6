/**
 * Paired throughput comparisons for the security work, each in one run
 * with alternating rounds (the VM's speed drifts, so only paired ratios
 * mean anything):
 *
 * - TLS against plain TCP: the same server build, `--tls-cert/--tls-key`
 *   or not, 50 connections with 16 requests in flight. The suite
 *   (`bench/run.ts`) runs this one and puts it in its report.
 * - `--baseline DIR`: this checkout against another checkout of evkv (for
 *   example main) with no password, to show what the auth checks cost when
 *   auth is off.
 *
 * ```sh
 * deno run -A bench/tls.ts --seconds 4 --rounds 4
 * deno run -A bench/tls.ts --baseline ../main --seconds 4 --rounds 6
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BenchResult, runBench } from "../src/loadgen/bench.ts";
import { memoryOnly, serverCli } from "./checkout.ts";
import { alternate, median } from "./paired.ts";
import { cpuSeconds, type ServerProcess, startServerProcess } from "./server_process.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** One side of a comparison: which build, which flags, TLS or not. */
export interface Side {
  /** Name in the report. */
  name: string;
  /** Checkout whose server entry (see `serverCli`) runs. */
  root: string;
  /** Extra server flags. */
  args: string[];
  /** CA certificate (PEM) the load generator trusts; absent: plain TCP. */
  ca?: string;
}

/** One round of both sides. */
export interface PairedRound {
  /** ops/s of side a, then side b. */
  ops: [number, number];
  /** b / a. */
  ratio: number;
  /** Server CPU time (user + system) per request in µs, side a then b; NaN where unknown. */
  cpuUs: [number, number];
}

/** One side's run: the load generator's result and the server's CPU time per request. */
interface SideRun {
  result: BenchResult;
  cpuUs: number;
}

/** Certificates made for one run, in a temporary directory. */
export interface BenchCerts {
  dir: string;
  cert: string;
  key: string;
  ca: string;
}

function sh(script: string): string {
  const out = new Deno.Command("sh", { args: ["-c", script], stdout: "piped", stderr: "piped" })
    .outputSync();
  if (!out.success) {
    throw new Error(`Run sh: ${script.slice(0, 60)}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** Makes a CA and a server certificate for 127.0.0.1 with openssl (a child may write; the suite may not). */
export function makeBenchCerts(): BenchCerts {
  const dir = sh("mktemp -d -t evkv-bench-certs-XXXXXX");
  sh(
    `cd '${dir}' && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout ca.key -out ca.crt ` +
      `-subj '/CN=evkv bench CA' 2>/dev/null && ` +
      `openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=localhost' ` +
      `2>/dev/null && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext && ` +
      `openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 ` +
      `-out server.crt -extfile ext 2>/dev/null`,
  );
  return {
    dir,
    cert: `${dir}/server.crt`,
    key: `${dir}/server.key`,
    ca: `${dir}/ca.crt`,
  };
}

/** Removes what {@link makeBenchCerts} made. */
export function removeBenchCerts(c: BenchCerts): void {
  sh(`rm -rf '${c.dir}'`);
}

function startServer(side: Side): Promise<ServerProcess> {
  return startServerProcess({
    name: side.name,
    script: serverCli(side.root),
    args: ["--mode", "inline", "--io-threads", "1", ...memoryOnly(side.root), ...side.args],
  });
}

async function measureSide(side: Side, seconds: number): Promise<SideRun> {
  const s = await startServer(side);
  try {
    const ca = side.ca === undefined ? undefined : [Deno.readTextFileSync(side.ca)];
    const run = (durationS: number) =>
      runBench({
        port: s.port,
        connections: 50,
        pipeline: 16,
        durationS,
        threads: 1,
        keys: 10_000,
        valueSize: 100,
        ratio: { get: 9, put: 1 },
        tlsCaCerts: ca,
      });
    await run(0.5);
    const cpu0 = cpuSeconds(s.child.pid);
    const result = await run(seconds);
    const cpuUs = (cpuSeconds(s.child.pid) - cpu0) * 1e6 / (result.ops || 1);
    return { result, cpuUs };
  } finally {
    s.child.kill("SIGTERM");
    await s.child.status;
  }
}

/**
 * Runs `a` and `b` `rounds` times each, alternating which goes first, and
 * returns the per-round ratios b / a.
 *
 * @example
 * ```ts
 * import { pairedRounds } from "./tls.ts";
 * // const rounds = await pairedRounds(plain, tls, 3, 4);
 * ```
 */
export async function pairedRounds(
  a: Side,
  b: Side,
  rounds: number,
  seconds: number,
): Promise<PairedRound[]> {
  const pairs = await alternate(
    [a, b],
    rounds,
    (side) => measureSide(side, seconds),
    ([ra, rb], r) =>
      console.error(
        `  round ${r + 1}: ${a.name} ${Math.round(ra.result.opsPerSec)} ops/s, ${b.name} ${
          Math.round(rb.result.opsPerSec)
        } ops/s, ratio ${(rb.result.opsPerSec / ra.result.opsPerSec).toFixed(3)}, server CPU ` +
          `µs/request ${ra.cpuUs.toFixed(3)} / ${rb.cpuUs.toFixed(3)}, errors ${
            JSON.stringify([ra.result.errors, rb.result.errors])
          }`,
      ),
  );
  return pairs.map(([ra, rb]) => {
    const ops: [number, number] = [ra.result.opsPerSec, rb.result.opsPerSec];
    return { ops, ratio: ops[1] / ops[0], cpuUs: [ra.cpuUs, rb.cpuUs] };
  });
}

/** Markdown of a comparison: one row per round and the median ratio. */
export function renderPaired(title: string, a: Side, b: Side, rounds: PairedRound[]): string {
  const lines = [
    `## ${title}`,
    "",
    `50 connections, pipeline 16, Get:Put 9:1 over 10,000 keys of 100 B, inline mode with 1 IO ` +
    `worker; ${rounds.length} rounds, alternating which side goes first.`,
    "",
    `| round | ${a.name} ops/s | ${b.name} ops/s | ${b.name} / ${a.name} | server CPU µs per ` +
    `request, ${a.name} | ${b.name} | ${b.name} / ${a.name} |`,
    "| ----: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rounds.map((r, i) =>
      `| ${i + 1} | ${Math.round(r.ops[0]).toLocaleString("en-US")} | ${
        Math.round(r.ops[1]).toLocaleString("en-US")
      } | ${r.ratio.toFixed(3)} | ${r.cpuUs[0].toFixed(3)} | ${r.cpuUs[1].toFixed(3)} | ${
        (r.cpuUs[1] / r.cpuUs[0]).toFixed(3)
      } |`
    ),
    "",
    `Median ratios: throughput **${median(rounds.map((r) => r.ratio)).toFixed(3)}**, server CPU ` +
    `per request **${median(rounds.map((r) => r.cpuUs[1] / r.cpuUs[0])).toFixed(3)}** (CPU time ` +
    "per request moves less with the VM's noise than throughput does).",
    "",
  ];
  return lines.join("\n");
}

/**
 * The suite's TLS section: plain TCP against TLS, same build, same run.
 * Returns its markdown; a failure is recorded in `failures` and gives "".
 */
export async function tlsComparison(
  seconds: number,
  rounds: number,
  failures: string[],
): Promise<string> {
  let certs: BenchCerts | null = null;
  try {
    certs = makeBenchCerts();
    const plain: Side = { name: "plain TCP", root: ROOT, args: [] };
    const tls: Side = {
      name: "TLS",
      root: ROOT,
      args: ["--tls-cert", certs.cert, "--tls-key", certs.key],
      ca: certs.ca,
    };
    console.error("TLS against plain TCP:");
    const r = await pairedRounds(plain, tls, rounds, seconds);
    return renderPaired("TLS cost (same build, same run)", plain, tls, r);
  } catch (err) {
    failures.push(`TLS comparison: ${err instanceof Error ? err.message : String(err)}`);
    return "";
  } finally {
    if (certs) removeBenchCerts(certs);
  }
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      seconds: { type: "string" },
      rounds: { type: "string" },
      baseline: { type: "string" },
    },
  });
  const seconds = Number(values.seconds ?? 4);
  const rounds = Number(values.rounds ?? 4);
  if (values.baseline !== undefined) {
    const base: Side = { name: "baseline", root: values.baseline, args: [] };
    const here: Side = { name: "this checkout", root: ROOT, args: [] };
    console.error(`${here.name} against ${values.baseline}, no password:`);
    const r = await pairedRounds(base, here, rounds, seconds);
    console.log(renderPaired(`This checkout against ${values.baseline}, auth off`, base, here, r));
    return 0;
  }
  const failures: string[] = [];
  const md = await tlsComparison(seconds, rounds, failures);
  console.log(md);
  for (const f of failures) console.error(f);
  return failures.length > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
