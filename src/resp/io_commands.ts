/**
 * The RESP commands that run in the IO worker: the handshake (HELLO,
 * CLIENT, AUTH), transactions (MULTI/EXEC/DISCARD/WATCH/UNWATCH), SCAN,
 * INFO, COMMAND and CONFIG, and the keyless commands that ask every shard
 * (DBSIZE, KEYS, FLUSHDB, RANDOMKEY) and join the parts.
 *
 * @module
 */
import { KvMethod, REPLY_SLACK } from "../protocol/constants.ts";
import { pb } from "../protocol/messages.ts";
import { shardOfKey } from "../kv/route.ts";
import { type CommandContext, COMMANDS } from "./command_table.ts";
import { errorBytes, RespOut } from "./out.ts";
import { array } from "./reply.ts";
import { Gather, type ScanCursor, type Session } from "./session.ts";
import { persistenceSection, persistInfoCall } from "./persist_commands.ts";
import { HELLO_NOAUTH, respAuthenticate, respAuthenticated } from "./auth_commands.ts";
import { parseInt64 } from "../kv/counter.ts";
import {
  encodePinnedHeader,
  MODE_EXEC,
  MODE_PLAIN,
  PINNED_HEADER,
  RespMethod,
} from "./shard_methods.ts";

/** The Redis version evkv answers as (HELLO, INFO), for clients and tools that check it. */
export const REDIS_COMPAT_VERSION = "7.0.15";
/** evkv's own version, in INFO. */
export const EVKV_VERSION = "0.1.0";

const latin1 = new TextDecoder("latin1");
const encoder = new TextEncoder();
/** Bytes as text, one char per byte. */
export const text = (b: Uint8Array): string => latin1.decode(b);
const lower = (b: Uint8Array) => text(b).toLowerCase();

/** A fresh RespOut for a reply made in the IO worker, in the session's protocol. */
export function outFor(session: Session): RespOut {
  const out = new RespOut();
  out.reset(session.proto);
  return out;
}

/** `+OK` as bytes. */
export const OK_BYTES: Uint8Array = encoder.encode("+OK\r\n");
const QUEUED = encoder.encode("+QUEUED\r\n");

/**
 * A command as multibulk bytes.
 *
 * @example
 * ```ts
 * import { encodeCommand } from "./io_commands.ts";
 * encodeCommand(["get", "k"]); // "*2\r\n$3\r\nget\r\n$1\r\nk\r\n"
 * ```
 */
export function encodeCommand(parts: (Uint8Array | string)[]): Uint8Array {
  const out = new RespOut();
  out.arrayHead(parts.length);
  for (const p of parts) {
    if (typeof p === "string") out.bulkText(p);
    else out.bulk(p);
  }
  return out.bytes();
}

/** A pinned body: header, watched keys, then commands. */
export function pinnedBody(
  shard: number,
  proto: number,
  mode: number,
  commands: Uint8Array[],
  watched: { key: Uint8Array; fp: number }[] = [],
): Uint8Array {
  let size = PINNED_HEADER;
  for (const w of watched) size += 8 + w.key.length;
  for (const c of commands) size += c.length;
  const body = new Uint8Array(size);
  encodePinnedHeader(body, 0, shard, proto, mode, commands.length, watched.length);
  const v = new DataView(body.buffer);
  let at = PINNED_HEADER;
  for (const w of watched) {
    v.setUint32(at, w.fp, true);
    v.setUint32(at + 4, w.key.length, true);
    body.set(w.key, at + 8);
    at += 8 + w.key.length;
  }
  for (const c of commands) {
    body.set(c, at);
    at += c.length;
  }
  return body;
}

/** Runs `command` on every shard and replies with `join` of the parts. */
export function fanout(
  ctx: CommandContext,
  command: Uint8Array,
  join: (parts: Uint8Array[], proto: number) => Uint8Array,
): void {
  const { conn, dispatcher, session } = ctx;
  const shards = dispatcher.shards;
  const proto = session.proto;
  const limit = session.maxBody + REPLY_SLACK;
  const gather = new Gather(session, session.nextSeq(), shards, (parts) => {
    const joined = join(parts, proto);
    // Each shard's part kept within the reply limit; the whole must too (KEYS).
    if (joined.length <= limit) return joined;
    return errorBytes(
      `ERR Join reply: ${joined.length} bytes is over the ${limit}-byte reply limit`,
    );
  });
  for (let s = 0; s < shards; s++) {
    const body = pinnedBody(s, proto, MODE_PLAIN, [command]);
    dispatcher.call(conn, gather, RespMethod.Pinned, s, 0, body, 0, body.length, 0, true);
  }
}

/** End of the RESP reply at `b[i]`. */
export function skipReply(b: Uint8Array, i: number): number {
  const type = b[i];
  let eol = i;
  while (b[eol] !== 13) eol++;
  const n = Number(text(b.subarray(i + 1, eol)));
  let at = eol + 2;
  if (type === 0x24 || type === 0x3d || type === 0x21) return n < 0 ? at : at + n + 2;
  if (type === 0x2a || type === 0x7e || type === 0x3e || type === 0x25) {
    const items = type === 0x25 ? 2 * n : n;
    for (let k = 0; k < items; k++) at = skipReply(b, at);
  }
  return at;
}

/** The items of the array reply `b` (views). */
export function arrayItems(b: Uint8Array): Uint8Array[] {
  let eol = 0;
  while (b[eol] !== 13) eol++;
  const n = Number(text(b.subarray(1, eol)));
  const items: Uint8Array[] = [];
  let at = eol + 2;
  for (let k = 0; k < n; k++) {
    const end = skipReply(b, at);
    items.push(b.subarray(at, end));
    at = end;
  }
  return items;
}

/** The integer of a `:n` reply. */
export function intOf(b: Uint8Array): number {
  return Number(text(b.subarray(1, b.length - 2)));
}

/** Joins parts that are integer replies by adding them. */
export function sumJoin(parts: Uint8Array[]): Uint8Array {
  for (const p of parts) if (p[0] === 0x2d) return p;
  return encoder.encode(`:${parts.reduce((n, p) => n + intOf(p), 0)}\r\n`);
}

/** Joins parts that are all `+OK` (or the first error). */
export function okJoin(parts: Uint8Array[]): Uint8Array {
  for (const p of parts) if (p[0] === 0x2d) return p;
  return OK_BYTES;
}

/** Joins array replies into one array. */
export function concatJoin(parts: Uint8Array[]): Uint8Array {
  return array(parts.flatMap(arrayItems));
}

/** The shard of argument `i` of the command in `b` at `base` with relative spans. */
export function argShard(
  b: Uint8Array,
  base: number,
  spans: Int32Array,
  i: number,
  shards: number,
): number {
  return shardOfKey(b, base + spans[2 * i], base + spans[2 * i + 1], shards);
}

// --- Handshake ---------------------------------------------------------------

const NAME_OK = (s: string) => /^[!-~]*$/.test(s);

function helloReply(session: Session): Uint8Array {
  const out = outFor(session);
  out.mapHead(7);
  out.bulkText("server");
  out.bulkText("redis");
  out.bulkText("version");
  out.bulkText(REDIS_COMPAT_VERSION);
  out.bulkText("proto");
  out.int(session.proto);
  out.bulkText("id");
  out.int(session.id);
  out.bulkText("mode");
  out.bulkText("standalone");
  out.bulkText("role");
  out.bulkText("master");
  out.bulkText("modules");
  out.arrayHead(0);
  return out.bytes();
}

/** HELLO [protover [AUTH username password] [SETNAME clientname]]. */
export function hello(ctx: CommandContext, args: Uint8Array[]): void {
  const s = ctx.session;
  let proto = s.proto;
  let i = 0;
  if (args.length > 0) {
    const v = parseInt64(args[0], 0, args[0].length);
    if (v === null) {
      return s.reply(
        ctx.conn,
        errorBytes("ERR Protocol version is not an integer or out of range"),
      );
    }
    if (v < 2 || v > 3) {
      return s.reply(ctx.conn, errorBytes("NOPROTO unsupported protocol version"));
    }
    proto = Number(v);
    i = 1;
  }
  let name: string | null = null;
  let authed = false;
  for (; i < args.length; i++) {
    const opt = lower(args[i]);
    const more = args.length - i - 1;
    if (opt === "auth" && more >= 2) {
      const refusal = respAuthenticate(ctx.conn, args[i + 1], args[i + 2]);
      if (refusal !== null) return s.reply(ctx.conn, refusal);
      authed = true;
      i += 2;
    } else if (opt === "setname" && more >= 1) {
      name = text(args[++i]);
      if (!NAME_OK(name)) {
        return s.reply(
          ctx.conn,
          errorBytes("ERR Client names cannot contain spaces, newlines or special characters."),
        );
      }
    } else {
      return s.reply(ctx.conn, errorBytes(`ERR Syntax error in HELLO option '${text(args[i])}'`));
    }
  }
  if (!authed && !respAuthenticated(ctx.conn)) return s.reply(ctx.conn, HELLO_NOAUTH);
  s.proto = proto;
  if (name !== null) s.name = name;
  s.reply(ctx.conn, helloReply(s));
}

function clientInfoLine(ctx: CommandContext): string {
  const s = ctx.session;
  return `id=${s.id} addr=${ctx.conn.info.remote} laddr= fd=0 name=${s.name} age=0 idle=0 ` +
    `flags=${s.multi ? "x" : "N"} db=0 sub=0 psub=0 ssub=0 multi=${
      s.multi ? s.queued.length : -1
    } qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 ` +
    `events=r cmd=client|info user=default redir=-1 resp=${s.proto} ` +
    `lib-name=${s.libName} lib-ver=${s.libVer}\n`;
}

/** CLIENT SETNAME/GETNAME/ID/SETINFO/INFO/LIST/NO-EVICT/NO-TOUCH. */
export function client(ctx: CommandContext, args: Uint8Array[]): void {
  const s = ctx.session;
  const sub = lower(args[0]);
  const reply = (b: Uint8Array) => s.reply(ctx.conn, b);
  const arity = () =>
    reply(errorBytes(`ERR wrong number of arguments for 'client|${sub}' command`));
  const out = outFor(s);
  switch (sub) {
    case "setname": {
      if (args.length !== 2) return arity();
      const name = text(args[1]);
      if (!NAME_OK(name)) {
        return reply(
          errorBytes("ERR Client names cannot contain spaces, newlines or special characters."),
        );
      }
      s.name = name;
      return reply(OK_BYTES);
    }
    case "getname":
      if (args.length !== 1) return arity();
      if (s.name === "") out.nullBulk();
      else out.bulkText(s.name);
      return reply(out.bytes());
    case "id":
      if (args.length !== 1) return arity();
      out.int(s.id);
      return reply(out.bytes());
    case "setinfo": {
      if (args.length !== 3) return arity();
      const attr = lower(args[1]);
      const value = text(args[2]);
      if (!NAME_OK(value)) {
        return reply(
          errorBytes(
            `ERR ${
              attr === "lib-name" ? "lib-name" : "lib-ver"
            } cannot contain spaces, newlines or special characters.`,
          ),
        );
      }
      if (attr === "lib-name") s.libName = value;
      else if (attr === "lib-ver") s.libVer = value;
      else return reply(errorBytes(`ERR Unrecognized option '${text(args[1])}'`));
      return reply(OK_BYTES);
    }
    case "info":
      if (args.length !== 1) return arity();
      out.verbatim(clientInfoLine(ctx));
      return reply(out.bytes());
    case "list":
      // This connection only: each IO worker knows its own connections, no others.
      out.verbatim(clientInfoLine(ctx).replace("cmd=client|info", "cmd=client|list"));
      return reply(out.bytes());
    case "no-evict":
    case "no-touch": {
      if (args.length !== 2) return arity();
      const v = lower(args[1]);
      if (v !== "on" && v !== "off") return reply(errorBytes("ERR syntax error"));
      return reply(OK_BYTES);
    }
    default:
      return reply(
        errorBytes(`ERR unknown subcommand '${text(args[0]).slice(0, 128)}'. Try CLIENT HELP.`),
      );
  }
}

// --- Transactions -------------------------------------------------------------

/** MULTI. */
export function multi(ctx: CommandContext): void {
  const s = ctx.session;
  if (s.multi) return s.reply(ctx.conn, errorBytes("ERR MULTI calls can not be nested"));
  s.multi = true;
  s.dirty = false;
  s.queued = [];
  s.queuedBytes = 0;
  s.reply(ctx.conn, OK_BYTES);
}

/** The reply to a command queued by MULTI. */
export function queuedReply(): Uint8Array {
  return QUEUED;
}

/** DISCARD. */
export function discard(ctx: CommandContext): void {
  const s = ctx.session;
  if (!s.multi) return s.reply(ctx.conn, errorBytes("ERR DISCARD without MULTI"));
  s.resetTransaction();
  s.reply(ctx.conn, OK_BYTES);
}

/** UNWATCH. */
export function unwatch(ctx: CommandContext): void {
  ctx.session.watched = [];
  ctx.session.reply(ctx.conn, OK_BYTES);
}

/** WATCH key...: takes each key's fingerprint from its shard; EXEC compares. */
export function watch(ctx: CommandContext, keys: Uint8Array[]): void {
  const s = ctx.session;
  if (s.multi) return s.reply(ctx.conn, errorBytes("ERR WATCH inside MULTI is not allowed"));
  const copies = keys.map((k) => k.slice());
  const gather = new Gather(s, s.nextSeq(), keys.length, (parts) => {
    for (let i = 0; i < parts.length; i++) s.watched.push({ key: copies[i], fp: intOf(parts[i]) });
    return OK_BYTES;
  });
  copies.forEach((key, i) => {
    const body = encodeCommand(["__fp", key]);
    ctx.dispatcher.call(ctx.conn, gather, RespMethod.Key2, i, 0, body, 0, body.length, 0, true);
  });
}

const CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot";

/**
 * EXEC: when every key of the transaction and of its WATCHes lives on one
 * shard, the whole transaction runs there in one go (nothing interleaves);
 * otherwise nothing runs and the client gets -CROSSSLOT.
 */
export function exec(ctx: CommandContext): void {
  const s = ctx.session;
  if (!s.multi) return s.reply(ctx.conn, errorBytes("ERR EXEC without MULTI"));
  const queued = s.queued;
  const watched = s.watched;
  const dirty = s.dirty;
  s.resetTransaction();
  if (dirty) {
    return s.reply(
      ctx.conn,
      errorBytes("EXECABORT Transaction discarded because of previous errors."),
    );
  }
  const shards = ctx.dispatcher.shards;
  let shard = -1;
  let cross = false;
  const touch = (b: Uint8Array, start: number, end: number) => {
    const sh = shardOfKey(b, start, end, shards);
    if (shard < 0) shard = sh;
    else if (sh !== shard) cross = true;
  };
  for (const w of watched) touch(w.key, 0, w.key.length);
  for (const q of queued) {
    const cmd = COMMANDS[q.name];
    if (cmd.fanout && shards > 1) cross = true;
    const keys = cmd.keys;
    if (!keys) continue;
    const items = arrayItemsOfCommand(q.bytes);
    const last = keys[1] < 0 ? items.length + keys[1] : keys[1];
    for (let i = keys[0]; i <= last && i < items.length; i += keys[2]) {
      touch(q.bytes, items[i][0], items[i][1]);
    }
  }
  if (cross) return s.reply(ctx.conn, errorBytes(CROSSSLOT));
  const body = pinnedBody(
    Math.max(0, shard),
    s.proto,
    MODE_EXEC,
    queued.map((q) => q.bytes),
    watched,
  );
  if (body.length > s.maxBody) {
    return s.reply(
      ctx.conn,
      errorBytes(`EXECABORT Transaction discarded: it is over ${s.maxBody} bytes.`),
    );
  }
  const seq = s.nextSeq();
  ctx.dispatcher.call(ctx.conn, s, RespMethod.Pinned, seq, 0, body, 0, body.length, 0, true);
}

/** [start, end) of each argument of a whole multibulk command. */
function arrayItemsOfCommand(b: Uint8Array): [number, number][] {
  let i = 1;
  let n = 0;
  while (b[i] !== 13) n = n * 10 + b[i++] - 0x30;
  i += 2;
  const spans: [number, number][] = [];
  for (let k = 0; k < n; k++) {
    let len = 0;
    i++;
    while (b[i] !== 13) len = len * 10 + b[i++] - 0x30;
    i += 2;
    spans.push([i, i + len]);
    i += len + 2;
  }
  return spans;
}

// --- SCAN, KEYS, RANDOMKEY ----------------------------------------------------

/** SCAN cursor [MATCH pattern] [COUNT count] [TYPE type], one shard at a time. */
export function scan(ctx: CommandContext, args: Uint8Array[]): void {
  const s = ctx.session;
  const reply = (b: Uint8Array) => s.reply(ctx.conn, b);
  const c = text(args[0]);
  if (!/^\d+$/.test(c)) return reply(errorBytes("ERR invalid cursor"));
  let pattern: Uint8Array | null = null;
  let count = 10;
  let typeOk = true;
  for (let i = 1; i < args.length; i++) {
    const opt = lower(args[i]);
    if (i + 1 >= args.length) return reply(errorBytes("ERR syntax error"));
    if (opt === "match") pattern = args[++i];
    else if (opt === "count") {
      const n = parseInt64(args[i + 1], 0, args[++i].length);
      if (n === null) return reply(errorBytes("ERR value is not an integer or out of range"));
      if (n < 1) return reply(errorBytes("ERR syntax error"));
      count = Math.min(Number(n), 1000);
    } else if (opt === "type") typeOk = lower(args[++i]) === "string";
    else return reply(errorBytes("ERR syntax error"));
  }
  let at: ScanCursor = { shard: 0, after: new Uint8Array(0) };
  if (c !== "0") {
    const saved = s.cursor(Number(c));
    if (!saved) return reply(errorBytes("ERR invalid cursor"));
    at = saved;
  }
  const shards = ctx.dispatcher.shards;
  const parts: (Uint8Array | string)[] = ["__scan", at.after, String(count)];
  if (pattern) parts.push("match", pattern);
  const body = pinnedBody(at.shard, s.proto, MODE_PLAIN, [encodeCommand(parts)]);
  const gather = new Gather(s, s.nextSeq(), 1, ([part]) => {
    const items = arrayItems(part);
    const more = intOf(items[0]) === 1;
    const lastKey = items[1].subarray(items[1].indexOf(10) + 1, items[1].length - 2).slice();
    let next = 0;
    if (more) next = s.saveCursor({ shard: at.shard, after: lastKey });
    else if (at.shard + 1 < shards) {
      next = s.saveCursor({ shard: at.shard + 1, after: new Uint8Array(0) });
    }
    const keys = typeOk ? items.slice(2) : [];
    const out = outFor(s);
    out.arrayHead(2);
    out.bulkText(String(next));
    out.arrayHead(keys.length);
    for (const k of keys) out.raw(k);
    return out.bytes();
  });
  ctx.dispatcher.call(ctx.conn, gather, RespMethod.Pinned, 0, 0, body, 0, body.length, 0, true);
}

/** RANDOMKEY: one shard's random key, among the shards that have one. */
export function randomJoin(parts: Uint8Array[], proto: number): Uint8Array {
  const found = parts.filter((p) => p[0] === 0x24 && p[1] !== 0x2d);
  if (found.length === 0) return encoder.encode(proto === 3 ? "_\r\n" : "$-1\r\n");
  return found[Math.floor(Math.random() * found.length)];
}

// --- INFO ---------------------------------------------------------------------

const SECTIONS = [
  "server",
  "clients",
  "memory",
  "persistence",
  "stats",
  "replication",
  "cpu",
  "keyspace",
] as const;

const startedAt = Date.now();

function human(bytes: number): string {
  if (bytes < 1024) return `${bytes}B`;
  const units = ["K", "M", "G", "T"];
  let v = bytes;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(2)}${units[u]}`;
}

/** INFO [section ...]: Redis's sections, from the server's counters and every shard's keyspace. */
export function info(ctx: CommandContext, args: Uint8Array[]): void {
  const s = ctx.session;
  const wanted = new Set(args.map(lower));
  const all = wanted.size === 0 || wanted.has("all") || wanted.has("everything") ||
    wanted.has("default");
  const shards = ctx.dispatcher.shards;
  // Parts: each shard's keyspace figures, then Stats, then what is on disk.
  const gather = new Gather(s, s.nextSeq(), shards + 2, (parts, statuses) => {
    let keys = 0, expires = 0, memory = 0, expired = 0, evicted = 0;
    for (let i = 0; i < shards; i++) {
      const v = arrayItems(parts[i]).map(intOf);
      keys += v[0];
      expires += v[1];
      memory += v[2];
      expired += v[3];
      evicted += v[4];
    }
    const stats = new Map<string, number>();
    for (const c of pb.StatsReply.decode(parts[shards]).counters ?? []) {
      stats.set(c.name ?? "", Number(c.value ?? 0));
    }
    const st = (n: string) => stats.get(n) ?? 0;
    const uptime = Math.floor((Date.now() - startedAt) / 1000);
    const cpu = cpuSeconds();
    const body: Record<string, string[]> = {
      server: [
        `redis_version:${REDIS_COMPAT_VERSION}`,
        `evkv_version:${EVKV_VERSION}`,
        "redis_mode:standalone",
        `os:${Deno.build.os} ${Deno.build.arch}`,
        "arch_bits:64",
        `process_id:${Deno.pid}`,
        `uptime_in_seconds:${uptime}`,
        `uptime_in_days:${Math.floor(uptime / 86400)}`,
        `executable:evkv`,
      ],
      clients: [
        `connected_clients:${Math.max(1, st("connections_accepted") - st("connections_closed"))}`,
        "blocked_clients:0",
        "tracking_clients:0",
        "maxclients:10000",
      ],
      memory: [
        `used_memory:${memory}`,
        `used_memory_human:${human(memory)}`,
        `used_memory_dataset:${memory}`,
        `maxmemory:${st("maxmemory")}`,
        `maxmemory_human:${human(st("maxmemory"))}`,
        "maxmemory_policy:noeviction",
      ],
      persistence: persistenceSection(
        statuses[shards + 1] === 0
          ? { ok: true, value: pb.StatsReply.decode(parts[shards + 1]) }
          : { ok: false, status: statuses[shards + 1], message: `status ${statuses[shards + 1]}` },
      ).slice(1),
      stats: [
        `total_connections_received:${st("connections_accepted")}`,
        `total_commands_processed:${st("requests")}`,
        "instantaneous_ops_per_sec:0",
        `total_net_input_bytes:${st("bytes_in")}`,
        `total_net_output_bytes:${st("bytes_out")}`,
        `rejected_connections:${st("connections_rejected")}`,
        `expired_keys:${expired}`,
        `evicted_keys:${evicted}`,
        "keyspace_hits:0",
        "keyspace_misses:0",
        ...[...stats].map(([n, v]) => `evkv_${n.replace(/[^a-zA-Z0-9_]/g, "_")}:${v}`),
      ],
      replication: ["role:master", "connected_slaves:0", "master_repl_offset:0"],
      cpu: [
        `used_cpu_sys:${cpu.system.toFixed(6)}`,
        `used_cpu_user:${cpu.user.toFixed(6)}`,
      ],
      keyspace: keys > 0 ? [`db0:keys=${keys},expires=${expires},avg_ttl=0`] : [],
    };
    const chosen = SECTIONS.filter((name) => all || wanted.has(name));
    const lines: string[] = [];
    for (const name of chosen) {
      if (lines.length > 0) lines.push("");
      lines.push(`# ${name[0].toUpperCase()}${name.slice(1)}`.replace("# Cpu", "# CPU"));
      lines.push(...body[name]);
    }
    const out = outFor(s);
    const textBody = lines.length > 0 ? lines.join("\r\n") + "\r\n" : "";
    out.verbatim(textBody);
    return out.bytes();
  });
  const ks = encodeCommand(["__keyspace"]);
  for (let i = 0; i < shards; i++) {
    const b = pinnedBody(i, 2, MODE_PLAIN, [ks]);
    ctx.dispatcher.call(ctx.conn, gather, RespMethod.Pinned, i, 0, b, 0, b.length, 0, true);
  }
  const statsBody = pb.StatsRequest.encode({}).finish();
  ctx.dispatcher.call(
    ctx.conn,
    gather,
    KvMethod.Stats,
    shards,
    0,
    statsBody,
    0,
    statsBody.length,
    0,
    true,
  );
  const persist = persistInfoCall();
  ctx.dispatcher.call(
    ctx.conn,
    gather,
    persist.code,
    shards + 1,
    0,
    persist.body,
    0,
    persist.body.length,
    0,
    true,
  );
}

let cpuUsage: (() => { user: number; system: number }) | null = null;
try {
  const p = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } })
    .process;
  if (p?.cpuUsage) cpuUsage = () => p.cpuUsage!();
} catch {
  cpuUsage = null;
}

function cpuSeconds(): { user: number; system: number } {
  try {
    const u = cpuUsage?.();
    if (u) return { user: u.user / 1e6, system: u.system / 1e6 };
  } catch {
    // Not available here.
  }
  return { user: 0, system: 0 };
}

// --- COMMAND, CONFIG ----------------------------------------------------------

function commandInfo(out: RespOut, name: string): void {
  const cmd = COMMANDS[name];
  const keys = cmd.keys ?? [0, 0, 0];
  out.arrayHead(10);
  out.bulkText(name);
  out.int(cmd.arity);
  const flags = cmd.flags ?? [];
  out.setHead(flags.length);
  for (const f of flags) out.simple(f);
  out.int(keys[0]);
  out.int(keys[1]);
  out.int(keys[2]);
  out.setHead(0);
  out.setHead(0);
  out.arrayHead(0);
  out.arrayHead(0);
}

/** COMMAND [COUNT | LIST | INFO name... | DOCS [name...]]. */
export function command(ctx: CommandContext, args: Uint8Array[]): void {
  const s = ctx.session;
  const out = outFor(s);
  const names = Object.keys(COMMANDS).filter((n) => !n.startsWith("__"));
  const sub = args.length > 0 ? lower(args[0]) : "";
  if (sub === "count") out.int(names.length);
  else if (sub === "list") {
    out.arrayHead(names.length);
    for (const n of names) out.bulkText(n);
  } else if (sub === "docs") out.mapHead(0);
  else if (sub === "info" || sub === "") {
    const asked = sub === "" ? names : args.slice(1).map(lower);
    out.arrayHead(asked.length);
    for (const n of asked) {
      if (Object.hasOwn(COMMANDS, n)) commandInfo(out, n);
      else out.nullArray();
    }
  } else {
    return s.reply(
      ctx.conn,
      errorBytes(`ERR unknown subcommand '${text(args[0]).slice(0, 128)}'. Try COMMAND HELP.`),
    );
  }
  s.reply(ctx.conn, out.bytes());
}

/** What CONFIG GET knows: what tools ask before they start. */
const CONFIG: Record<string, string> = {
  save: "",
  appendonly: "no",
  maxmemory: "0",
  "maxmemory-policy": "noeviction",
  databases: "1",
  maxclients: "10000",
  timeout: "0",
  "cluster-enabled": "no",
};

/** Redis's glob over config names (ASCII, case-insensitive). */
function configMatches(pattern: string, name: string): boolean {
  const re = new RegExp(
    "^" + pattern.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") +
      "$",
  );
  return pattern.length <= 128 && re.test(name);
}

/** CONFIG GET parameter... | CONFIG SET | CONFIG RESETSTAT. */
export function config(ctx: CommandContext, args: Uint8Array[]): void {
  const s = ctx.session;
  const sub = lower(args[0]);
  if (sub === "get") {
    if (args.length < 2) {
      return s.reply(
        ctx.conn,
        errorBytes("ERR wrong number of arguments for 'config|get' command"),
      );
    }
    const found = new Map<string, string>();
    for (const p of args.slice(1).map(lower)) {
      for (const [name, value] of Object.entries(CONFIG)) {
        if (configMatches(p, name)) found.set(name, value);
      }
    }
    const out = outFor(s);
    out.mapHead(found.size);
    for (const [name, value] of found) {
      out.bulkText(name);
      out.bulkText(value);
    }
    return s.reply(ctx.conn, out.bytes());
  }
  if (sub === "resetstat") return s.reply(ctx.conn, OK_BYTES);
  if (sub === "set") {
    return s.reply(ctx.conn, errorBytes("ERR CONFIG SET is not supported by evkv"));
  }
  s.reply(
    ctx.conn,
    errorBytes(`ERR unknown subcommand '${text(args[0]).slice(0, 128)}'. Try CONFIG HELP.`),
  );
}

/** SELECT index: only database 0 exists. */
export function select(ctx: CommandContext, [db]: Uint8Array[]): void {
  const v = parseInt64(db, 0, db.length);
  const s = ctx.session;
  if (v === null) {
    return s.reply(ctx.conn, errorBytes("ERR value is not an integer or out of range"));
  }
  s.reply(ctx.conn, v === 0 ? OK_BYTES : errorBytes("ERR DB index is out of range"));
}

/** TIME: seconds and microseconds. */
export function time(ctx: CommandContext): void {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  const out = outFor(ctx.session);
  out.arrayHead(2);
  out.bulkText(String(Math.floor(us / 1e6)));
  out.bulkText(String(us % 1e6));
  ctx.session.reply(ctx.conn, out.bytes());
}
