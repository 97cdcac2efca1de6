/**
 * The RESP codec (RESP2, and RESP3 after HELLO 3): Redis's protocol on the
 * same IO workers, task rings and shards as wire v1.
 *
 * The direct path: a string command's bytes go, as they arrived, to the
 * shard of its keys (one ring copy, no encoding), the shard runs it on its
 * store and renders the RESP reply, and the reply's bytes go to the output
 * buffer. Multi-key commands whose keys span shards are split per shard and
 * joined here; everything else runs here (see commands.ts).
 *
 * @module
 */
import type { Codec, Dispatcher } from "../server/io/connection.ts";
import type { RequestBatch } from "../server/service.ts";
import { CLOSE_AFTER_REPLY } from "../server/io/connection.ts";
import type { Connection } from "../server/io/connection.ts";
import type { Command } from "./command_table.ts";
import {
  findCommand,
  respCommandIndex,
  SHARD_STATELESS,
  TRANSACTION_CONTROL,
  unknownCommand,
  wrongArity,
} from "./commands.ts";
import { ArgSpans, checkCommand, RespProtocolError } from "./frame.ts";
import {
  argShard,
  arrayItems,
  encodeCommand,
  intOf,
  OK_BYTES,
  okJoin,
  pinnedBody,
  queuedReply,
  sumJoin,
} from "./io_commands.ts";
import { errorBytes } from "./out.ts";
import { array } from "./reply.ts";
import { REPLY_SLACK } from "../protocol/constants.ts";
import { Gather, Session } from "./session.ts";
import { MODE_PLAIN, RespMethod } from "./shard_methods.ts";
import { shardOfKey } from "../kv/route.ts";
import { respGate } from "./auth_commands.ts";
import { Res } from "../stats/resources.ts";

function session(conn: Connection): Session {
  return conn.codecState as Session;
}

/** Spans of an inline command once encoded as multibulk. */
const inlineSpans = new ArgSpans();

/** The arguments of the command at `b[base]` as views (for commands run here). */
function argViews(b: Uint8Array, base: number, spans: Int32Array, count: number): Uint8Array[] {
  const args = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++) {
    args[i] = b.subarray(base + spans[2 * i], base + spans[2 * i + 1]);
  }
  return args;
}

const CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot";

/** The RESP codec. */
export const respCodec: Codec = {
  name: "RESP",

  open(conn: Connection): void {
    conn.codecState = new Session(conn.info.ioWorker);
  },

  take(conn, buf, start, end, maxBody, dispatcher): number {
    const total = checkResp(conn, buf, start, end, maxBody);
    if (total > 0) {
      // Held while the command runs here, until the channel copies it (see packetBytes).
      conn.packetBytes = total;
      dispatcher.stats.alloc(Res.in_packet, total);
      dispatchResp(dispatcher, conn, session(conn), buf, start, total);
    }
    return total;
  },

  sizeHint(): number {
    return 0;
  },

  /**
   * For the store's prefetch: the second argument (the key, for every
   * keyed command) of each whole multibulk command of the read, added with
   * code {@link RespMethod.Key2} and the key's own range (not a body), as
   * the KV prefetch hook expects for that code.
   */
  collect(buf: Uint8Array, start: number, end: number, _maxBody: number, batch: RequestBatch) {
    batch.reset(buf);
    let at = start;
    while (at < end && buf[at] === 0x2a) {
      let i = at + 1;
      let n = 0;
      while (i < end && buf[i] !== 13) n = n * 10 + buf[i++] - 0x30;
      i += 2;
      let keyStart = -1;
      let keyEnd = -1;
      for (let k = 0; k < n; k++) {
        if (i >= end || buf[i] !== 0x24) return;
        i++;
        let len = 0;
        while (i < end && buf[i] !== 13) len = len * 10 + buf[i++] - 0x30;
        i += 2;
        if (k === 1) {
          keyStart = i;
          keyEnd = i + len;
        }
        i += len + 2;
      }
      if (i > end) return;
      if (keyStart >= 0 && !batch.add(RespMethod.Key2, keyStart, keyEnd)) return;
      at = i;
    }
  },
};

/** The cheap check of the command at `start` (see {@link Codec.take}'s results). */
function checkResp(conn: Connection, buf: Uint8Array, start: number, end: number, max: number) {
  const s = session(conn);
  if (s.quitting) return CLOSE_AFTER_REPLY;
  s.maxBody = max;
  try {
    return checkCommand(buf, start, end, max, s.args);
  } catch (e) {
    if (!(e instanceof RespProtocolError)) throw e;
    s.reply(conn, errorBytes(`ERR Protocol error: ${e.message}`));
    return CLOSE_AFTER_REPLY;
  }
}

/** Runs the whole command `buf[off, off + total)`, whose spans the check recorded. */
function dispatchResp(
  dispatcher: Dispatcher,
  conn: Connection,
  s: Session,
  buf: Uint8Array,
  off: number,
  total: number,
): void {
  let a = s.args;
  if (a.at !== off) return;
  let b = buf;
  let base = off;
  if (a.inline !== null) {
    if (a.inline.length === 0) return; // an empty line
    b = encodeCommand(a.inline);
    base = 0;
    total = checkCommand(b, 0, b.length, b.length + 1, inlineSpans);
    a = inlineSpans;
  }
  const count = a.count;
  if (count === 0) return; // `*0`
  const spans = a.spans;
  const found = findCommand(b, base + spans[0], base + spans[1]);
  // Every command queues exactly one reply, which the metrics pair with this.
  s.track.begin(found === undefined ? 0 : respCommandIndex(found.name), conn.arrivedAt);
  if (found === undefined) {
    if (s.multi) s.dirty = true;
    const args = argViews(b, base, spans, count);
    return s.reply(conn, unknownCommand(args[0], args.slice(1)));
  }
  const { name, command } = found;
  const arity = command.arity;
  if ((arity > 0 && count !== arity) || (arity < 0 && count < -arity)) {
    if (s.multi) s.dirty = true;
    return s.reply(conn, wrongArity(name));
  }
  // The ACL gate (NOAUTH / NOPERM): after the arity check, before the command is queued
  // or run, as Redis orders them.
  if (
    conn.auth?.restricted &&
    !respGate(conn, s, name, argViews(b, base, spans, count).slice(1))
  ) return;
  if (s.multi && !TRANSACTION_CONTROL.has(name)) {
    if (!command.shard && !command.fanout && !SHARD_STATELESS.has(name)) {
      s.dirty = true;
      return s.reply(conn, errorBytes("ERR Command not allowed inside a transaction"));
    }
    // What EXEC sends must fit in one body: that bounds a transaction's memory too.
    if (s.queuedBytes + total > s.maxBody) {
      s.dirty = true;
      return s.reply(
        conn,
        errorBytes(`ERR Transaction over ${s.maxBody} bytes: queue fewer or smaller commands`),
      );
    }
    s.queuedBytes += total;
    s.queued.push({ bytes: b.slice(base, base + total), name });
    return s.reply(conn, queuedReply());
  }
  if (command.shard) {
    return direct(conn, dispatcher, s, name, command, b, base, total, spans, count);
  }
  command.run!({ conn, dispatcher, session: s }, argViews(b, base, spans, count).slice(1));
}

/**
 * Sends a keyed command to the shard of its keys, as is; splits it per
 * shard when its keys span several and it can be split.
 */
function direct(
  conn: Connection,
  dispatcher: Dispatcher,
  s: Session,
  name: string,
  command: Command,
  b: Uint8Array,
  base: number,
  total: number,
  spans: Int32Array,
  count: number,
): void {
  const shards = dispatcher.shards;
  const keys = command.keys!;
  const last = keys[1] < 0 ? count + keys[1] : keys[1];
  const step = keys[2];
  // MSET and MSETNX take pairs: Redis checks this when it runs them.
  if (step === 2 && (count - 1) % 2 !== 0) return s.reply(conn, wrongArity(name));
  let same = true;
  if (shards > 1 && last > keys[0]) {
    const first = argShard(b, base, spans, keys[0], shards);
    for (let i = keys[0] + step; i <= last; i += step) {
      if (argShard(b, base, spans, i, shards) !== first) {
        same = false;
        break;
      }
    }
  }
  if (same) {
    const code = s.proto === 3 ? RespMethod.Key3 : RespMethod.Key2;
    dispatcher.call(conn, s, code, s.nextSeq(), 0, b, base, base + total, 0, true);
    return;
  }
  if (name === "msetnx") return msetnxAcross(conn, dispatcher, s, argViews(b, base, spans, count));
  if (name === "rename" || name === "renamenx") {
    return renameAcross(conn, dispatcher, s, name, argViews(b, base, spans, count));
  }
  if (!command.split) return s.reply(conn, errorBytes(CROSSSLOT));
  split(conn, dispatcher, s, command.split, b, base, spans, count, step);
}

/**
 * Runs `args` (name first; keys from argument 1, each followed by
 * `step - 1` values) as one sub-command per shard; `join` gets the parts in
 * argument order: for each key, its reply item when the parts are arrays.
 */
function splitCall(
  conn: Connection,
  dispatcher: Dispatcher,
  s: Session,
  seq: number,
  args: Uint8Array[],
  step: number,
  join: (parts: Uint8Array[], order: [number, number[]][]) => Uint8Array | null,
): void {
  const shards = dispatcher.shards;
  const groups = new Map<number, number[]>();
  for (let i = 1; i < args.length; i += step) {
    const sh = shardOfKey(args[i], 0, args[i].length, shards);
    const g = groups.get(sh);
    if (g) g.push(i);
    else groups.set(sh, [i]);
  }
  const order = [...groups.entries()];
  const gather = new Gather(s, seq, order.length, (parts) => join(parts, order));
  order.forEach(([sh, idx], part) => {
    const sub: Uint8Array[] = [args[0]];
    for (const i of idx) for (let k = 0; k < step; k++) sub.push(args[i + k]);
    const body = pinnedBody(sh, s.proto, MODE_PLAIN, [encodeCommand(sub)]);
    dispatcher.call(conn, gather, RespMethod.Pinned, part, 0, body, 0, body.length, 0, true);
  });
}

/** MGET's parts put back in the order the keys were asked. */
function mgetJoin(parts: Uint8Array[], order: [number, number[]][], n: number): Uint8Array {
  const values = new Array<Uint8Array>(n);
  order.forEach(([, idx], p) => {
    const items = arrayItems(parts[p]);
    idx.forEach((argIndex, k) => (values[argIndex - 1] = items[k]));
  });
  return array(values);
}

/** A multi-key command whose keys span shards, split per shard. */
function split(
  conn: Connection,
  dispatcher: Dispatcher,
  s: Session,
  kind: "sum" | "ok" | "mget",
  b: Uint8Array,
  base: number,
  spans: Int32Array,
  count: number,
  step: number,
): void {
  const args = argViews(b, base, spans, count);
  splitCall(conn, dispatcher, s, s.nextSeq(), args, step, (parts, order) => {
    if (kind === "sum") return sumJoin(parts);
    if (kind === "ok") return okJoin(parts);
    const joined = mgetJoin(parts, order, count - 1);
    // Each part kept within the reply limit; the whole must too.
    if (joined.length > s.maxBody + REPLY_SLACK) {
      return errorBytes(
        `ERR Encode MGET reply: ${joined.length} bytes is over the ${
          s.maxBody + REPLY_SLACK
        }-byte reply limit`,
      );
    }
    return joined;
  });
}

/**
 * MSETNX of keys on several shards: EXISTS on each, then MSET when none
 * is there. Two steps, so unlike on one shard it is not atomic.
 */
function msetnxAcross(
  conn: Connection,
  dispatcher: Dispatcher,
  s: Session,
  args: Uint8Array[],
): void {
  const seq = s.nextSeq();
  const copies = args.map((a) => a.slice());
  const keys = [new TextEncoder().encode("exists")];
  for (let i = 1; i < copies.length; i += 2) keys.push(copies[i]);
  splitCall(conn, dispatcher, s, seq, keys, 1, (parts) => {
    const exists = sumJoin(parts);
    if (exists[0] === 0x2d) return exists;
    if (intOf(exists) > 0) return encodeInt(0);
    copies[0] = new TextEncoder().encode("mset");
    splitCall(conn, dispatcher, s, seq, copies, 2, (sets) => {
      const ok = okJoin(sets);
      return ok[0] === 0x2d ? ok : encodeInt(1);
    });
    return null;
  });
}

/**
 * RENAME / RENAMENX of keys on two shards: the value and its expiry move in
 * two steps (take from one shard, put on the other), so unlike on one shard
 * another client may see neither key in between.
 */
function renameAcross(
  conn: Connection,
  dispatcher: Dispatcher,
  s: Session,
  name: string,
  args: Uint8Array[],
): void {
  const from = args[1].slice();
  const to = args[2].slice();
  const shards = dispatcher.shards;
  const fromShard = shardOfKey(from, 0, from.length, shards);
  const toShard = shardOfKey(to, 0, to.length, shards);
  const seq = s.nextSeq();
  const send = (
    shard: number,
    command: Uint8Array,
    next: (part: Uint8Array) => Uint8Array | null,
  ) => {
    const gather = new Gather(s, seq, 1, ([part]) => next(part));
    const body = pinnedBody(shard, 2, MODE_PLAIN, [command]);
    dispatcher.call(conn, gather, RespMethod.Pinned, 0, 0, body, 0, body.length, 0, true);
  };
  const move = (): Uint8Array | null => {
    send(fromShard, encodeCommand(["__take", from]), (taken) => {
      if (taken[0] !== 0x2a || taken[1] === 0x2d) return errorBytes("ERR no such key");
      const [value, at] = arrayItems(taken);
      const bytes = value.subarray(value.indexOf(10) + 1, value.length - 2);
      send(toShard, encodeCommand(["__put", to, bytes, String(intOf(at))]), (put) => {
        if (put[0] === 0x2d) return put;
        return name === "rename" ? OK_BYTES : encodeInt(1);
      });
      return null;
    });
    return null;
  };
  if (name === "rename") {
    move();
    return;
  }
  send(toShard, encodeCommand(["exists", to]), (exists) => {
    if (intOf(exists) > 0) {
      // RENAMENX: the source must still exist for a 0 (else "no such key").
      send(
        fromShard,
        encodeCommand(["exists", from]),
        (there) => intOf(there) > 0 ? encodeInt(0) : errorBytes("ERR no such key"),
      );
      return null;
    }
    return move();
  });
}

function encodeInt(n: number): Uint8Array {
  return new TextEncoder().encode(`:${n}\r\n`);
}

/** The module's codec, for IO workers that load it by URL (see `loadCodecs` in server/io/io_worker.ts). */
export default respCodec;
