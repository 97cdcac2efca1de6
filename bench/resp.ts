/**
 * The RESP part of the suite: redis-benchmark, the same client with the
 * same settings, against evkv's RESP port and against a real redis-server
 * started on loopback in the same run.
 *
 * @module
 */

/** One redis-benchmark run. */
export interface RespRun {
  /** `evkv (inline)` or `redis-server`. */
  server: string;
  /** Requests per second by test name (`SET`, `GET`). */
  rps: Record<string, number>;
  /** p50 in ms by test name, when redis-benchmark printed it. */
  p50Ms: Record<string, number>;
}

/**
 * redis-benchmark's arguments for SET and GET, `requests` of each, 16 in
 * flight per client (its default 50 clients).
 *
 * @example
 * ```ts
 * const args = redisBenchmarkArgs(200_000); // ["-t", "set,get", "-n", "200000", ...]
 * ```
 */
export function redisBenchmarkArgs(requests = 100_000): string[] {
  return ["-t", "set,get", "-n", String(requests), "-P", "16", "-q"];
}

/** The redis-benchmark arguments of the comparison (the command). */
export const REDIS_BENCHMARK_ARGS: string[] = redisBenchmarkArgs();

/** True when `cmd` is on the PATH. */
export function have(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Parses `redis-benchmark -q` output: lines like
 * `SET: 245700.25 requests per second, p50=2.655 msec`.
 */
export function parseRedisBenchmark(server: string, out: string): RespRun {
  const rps: Record<string, number> = {};
  const p50Ms: Record<string, number> = {};
  // -q redraws a progress line with \r; only the final lines count.
  for (const line of out.split(/[\r\n]+/)) {
    const m = /^(\w+): ([\d.]+) requests per second(?:, p50=([\d.]+) msec)?/.exec(line.trim());
    if (!m) continue;
    rps[m[1]] = Number(m[2]);
    if (m[3]) p50Ms[m[1]] = Number(m[3]);
  }
  return { server, rps, p50Ms };
}

/** Runs redis-benchmark against `port`, `requests` SETs then as many GETs. */
export async function redisBenchmark(
  server: string,
  port: number,
  requests = 100_000,
): Promise<RespRun> {
  const out = await new Deno.Command("redis-benchmark", {
    args: ["-p", String(port), ...redisBenchmarkArgs(requests)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`redis-benchmark against ${server} failed: ${text}`);
  return parseRedisBenchmark(server, text);
}

/** A free loopback port (bound then released: redis-server cannot take 0). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Starts redis-server with no persistence on `port`, waits until it
 * answers, and returns a function that stops it.
 */
export async function startRedis(port: number): Promise<() => Promise<void>> {
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
  };
}
