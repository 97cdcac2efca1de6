/**
 * What a checkout of evkv accepts, for benches that run the server from
 * another tree (a baseline) as well as from this one.
 *
 * @module
 */

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
    Deno.statSync(`${root.replace(/\/$/, "")}/src/persist`);
    return ["--persist", "off"];
  } catch {
    return [];
  }
}

/**
 * The `deno task serve` entry of a checkout: `src/kvserver/cli.ts`, or
 * `src/server/cli.ts` in a baseline from before the KV server had its own
 * folder.
 *
 * @param root The checkout's top folder.
 * @example
 * ```ts
 * const script = serverCli("../evkv-baseline"); // ".../src/kvserver/cli.ts"
 * ```
 */
export function serverCli(root: string): string {
  const top = root.replace(/\/$/, "");
  for (const path of ["src/kvserver/cli.ts", "src/server/cli.ts"]) {
    try {
      Deno.statSync(`${top}/${path}`);
      return `${top}/${path}`;
    } catch {
      // Not this layout: try the older one.
    }
  }
  throw new Error(`Find the server: ${top} has neither src/kvserver/cli.ts nor src/server/cli.ts`);
}
