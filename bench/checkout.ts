/**
 * What a checkout of evkv accepts, and how to run its server, for benches
 * that run the server from another tree (a baseline) as well as from this
 * one.
 *
 * @module
 */

/** The checkout's path without a trailing slash. */
function trim(root: string): string {
  return root.replace(/\/$/, "");
}

/**
 * `--persist off` for a checkout that has persistence (it persists by
 * default, which the comparisons are not about); nothing for an older
 * baseline, which would refuse the flag.
 *
 * @param root The checkout's top folder.
 * @example
 * ```ts
 * const args = ["src/server/cli.ts", "--port", "0", ...memoryOnly(".")];
 * ```
 */
export function memoryOnly(root: string): string[] {
  try {
    Deno.statSync(`${trim(root)}/src/persist`);
    return ["--persist", "off"];
  } catch {
    return [];
  }
}

/**
 * The `deno` arguments of the checkout's `deno task serve` (its script and
 * flags, read from its deno.json): the entry file moves between versions,
 * and each checkout knows its own. Run them with the checkout as the working
 * directory, since the script path is relative to it.
 *
 * @param root The checkout's top folder.
 * @example
 * ```ts
 * const args = serveArgs("."); // ["run", "--unstable-net", ..., "src/server/cli.ts"]
 * ```
 */
export function serveArgs(root: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${trim(root)}/deno.json`));
  const task: unknown = config?.tasks?.serve;
  // A task is either a command line or, in newer deno.json files, { command }.
  const line = typeof task === "object" && task !== null
    ? (task as { command?: unknown }).command
    : task;
  const words = typeof line === "string" ? line.trim().split(/\s+/) : [];
  if (words[0] !== "deno" || words.length < 2 || /[;&|<>$`'"]/.test(String(line))) {
    throw new Error(
      `${root}/deno.json: tasks.serve is not a plain "deno ..." command line: ${
        JSON.stringify(task)
      }`,
    );
  }
  return words.slice(1);
}

/** A server started by {@link startServe}. */
export interface Served {
  /** The server process. */
  child: Deno.ChildProcess;
  /** Its wire v1 port. */
  port: number;
  /** Its RESP port, when started with `--resp-port`. */
  respPort?: number;
  /** What it printed up to its "listening on" line, for the other ports it names. */
  banner: string;
  /** SIGTERM, then SIGKILL after 15 s; resolves with the exit code. */
  stop(): Promise<number>;
}

/**
 * Starts the checkout's server through its `deno task serve` entry on a free
 * port (`--port 0`), in memory only, with `flags` added, and resolves once it
 * prints its "listening on" line (after 30 s without one it is killed).
 *
 * @param root The checkout's top folder.
 * @param flags Server flags, e.g. `["--mode", "pool", "--resp-port", "0"]`.
 * @example
 * ```ts ignore
 * const s = await startServe(".", ["--mode", "inline", "--io-threads", "1"]);
 * // ... load s.port ...
 * await s.stop();
 * ```
 */
export async function startServe(root: string, flags: string[]): Promise<Served> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...serveArgs(root), "--port", "0", ...memoryOnly(root), ...flags],
    cwd: trim(root) || "/",
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Read stderr all along, so that the server never blocks on a full pipe.
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, 30_000);
  let seen = "";
  try {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) throw new Error(`Start ${root}: the server exited: ${seen}${await stderr}`);
      seen += value;
      const m = /listening on [^\s:]+:(\d+)/.exec(seen);
      if (m) break;
    }
  } finally {
    clearTimeout(deadline);
  }
  // Keep draining stdout for the same reason as stderr.
  (async () => {
    while (!(await lines.read()).done);
  })();
  const resp = /RESP on (\d+)/.exec(seen);
  return {
    child,
    port: Number(/listening on [^\s:]+:(\d+)/.exec(seen)![1]),
    respPort: resp ? Number(resp[1]) : undefined,
    banner: seen,
    async stop() {
      child.kill("SIGTERM");
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Exited meanwhile.
        }
      }, 15_000);
      const status = await child.status;
      clearTimeout(timer);
      return status.code;
    },
  };
}

/**
 * User + system CPU seconds of process `pid` so far (Linux /proc), or NaN.
 * Read through `cat`: Deno lets a script read another process's /proc
 * files only with --allow-all, and the suite runs with --allow-run instead.
 *
 * @example
 * ```ts ignore
 * const before = cpuSeconds(served.child.pid);
 * ```
 */
export function cpuSeconds(pid: number): number {
  try {
    const out = new Deno.Command("cat", { args: [`/proc/${pid}/stat`] }).outputSync();
    if (!out.success) return NaN;
    const stat = new TextDecoder().decode(out.stdout);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 a second).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * Which side goes first in `round` and which second, as indices: 0 then 1
 * in even rounds, 1 then 0 in odd ones (A B, B A, A B, ...).
 *
 * @example
 * ```ts
 * for (const i of inTurn(1)) console.log(["base", "this"][i]); // this, base
 * ```
 */
export function inTurn(round: number): [number, number] {
  return round % 2 === 0 ? [0, 1] : [1, 0];
}

/**
 * Runs `measure` on both sides `rounds` times, alternating which goes first
 * (A B, B A, A B, ...), so that the machine's drift over the run falls on
 * both sides alike; returns each round's pair in side order, and hands each
 * to `done` as it completes (for progress lines).
 *
 * @example
 * ```ts ignore
 * const pairs = await alternate(["base", "this"], 4, (side) => measureOne(side));
 * const ratios = pairs.map(([a, b]) => b.opsPerSec / a.opsPerSec);
 * ```
 */
export async function alternate<S, R>(
  sides: readonly [S, S],
  rounds: number,
  measure: (side: S, round: number) => Promise<R>,
  done?: (pair: [R, R], round: number) => void,
): Promise<[R, R][]> {
  const out: [R, R][] = [];
  for (let round = 0; round < rounds; round++) {
    const [first, second] = inTurn(round);
    const results: R[] = [];
    results[first] = await measure(sides[first], round);
    results[second] = await measure(sides[second], round);
    const pair: [R, R] = [results[0], results[1]];
    done?.(pair, round);
    out.push(pair);
  }
  return out;
}

/**
 * The median of `xs` (the mean of the middle two for an even count).
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
