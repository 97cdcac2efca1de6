/**
 * The RESP command table, as Redis keeps one: each command's arity, flags
 * and key positions, and where it runs.
 *
 * To add a command, add one entry to the table registered here (lower-case
 * name), or register it from its own module with `registerCommands`
 * (command_table.ts):
 * - `run(ctx, args)` runs it in the IO worker; it must queue exactly one
 *   reply, with `ctx.session.reply(ctx.conn, bytes)` (see `errorBytes`,
 *   `outFor` in out.ts / io_commands.ts) or `ctx.session.call(...)`
 *   (protobuf calls to the service, answered in order);
 * - or `shard: true` with `keys`, and its body in `SHARD_RUNS`
 *   (shard_commands.ts): it runs on the shard of its keys, on the direct
 *   path;
 * - `arity` as Redis states it (n exact, -n at least n, the name
 *   included) is checked before either runs.
 *
 * @module
 */
import { Status } from "../protocol/constants.ts";
import {
  client,
  command,
  concatJoin,
  config,
  discard,
  encodeCommand,
  exec,
  fanout,
  hello,
  info,
  multi,
  OK_BYTES,
  okJoin,
  randomJoin,
  scan,
  select,
  sumJoin,
  time,
  unwatch,
  watch,
} from "./io_commands.ts";
import { errorBytes, RespOut } from "./out.ts";
import type { Result } from "./session.ts";
import { persistCommands } from "./persist_commands.ts";
import type { MessageType } from "../server/service.ts";
import { AUTH_COMMANDS } from "./auth_commands.ts";
import { slowlogCommand } from "../ops/slowlog_command.ts";
import { type Command, registerCommands } from "./command_table.ts";

// The table is complete once this module has run: who needs it whole imports it from here.
export { COMMANDS, findCommand, respCommandIndex, respCommandNames } from "./command_table.ts";

// Helpers for commands that call the service's protobuf methods (off the
// hot path), kept as they were before the direct path.
const decoder = new TextDecoder();
/** Bytes as UTF-8 text. */
export const text = (b: Uint8Array): string => decoder.decode(b);
/** Bytes as upper-case text (options). */
export const upper = (b: Uint8Array): string => text(b).toUpperCase();
/** A reply type with its type erased, for a {@link Call}. */
export const type = <T>(t: MessageType<T>): MessageType<unknown> => t as MessageType<unknown>;

/** Redis's reply to a write refused at the memory cap (wire v1 status 9). */
const OOM = "OOM command not allowed when used memory > 'maxmemory'.";

/** The first failed call, as a RESP error; null when all succeeded. */
export function firstError(results: Result[]): Uint8Array | null {
  for (const r of results) {
    if (!r.ok) return errorBytes(r.status === Status.NO_MEMORY ? OOM : `ERR ${r.message}`);
  }
  return null;
}

/** Renders answers with `fn` unless a call failed (for `session.call`). */
export function rendered<T>(fn: (values: T[]) => Uint8Array): (results: Result[]) => Uint8Array {
  return (results) => firstError(results) ?? fn(results.map((r) => (r as { value: T }).value));
}

/** A strict decimal integer argument, or null. */
export function intArg(b: Uint8Array): number | null {
  const s = text(b);
  return /^-?\d{1,15}$/.test(s) ? Number(s) : null;
}

const W = ["write", "denyoom"];
const WF = ["write", "denyoom", "fast"];
const R = ["readonly"];
const RF = ["readonly", "fast"];
const K1: [number, number, number] = [1, 1, 1];
const K12: [number, number, number] = [1, 2, 1];
const KALL: [number, number, number] = [1, -1, 1];
const KPAIRS: [number, number, number] = [1, -1, 2];

/** A keyless command run on every shard, its parts joined by `join`. */
function everyShard(
  name: string,
  arity: number,
  flags: string[],
  join: (parts: Uint8Array[], proto: number) => Uint8Array,
  check?: (args: Uint8Array[]) => string | null,
): Command {
  return {
    arity,
    flags,
    fanout: true,
    run(ctx, args) {
      const bad = check?.(args) ?? null;
      if (bad !== null) return ctx.session.reply(ctx.conn, errorBytes(bad));
      fanout(ctx, encodeCommand([name, ...args]), join);
    },
  };
}

const flushCheck = (args: Uint8Array[]) => {
  if (args.length === 0) return null;
  const opt = new TextDecoder().decode(args[0]).toLowerCase();
  return args.length === 1 && (opt === "async" || opt === "sync") ? null : "ERR syntax error";
};

registerCommands({
  get: { arity: 2, flags: RF, keys: K1, shard: true },
  set: { arity: -3, flags: W, keys: K1, shard: true },
  setnx: { arity: 3, flags: WF, keys: K1, shard: true },
  setex: { arity: 4, flags: W, keys: K1, shard: true },
  psetex: { arity: 4, flags: W, keys: K1, shard: true },
  getset: { arity: 3, flags: WF, keys: K1, shard: true },
  getdel: { arity: 2, flags: ["write", "fast"], keys: K1, shard: true },
  getex: { arity: -2, flags: ["write", "fast"], keys: K1, shard: true },
  mget: { arity: -2, flags: RF, keys: KALL, shard: true, split: "mget" },
  mset: { arity: -3, flags: W, keys: KPAIRS, shard: true, split: "ok" },
  msetnx: { arity: -3, flags: W, keys: KPAIRS, shard: true },
  append: { arity: 3, flags: WF, keys: K1, shard: true },
  strlen: { arity: 2, flags: RF, keys: K1, shard: true },
  getrange: { arity: 4, flags: R, keys: K1, shard: true },
  substr: { arity: 4, flags: R, keys: K1, shard: true },
  setrange: { arity: 4, flags: W, keys: K1, shard: true },
  incr: { arity: 2, flags: WF, keys: K1, shard: true },
  decr: { arity: 2, flags: WF, keys: K1, shard: true },
  incrby: { arity: 3, flags: WF, keys: K1, shard: true },
  decrby: { arity: 3, flags: WF, keys: K1, shard: true },
  incrbyfloat: { arity: 3, flags: WF, keys: K1, shard: true },
  del: { arity: -2, flags: ["write"], keys: KALL, shard: true, split: "sum" },
  unlink: { arity: -2, flags: ["write", "fast"], keys: KALL, shard: true, split: "sum" },
  exists: { arity: -2, flags: RF, keys: KALL, shard: true, split: "sum" },
  touch: { arity: -2, flags: RF, keys: KALL, shard: true, split: "sum" },
  type: { arity: 2, flags: RF, keys: K1, shard: true },
  expire: { arity: -3, flags: ["write", "fast"], keys: K1, shard: true },
  pexpire: { arity: -3, flags: ["write", "fast"], keys: K1, shard: true },
  expireat: { arity: -3, flags: ["write", "fast"], keys: K1, shard: true },
  pexpireat: { arity: -3, flags: ["write", "fast"], keys: K1, shard: true },
  expiretime: { arity: 2, flags: RF, keys: K1, shard: true },
  pexpiretime: { arity: 2, flags: RF, keys: K1, shard: true },
  ttl: { arity: 2, flags: RF, keys: K1, shard: true },
  pttl: { arity: 2, flags: RF, keys: K1, shard: true },
  persist: { arity: 2, flags: ["write", "fast"], keys: K1, shard: true },
  rename: { arity: 3, flags: ["write"], keys: K12, shard: true },
  renamenx: { arity: 3, flags: ["write", "fast"], keys: K12, shard: true },
  dbsize: everyShard("dbsize", 1, RF, sumJoin),
  keys: everyShard("keys", 2, R, concatJoin),
  randomkey: everyShard("randomkey", 1, R, randomJoin),
  flushdb: everyShard("flushdb", -1, ["write"], okJoin, flushCheck),
  flushall: everyShard("flushall", -1, ["write"], okJoin, flushCheck),
  scan: { arity: -2, flags: R, run: scan },
  ping: {
    arity: -1,
    flags: ["fast"],
    run: (ctx, args) => {
      if (args.length > 1) return ctx.session.reply(ctx.conn, wrongArity("ping"));
      const out = new RespOut();
      out.reset(ctx.session.proto);
      if (args.length === 1) out.bulk(args[0]);
      else out.simple("PONG");
      ctx.session.reply(ctx.conn, out.bytes());
    },
  },
  echo: {
    arity: 2,
    flags: ["fast"],
    run: (ctx, [msg]) => {
      const out = new RespOut();
      out.bulk(msg);
      ctx.session.reply(ctx.conn, out.bytes());
    },
  },
  hello: { arity: -1, flags: ["noscript", "loading", "stale", "fast", "no_auth"], run: hello },
  auth: {
    arity: -2,
    flags: ["noscript", "loading", "stale", "fast", "no_auth"],
    run: AUTH_COMMANDS.auth.run,
  },
  acl: { arity: -2, flags: ["admin", "noscript", "loading", "stale"], run: AUTH_COMMANDS.acl.run },
  client: { arity: -2, flags: ["noscript", "loading", "stale"], run: client },
  multi: { arity: 1, flags: ["noscript", "loading", "stale", "fast"], run: multi },
  exec: { arity: 1, flags: ["noscript", "loading", "stale", "skip_slowlog"], run: exec },
  discard: { arity: 1, flags: ["noscript", "loading", "stale", "fast"], run: discard },
  watch: { arity: -2, flags: ["noscript", "loading", "stale", "fast"], keys: KALL, run: watch },
  unwatch: { arity: 1, flags: ["noscript", "loading", "stale", "fast"], run: unwatch },
  info: { arity: -1, flags: ["loading", "stale"], run: info },
  command: { arity: -1, flags: ["loading", "stale"], run: command },
  config: { arity: -2, flags: ["admin", "noscript", "loading", "stale"], run: config },
  select: { arity: 2, flags: ["loading", "stale", "fast"], run: select },
  time: { arity: 1, flags: ["loading", "stale", "fast"], run: time },
  ...persistCommands,
  slowlog: slowlogCommand,
  quit: {
    arity: -1,
    flags: ["noscript", "loading", "stale", "fast", "no_auth"],
    run: (ctx) => {
      ctx.session.reply(ctx.conn, OK_BYTES);
      ctx.session.quitting = true;
      ctx.conn.finish();
    },
  },
});

/** Commands that run even inside MULTI instead of being queued. */
export const TRANSACTION_CONTROL: ReadonlySet<string> = new Set([
  "exec",
  "discard",
  "multi",
  "watch",
  "quit",
  "unwatch",
]);

/** Commands queued by MULTI that run on the shard besides the `shard` ones. */
export const SHARD_STATELESS: ReadonlySet<string> = new Set(["ping", "echo"]);

const latin1 = new TextDecoder("latin1");

/** The reply to a command that does not exist, worded as Redis words it. */
export function unknownCommand(name: Uint8Array, args: Uint8Array[]): Uint8Array {
  let shown = "";
  for (const a of args) {
    if (shown.length >= 128) break;
    shown += `'${latin1.decode(a).slice(0, 128 - shown.length)}' `;
  }
  return errorBytes(
    `ERR unknown command '${
      latin1.decode(name).slice(0, 128)
    }', with args beginning with: ${shown}`,
  );
}

/** The reply to a command with the wrong number of arguments. */
export function wrongArity(name: string): Uint8Array {
  return errorBytes(`ERR wrong number of arguments for '${name}' command`);
}
