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
import type { CallSite, Codec } from "../server/codec.ts";
import { CLOSE_AFTER_REPLY } from "../server/codec.ts";
import type { Connection } from "../server/connection.ts";
import {
  COMMANDS,
  findCommand,
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
  okJoin,
  pinnedBody,
  queuedReply,
  sumJoin,
} from "./io_commands.ts";
import { errorBytes } from "./out.ts";
import { Gather, Session } from "./session.ts";
import { MODE_PLAIN, RespMethod } from "./shard_methods.ts";

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

  check(conn: Connection, buf: Uint8Array, start: number, end: number, maxBody: number): number {
    const s = session(conn);
    if (s.quitting) return CLOSE_AFTER_REPLY;
    s.maxBody = maxBody;
    try {
      return checkCommand(buf, start, end, maxBody, s.args);
    } catch (e) {
      if (!(e instanceof RespProtocolError)) throw e;
      s.reply(conn, errorBytes(`ERR Protocol error: ${e.message}`));
      return CLOSE_AFTER_REPLY;
    }
  },

  sizeHint(): number {
    return 0;
  },

  dispatch(conn: Connection, buf: Uint8Array, off: number, total: number, site: CallSite): void {
    const s = session(conn);
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
    if (s.multi && !TRANSACTION_CONTROL.has(name)) {
      if (!command.shard && !command.fanout && !SHARD_STATELESS.has(name)) {
        s.dirty = true;
        return s.reply(conn, errorBytes("ERR Command not allowed inside a transaction"));
      }
      s.queued.push({ bytes: b.slice(base, base + total), name });
      return s.reply(conn, queuedReply());
    }
    if (command.shard) return direct(conn, site, s, name, b, base, total, spans, count);
    command.run!({ conn, site, session: s }, argViews(b, base, spans, count).slice(1));
  },
};

/**
 * Sends a keyed command to the shard of its keys, as is; splits it per
 * shard when its keys span several and it can be split.
 */
function direct(
  conn: Connection,
  site: CallSite,
  s: Session,
  name: string,
  b: Uint8Array,
  base: number,
  total: number,
  spans: Int32Array,
  count: number,
): void {
  const command = COMMANDS[name];
  const shards = site.shards;
  const keys = command.keys!;
  const last = keys[1] < 0 ? count + keys[1] : keys[1];
  const step = keys[2];
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
    site.call(conn, s, code, s.nextSeq(), 0, b, base, base + total, 0, true);
    return;
  }
  if (!command.split) return s.reply(conn, errorBytes(CROSSSLOT));
  split(conn, site, s, name, command.split, b, base, spans, count, step);
}

/** Runs a multi-key command as one sub-command per shard and joins the parts. */
function split(
  conn: Connection,
  site: CallSite,
  s: Session,
  name: string,
  kind: "sum" | "ok" | "mget",
  b: Uint8Array,
  base: number,
  spans: Int32Array,
  count: number,
  step: number,
): void {
  const shards = site.shards;
  const groups = new Map<number, number[]>();
  for (let i = 1; i < count; i += step) {
    const sh = argShard(b, base, spans, i, shards);
    const g = groups.get(sh);
    if (g) g.push(i);
    else groups.set(sh, [i]);
  }
  const order = [...groups.entries()];
  const proto = s.proto;
  const gather = new Gather(s, s.nextSeq(), order.length, (parts) => {
    if (kind === "sum") return sumJoin(parts);
    if (kind === "ok") return okJoin(parts);
    // MGET: put each shard's values back where their keys were asked.
    const values = new Array<Uint8Array>(count - 1);
    order.forEach(([, idx], p) => {
      const items = arrayItems(parts[p]);
      idx.forEach((argIndex, k) => (values[argIndex - 1] = items[k]));
    });
    let size = 0;
    for (const v of values) size += v.length;
    const head = new TextEncoder().encode(`*${values.length}\r\n`);
    const out = new Uint8Array(head.length + size);
    out.set(head);
    let at = head.length;
    for (const v of values) {
      out.set(v, at);
      at += v.length;
    }
    return out;
  });
  order.forEach(([sh, idx], part) => {
    const args: Uint8Array[] = [new TextEncoder().encode(name)];
    for (const i of idx) {
      for (let k = 0; k < step; k++) {
        args.push(b.subarray(base + spans[2 * (i + k)], base + spans[2 * (i + k) + 1]));
      }
    }
    const body = pinnedBody(sh, proto, MODE_PLAIN, [encodeCommand(args)]);
    site.call(conn, gather, RespMethod.Pinned, part, 0, body, 0, body.length, 0, true);
  });
}
