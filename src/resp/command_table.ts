/**
 * The RESP command table's shape and registry: what a command is, the
 * table every module registers its commands into, and the lookups over it
 * (by name bytes, and by stable number for counters). Command modules
 * (io_commands.ts, auth_commands.ts, persist_commands.ts, SLOWLOG) import
 * this file, not commands.ts, which imports them to build the table: so
 * none of them imports the other back.
 *
 * @module
 */
import type { Dispatcher } from "../server/io/connection.ts";
import type { Connection } from "../server/io/connection.ts";
import { nameHash, nameIs } from "./shard_methods.ts";
import type { Session } from "./session.ts";

/** What a command runs with. */
export interface CommandContext {
  /** The client's connection. */
  conn: Connection;
  /** Where calls go. */
  dispatcher: Dispatcher;
  /** The connection's RESP state. */
  session: Session;
}

/** One command: see the documentation of commands.ts. */
export interface Command {
  /** Arity as Redis states it: n exact, -n at least n, the name included. */
  arity: number;
  /** Redis's command flags, as COMMAND INFO lists them. */
  flags?: string[];
  /** Redis's key spec: first key, last key (-1 = the last argument), step. */
  keys?: [number, number, number];
  /** Runs on the shard of its keys (its body is in SHARD_RUNS): the direct path. */
  shard?: true;
  /**
   * Keyed commands whose keys may span shards: how the per-shard parts
   * join. Absent: such a command gets -CROSSSLOT.
   */
  split?: "sum" | "ok" | "mget";
  /** Keyless commands that run on every shard (on one shard inside EXEC). */
  fanout?: true;
  /** Runs in the IO worker; queues exactly one reply. */
  run?(ctx: CommandContext, args: Uint8Array[]): void;
}

/**
 * Every registered command, by lower-case name. Complete once commands.ts
 * has been evaluated; import it from there to be sure of that.
 */
export const COMMANDS: Record<string, Command> = {};

/** Lookups derived from {@link COMMANDS}; dropped by each registration. */
let byHash: Map<number, { name: string; command: Command }[]> | null = null;
let names: string[] | null = null;
let numbers: Map<string, number> | null = null;
/** The command found last: a run of the same command (the usual case) skips the hash. */
let lastFound: { name: string; command: Command } | null = null;

/**
 * Adds `commands` (lower-case name → command) to the table. A name
 * registered twice is a programming error, so it throws.
 *
 * @example
 * ```ts
 * import { COMMANDS, registerCommands } from "./command_table.ts";
 * registerCommands({ "x-example": { arity: 1 } });
 * COMMANDS["x-example"].arity; // 1
 * ```
 */
export function registerCommands(commands: Readonly<Record<string, Command>>): void {
  for (const [name, command] of Object.entries(commands)) {
    if (Object.hasOwn(COMMANDS, name)) {
      throw new Error(`Register RESP command: "${name}" is registered twice`);
    }
    COMMANDS[name] = command;
  }
  byHash = null;
  names = null;
  numbers = null;
  lastFound = null;
}

/**
 * The command named by `b[start, end)` (any case), without making a
 * string; undefined when unknown.
 *
 * @example
 * ```ts
 * import { findCommand } from "./commands.ts";
 * const name = new TextEncoder().encode("GET");
 * findCommand(name, 0, 3)?.name; // "get"
 * ```
 */
export function findCommand(
  b: Uint8Array,
  start: number,
  end: number,
): { name: string; command: Command } | undefined {
  if (byHash === null) {
    byHash = new Map();
    for (const [name, command] of Object.entries(COMMANDS)) {
      const h = nameHash(new TextEncoder().encode(name), 0, name.length);
      const list = byHash.get(h) ?? [];
      list.push({ name, command });
      byHash.set(h, list);
    }
  }
  const last = lastFound;
  if (last !== null && nameIs(b, start, end, last.name)) return last;
  const list = byHash.get(nameHash(b, start, end));
  if (list === undefined) return undefined;
  for (const e of list) {
    if (nameIs(b, start, end, e.name)) {
      lastFound = e;
      return e;
    }
  }
  return undefined;
}

/**
 * Command names by number, for counters in shared memory: every thread
 * registers the same commands and sorts their names the same way. Number
 * 0 stands for unknown commands.
 *
 * @example
 * ```ts
 * import { respCommandNames } from "./commands.ts";
 * respCommandNames()[0]; // "unknown"
 * ```
 */
export function respCommandNames(): readonly string[] {
  return names ??= ["unknown", ...Object.keys(COMMANDS).sort()];
}

/**
 * The number of command `name` (lower case) in {@link respCommandNames}, 0 when unknown.
 *
 * @example
 * ```ts
 * import { respCommandIndex } from "./commands.ts";
 * respCommandIndex("no-such-command"); // 0
 * ```
 */
export function respCommandIndex(name: string): number {
  numbers ??= new Map(respCommandNames().map((n, i) => [n, i]));
  return numbers.get(name) ?? 0;
}
