/**
 * A server run as a subprocess for a bench: started on a free port, known
 * ready by its "listening on HOST:PORT" line, its output kept (and so its
 * pipes drained, which a server blocked on a full pipe would stall on).
 *
 * @module
 */

/** How to start a server subprocess. */
export interface ServerCommand {
  /** Names it in errors. */
  name: string;
  /** The script `deno run` runs (see `serverCli` in checkout.ts for a checkout's). */
  script: string;
  /** Flags after `--port 0`. */
  args?: string[];
  /** Permissions beyond `--unstable-net --allow-net --allow-read`, such as `--allow-write`. */
  allow?: string[];
  /** Working folder. Default: this process's. */
  cwd?: string | URL;
  /** Killed (SIGKILL) when not listening by then. Default 30 s. */
  timeoutMs?: number;
}

/** A started server subprocess. */
export interface ServerProcess {
  child: Deno.ChildProcess;
  /** Its wire v1 (or echo) port. */
  port: number;
  /** Its RESP port, when it printed one. */
  respPort?: number;
  /** Its metrics port, when it printed one. */
  metricsPort?: number;
  /** Seconds from spawn to the listening line. */
  startS: number;
  /** What it printed on stdout up to its listening line. */
  startup: string;
  /** All it printed, stdout then stderr, once it exits. */
  output: Promise<string>;
}

/**
 * Starts `command` with `--port 0` and resolves once it listens. Throws
 * with what it printed when it exits first.
 *
 * @example
 * ```ts
 * import { serverCli } from "./checkout.ts";
 * const s = await startServerProcess({ name: "evkv", script: serverCli(".") });
 * s.child.kill("SIGTERM");
 * console.log(await s.output);
 * ```
 */
export async function startServerProcess(command: ServerCommand): Promise<ServerProcess> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-net",
      "--allow-read",
      ...command.allow ?? [],
      command.script,
      "--port",
      "0",
      ...command.args ?? [],
    ],
    cwd: command.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stderr = new Response(child.stderr).text();
  let seen = "";
  const deadline = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, command.timeoutMs ?? 30_000);
  try {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) {
        throw new Error(`${command.name} exited before listening:\n${seen}${await stderr}`);
      }
      seen += value;
      const m = /listening on [^\s:]+:(\d+)/.exec(seen);
      if (m === null) continue;
      const startS = (performance.now() - t0) / 1000;
      const output = (async () => {
        let all = seen;
        for (;;) {
          const r = await lines.read();
          if (r.done) return all + (await stderr);
          all += r.value;
        }
      })();
      const port = (re: RegExp) => {
        const found = re.exec(seen);
        return found ? Number(found[1]) : undefined;
      };
      return {
        child,
        port: Number(m[1]),
        respPort: port(/RESP on (\d+)/),
        metricsPort: port(/metrics on (\d+)/),
        startS,
        startup: seen,
        output,
      };
    }
  } finally {
    clearTimeout(deadline);
  }
}

/**
 * SIGTERM, then SIGKILL if it has not exited in 15 s; resolves with its
 * exit code and output, and whether it had to be killed.
 *
 * @example
 * ```ts ignore
 * const { code, killed } = await stopServerProcess(s);
 * ```
 */
export async function stopServerProcess(
  r: ServerProcess,
): Promise<{ code: number; output: string; killed: boolean }> {
  r.child.kill("SIGTERM");
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      r.child.kill("SIGKILL");
    } catch {
      // Exited meanwhile.
    }
  }, 15_000);
  const status = await r.child.status;
  clearTimeout(timer);
  return { code: status.code, output: await r.output, killed };
}

/**
 * User + system CPU seconds of process `pid` so far (Linux /proc), or NaN.
 * Read through `cat`: Deno lets a script read another process's /proc
 * files only with --allow-all, and the suite runs with --allow-run instead.
 *
 * @example
 * ```ts ignore
 * const before = cpuSeconds(s.child.pid);
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
