/**
 * The command table ACL rules are written against: every RESP command (and
 * ACL subcommand) with its Redis categories and which arguments are keys,
 * and the wire v1 methods mapped onto the same names, so one rule
 * (`+get`, `-@write`) governs both protocols.
 *
 * @module
 */
import { KvMethod } from "../protocol/constants.ts";

/** Which arguments of a command (name excluded) are keys. */
export type KeySpec = "none" | "first" | "all" | "pairs" | "scan";

/** One command as ACL rules see it. */
export interface CommandInfo {
  /** Lower-case name; subcommands as `acl|whoami`. */
  readonly name: string;
  /** Redis categories, without `@`. */
  readonly categories: readonly string[];
  /** Where its keys are. */
  readonly keys: KeySpec;
  /** Allowed before authentication (AUTH, HELLO, QUIT). */
  readonly noAuth?: boolean;
}

/** The categories `ACL CAT` lists (those of the commands evkv has). */
export const CATEGORIES = [
  "keyspace",
  "read",
  "write",
  "string",
  "admin",
  "fast",
  "slow",
  "dangerous",
  "connection",
] as const;

const c = (
  name: string,
  categories: string,
  keys: KeySpec = "none",
  noAuth = false,
): CommandInfo => ({ name, categories: categories.split(" "), keys, noAuth });

/**
 * Every command ACL rules can name, with Redis 7's categories. `info` is
 * also in `@admin` here, because it is the wire `Stats` method, which the
 * issue puts there. A command missing from this table is allowed only to
 * users with `+@all` and, when it has keys, all keys.
 */
export const COMMAND_TABLE: readonly CommandInfo[] = [
  c("get", "read string fast", "first"),
  c("set", "write string slow", "first"),
  c("del", "keyspace write slow", "all"),
  c("exists", "keyspace read fast", "all"),
  c("mget", "read string fast", "all"),
  c("mset", "write string slow", "pairs"),
  c("incr", "write string fast", "first"),
  c("incrby", "write string fast", "first"),
  c("decr", "write string fast", "first"),
  c("decrby", "write string fast", "first"),
  c("scan", "keyspace read slow", "scan"),
  c("dbsize", "keyspace read fast"),
  c("info", "admin slow dangerous"),
  c("ping", "fast connection"),
  c("echo", "fast connection"),
  c("command", "slow connection"),
  c("config", "admin slow dangerous"),
  c("select", "fast connection"),
  c("quit", "fast connection", "none", true),
  c("auth", "fast connection", "none", true),
  c("hello", "fast connection", "none", true),
  c("acl|whoami", "slow"),
  c("acl|cat", "slow"),
  c("acl|users", "admin slow dangerous"),
  c("acl|list", "admin slow dangerous"),
];

/** Index of each command in {@link COMMAND_TABLE}, by name. */
export const COMMAND_INDEX: ReadonlyMap<string, number> = new Map(
  COMMAND_TABLE.map((cmd, i) => [cmd.name, i]),
);

/**
 * The command each wire v1 method counts as, by method code. Ping and Auth
 * are absent: they are always allowed (the spec lets them through before
 * authentication).
 */
export const WIRE_COMMANDS: ReadonlyMap<number, string> = new Map([
  [KvMethod.Get, "get"],
  [KvMethod.Put, "set"],
  [KvMethod.Delete, "del"],
  [KvMethod.Scan, "scan"],
  [KvMethod.Stats, "info"],
  [KvMethod.Incr, "incr"],
]);

/** Method names for messages, by wire code. */
export const WIRE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(KvMethod).map(([name, code]) => [code, name]),
);
