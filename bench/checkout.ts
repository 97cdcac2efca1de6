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
 * const args = ["src/server/cli.ts", "--port", "0", ...memoryOnly(".")];
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
