/**
 * What a checkout of evkv accepts and how its server starts, for benches
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
 * const args = ["src/kvserver/cli.ts", "--port", "0", ...memoryOnly(".")];
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

/** A checkout's `deno task serve` entry: its script and its `deno run` flags. */
export interface ServeEntry {
  /** The script, as a path under the checkout. */
  script: string;
  /** Its `deno run` flags (permissions and the like), in order. */
  flags: string[];
}

/**
 * The checkout's `deno task serve` entry, read from its deno.json: the
 * entry file moves between versions (src/server/cli.ts, then
 * src/kvserver/cli.ts), and each checkout knows its own.
 *
 * @param root The checkout's top folder.
 * @example
 * ```ts
 * const { script, flags } = serveEntry("."); // "./src/kvserver/cli.ts", ["--unstable-net", ...]
 * ```
 */
export function serveEntry(root: string): ServeEntry {
  const config = JSON.parse(Deno.readTextFileSync(`${trim(root)}/deno.json`));
  const task: unknown = config?.tasks?.serve;
  // A task is either a command line or, in newer deno.json files, { command }.
  const line = typeof task === "object" && task !== null
    ? (task as { command?: unknown }).command
    : task;
  const words = typeof line === "string" ? line.trim().split(/\s+/) : [];
  const at = words.findIndex((w, i) => i > 1 && !w.startsWith("-"));
  if (words[0] !== "deno" || words[1] !== "run" || at < 0 || /[;&|<>$`'"]/.test(String(line))) {
    throw new Error(
      `${root}/deno.json: tasks.serve is not a plain "deno run ... SCRIPT" command line: ${
        JSON.stringify(task)
      }`,
    );
  }
  return { script: `${trim(root)}/${words[at]}`, flags: words.slice(2, at) };
}

/**
 * The path of a checkout's server entry (`deno task serve`'s script).
 *
 * @param root The checkout's top folder.
 * @example
 * ```ts
 * const script = serverCli("../evkv-baseline"); // "../evkv-baseline/src/kvserver/cli.ts"
 * ```
 */
export function serverCli(root: string): string {
  return serveEntry(root).script;
}
