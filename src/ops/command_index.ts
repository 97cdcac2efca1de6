/**
 * Stable numbers for RESP commands, for counters in shared memory: every
 * thread loads the same command table and sorts its names the same way.
 *
 * @module
 */
import { COMMANDS } from "../resp/commands.ts";

let names: string[] | null = null;
let index: Map<string, number> | null = null;

/**
 * Command names by number; number 0 stands for unknown commands. Computed
 * on first use (the command table imports this module's users).
 *
 * @example
 * ```ts
 * import { respCommandNames } from "@evkv/evkv";
 * respCommandNames()[0]; // "unknown"
 * ```
 */
export function respCommandNames(): readonly string[] {
  return names ??= ["unknown", ...Object.keys(COMMANDS).sort()];
}

/**
 * The number of command `name` (lower case), 0 when unknown.
 *
 * @example
 * ```ts
 * import { respCommandIndex } from "@evkv/evkv";
 * respCommandIndex("no-such-command"); // 0
 * ```
 */
export function respCommandIndex(name: string): number {
  index ??= new Map(respCommandNames().map((n, i) => [n, i]));
  return index.get(name) ?? 0;
}
