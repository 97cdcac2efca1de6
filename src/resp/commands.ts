/**
 * The RESP commands, each mapped onto the KV service's methods. A command
 * makes its calls and says how to render their answers; the session keeps
 * replies in request order.
 *
 * @module
 */
import { KvInternalMethod, KvMethod, Status } from "../protocol/constants.ts";
import { type evkv, pb } from "../protocol/messages.ts";
import type { CallSite } from "../server/codec.ts";
import type { Connection } from "../server/connection.ts";
import type { MessageType } from "../server/service.ts";
import { compileGlob } from "./glob.ts";
import { slowlogCommand } from "../ops/slowlog_command.ts";
import { array, bulk, error, integer, NULL_BULK, OK, simple } from "./reply.ts";
import type { Call, Result, Session } from "./session.ts";

/** What a command runs with. */
export interface CommandContext {
  /** The client's connection. */
  conn: Connection;
  /** Where calls go. */
  site: CallSite;
  /** The connection's RESP state. */
  session: Session;
}

/** One command: Redis-style arity (n exact, -n at least n, name included). */
export interface Command {
  /** Arity as Redis states it. */
  arity: number;
  /** Runs the command on its arguments (name excluded). */
  run(ctx: CommandContext, args: Uint8Array[]): void;
}

const decoder = new TextDecoder();
const text = (b: Uint8Array) => decoder.decode(b);
const upper = (b: Uint8Array) => text(b).toUpperCase();
const type = <T>(t: MessageType<T>) => t as MessageType<unknown>;

/** Redis's reply to a write refused at the memory cap (wire v1 status 9). */
const OOM = "OOM command not allowed when used memory > 'maxmemory'.";

/** The first failed call, as a RESP error; null when all succeeded. */
function firstError(results: Result[]): Uint8Array | null {
  for (const r of results) {
    if (!r.ok) return error(r.status === Status.NO_MEMORY ? OOM : `ERR ${r.message}`);
  }
  return null;
}

/** Renders answers with `fn` unless a call failed. */
function rendered<T>(fn: (values: T[]) => Uint8Array): (results: Result[]) => Uint8Array {
  return (results) => firstError(results) ?? fn(results.map((r) => (r as { value: T }).value));
}

/** A strict decimal integer argument, or null. */
function intArg(b: Uint8Array): number | null {
  const s = text(b);
  return /^-?\d{1,15}$/.test(s) ? Number(s) : null;
}

const get = (key: Uint8Array): Call => ({
  code: KvMethod.Get,
  body: pb.GetRequest.encode({ key }).finish(),
  reply: type(pb.GetReply),
});

const put = (key: Uint8Array, value: Uint8Array, ttlMs = 0): Call => ({
  code: KvMethod.Put,
  body: pb.PutRequest.encode({ key, value, ttlMs }).finish(),
  reply: type(pb.PutReply),
});

/** Largest TTL a wire v1 Put can carry (u32 ms, about 49 days). */
const MAX_TTL_MS = 0xffffffff;

function set(ctx: CommandContext, args: Uint8Array[]): void {
  const [key, value] = args;
  let ttlMs = 0;
  let nx = false;
  let xx = false;
  for (let i = 2; i < args.length; i++) {
    const opt = upper(args[i]);
    if ((opt === "EX" || opt === "PX") && i + 1 < args.length && ttlMs === 0) {
      const n = intArg(args[++i]);
      if (n === null) {
        return ctx.session.reply(ctx.conn, error("ERR value is not an integer or out of range"));
      }
      const ms = opt === "EX" ? n * 1000 : n;
      if (n <= 0 || ms > MAX_TTL_MS) {
        return ctx.session.reply(ctx.conn, error("ERR invalid expire time in 'set' command"));
      }
      ttlMs = ms;
    } else if (opt === "NX" && !xx) nx = true;
    else if (opt === "XX" && !nx) xx = true;
    else return ctx.session.reply(ctx.conn, error("ERR syntax error"));
  }
  if (!nx && !xx) {
    ctx.session.call(ctx.conn, ctx.site, [put(key, value, ttlMs)], rendered(() => OK));
    return;
  }
  const call: Call = {
    code: KvInternalMethod.PutIf,
    body: pb.PutIfRequest.encode({ key, value, ttlMs, onlyIfAbsent: nx, onlyIfPresent: xx })
      .finish(),
    reply: type(pb.PutIfReply),
  };
  ctx.session.call(
    ctx.conn,
    ctx.site,
    [call],
    rendered<evkv.v1.IPutIfReply>(([r]) => (r.written ? OK : NULL_BULK)),
  );
}

function scan(ctx: CommandContext, args: Uint8Array[]): void {
  const cursor = intArg(args[0]);
  if (cursor === null || cursor < 0) {
    return ctx.session.reply(ctx.conn, error("ERR invalid cursor"));
  }
  let pattern: Uint8Array | null = null;
  let count = 10;
  for (let i = 1; i < args.length; i++) {
    const opt = upper(args[i]);
    if (opt === "MATCH" && i + 1 < args.length) pattern = args[++i];
    else if (opt === "COUNT" && i + 1 < args.length) {
      const n = intArg(args[++i]);
      if (n === null || n < 1) return ctx.session.reply(ctx.conn, error("ERR syntax error"));
      count = Math.min(n, 1000);
    } else return ctx.session.reply(ctx.conn, error("ERR syntax error"));
  }
  let startAfter: Uint8Array = new Uint8Array(0);
  if (cursor !== 0) {
    const key = ctx.session.cursor(cursor);
    if (!key) return ctx.session.reply(ctx.conn, error("ERR invalid cursor"));
    startAfter = key;
  }
  const glob = pattern ? compileGlob(pattern) : null;
  const prefix = glob?.prefix ?? new Uint8Array(0);
  const call: Call = {
    code: KvMethod.Scan,
    body: pb.ScanRequest.encode({ prefix, startAfter, limit: count }).finish(),
    reply: type(pb.ScanReply),
  };
  const session = ctx.session;
  session.call(
    ctx.conn,
    ctx.site,
    [call],
    rendered<evkv.v1.IScanReply>(([r]) => {
      const entries = r.entries ?? [];
      const next = r.more && entries.length > 0
        ? session.saveCursor(entries[entries.length - 1].key!)
        : 0;
      const keys = entries.map((e) => e.key!).filter((k) => !glob || glob.matches(k));
      return array([bulk(String(next)), array(keys.map((k) => bulk(k)))]);
    }),
  );
}

function info(ctx: CommandContext): void {
  const call: Call = {
    code: KvMethod.Stats,
    body: pb.StatsRequest.encode({}).finish(),
    reply: type(pb.StatsReply),
  };
  ctx.session.call(
    ctx.conn,
    ctx.site,
    [call],
    rendered<evkv.v1.IStatsReply>(([r]) => {
      const lines = ["# Server", "evkv_version:0.1.0", "", "# Stats"];
      for (const c of r.counters ?? []) lines.push(`${c.name}:${c.value}`);
      return bulk(lines.join("\r\n") + "\r\n");
    }),
  );
}

/** Every command, by lower-case name. */
export const COMMANDS: Record<string, Command> = {
  ping: {
    arity: -1,
    run: (ctx, args) => {
      if (args.length > 1) {
        return ctx.session.reply(
          ctx.conn,
          error("ERR wrong number of arguments for 'ping' command"),
        );
      }
      ctx.session.reply(ctx.conn, args.length === 1 ? bulk(args[0]) : simple("PONG"));
    },
  },
  echo: { arity: 2, run: (ctx, [msg]) => ctx.session.reply(ctx.conn, bulk(msg)) },
  get: {
    arity: 2,
    run: (ctx, [key]) =>
      ctx.session.call(
        ctx.conn,
        ctx.site,
        [get(key)],
        rendered<evkv.v1.IGetReply>(([r]) => (r.found ? bulk(r.value!) : NULL_BULK)),
      ),
  },
  set: { arity: -3, run: set },
  del: {
    arity: -2,
    run: (ctx, keys) =>
      ctx.session.call(
        ctx.conn,
        ctx.site,
        keys.map((key) => ({
          code: KvMethod.Delete,
          body: pb.DeleteRequest.encode({ key }).finish(),
          reply: type(pb.DeleteReply),
        })),
        rendered<evkv.v1.IDeleteReply>((rs) => integer(rs.filter((r) => r.deleted).length)),
      ),
  },
  exists: {
    arity: -2,
    run: (ctx, keys) =>
      ctx.session.call(
        ctx.conn,
        ctx.site,
        keys.map(get),
        rendered<evkv.v1.IGetReply>((rs) => integer(rs.filter((r) => r.found).length)),
      ),
  },
  mget: {
    arity: -2,
    run: (ctx, keys) =>
      ctx.session.call(
        ctx.conn,
        ctx.site,
        keys.map(get),
        rendered<evkv.v1.IGetReply>((rs) =>
          array(rs.map((r) => (r.found ? bulk(r.value!) : NULL_BULK)))
        ),
      ),
  },
  mset: {
    arity: -3,
    run: (ctx, args) => {
      if (args.length % 2 !== 0) {
        return ctx.session.reply(
          ctx.conn,
          error("ERR wrong number of arguments for 'mset' command"),
        );
      }
      const calls: Call[] = [];
      for (let i = 0; i < args.length; i += 2) calls.push(put(args[i], args[i + 1]));
      ctx.session.call(ctx.conn, ctx.site, calls, rendered(() => OK));
    },
  },
  scan: { arity: -2, run: scan },
  dbsize: {
    arity: 1,
    run: (ctx) =>
      ctx.session.call(
        ctx.conn,
        ctx.site,
        [{
          code: KvInternalMethod.Count,
          body: pb.CountRequest.encode({}).finish(),
          reply: type(pb.CountReply),
        }],
        rendered<evkv.v1.ICountReply>(([r]) => integer(Number(r.keys ?? 0))),
      ),
  },
  info: { arity: -1, run: (ctx) => info(ctx) },
  slowlog: slowlogCommand,
  command: {
    // Enough for redis-cli to start: it asks for COMMAND DOCS and copes
    // with an empty answer.
    arity: -1,
    run: (ctx, args) => {
      const sub = args.length > 0 ? upper(args[0]) : "";
      ctx.session.reply(
        ctx.conn,
        sub === "COUNT" ? integer(Object.keys(COMMANDS).length) : array([]),
      );
    },
  },
  config: {
    // redis-benchmark asks for `save` and `appendonly` before it starts.
    arity: -2,
    run: (ctx, args) => {
      if (upper(args[0]) !== "GET" || args.length !== 2) {
        return ctx.session.reply(ctx.conn, error("ERR CONFIG supports only GET here"));
      }
      const known: Record<string, string> = { save: "", appendonly: "no" };
      const name = text(args[1]).toLowerCase();
      ctx.session.reply(
        ctx.conn,
        name in known ? array([bulk(name), bulk(known[name])]) : array([]),
      );
    },
  },
  select: {
    arity: 2,
    run: (ctx, [db]) =>
      ctx.session.reply(ctx.conn, text(db) === "0" ? OK : error("ERR DB index is out of range")),
  },
  quit: {
    arity: -1,
    run: (ctx) => {
      ctx.session.reply(ctx.conn, OK);
      ctx.session.quitting = true;
      ctx.conn.closeWhenDone = true;
    },
  },
};

/** The reply to a command that does not exist, worded as Redis words it. */
export function unknownCommand(name: Uint8Array, args: Uint8Array[]): Uint8Array {
  const shown = args.slice(0, 4).map((a) => `'${text(a).slice(0, 128)}'`).join(" ");
  return error(
    `ERR unknown command '${text(name).slice(0, 128)}', with args beginning with: ${shown}`,
  );
}

/** The reply to a command with the wrong number of arguments. */
export function wrongArity(name: string): Uint8Array {
  return error(`ERR wrong number of arguments for '${name}' command`);
}
