/**
 * The RESP door's direct path into the KV service: internal methods whose
 * request body is the RESP command itself, exactly as the client sent it,
 * and whose reply body is the RESP reply, rendered in the shard. The IO
 * worker neither encodes nor decodes anything: it hands the command's
 * bytes to the shard's ring and copies the reply's bytes to the socket.
 *
 * - {@link RespMethod.Key2} / {@link RespMethod.Key3}: one command, routed by
 *   its first key (argument 1), reply in RESP2 / RESP3.
 * - {@link RespMethod.Pinned}: a header naming the shard, then commands run
 *   back to back (the parts of a split MGET, a fan-out's part, or a whole
 *   MULTI/EXEC after its WATCH checks). See {@link encodePinnedHeader}.
 *
 * @module
 */
import { KvInternalMethod } from "../protocol/constants.ts";
import { type MessageType, type Method, method } from "../server/service.ts";
import { shardOfKey } from "../kv/route.ts";
import { type ShardStore, StoreFullError } from "../kv/store.ts";
import { RespOut } from "./out.ts";
import {
  E_OOM,
  fingerprint,
  maxStringBytes,
  setMaxStringBytes,
  SHARD_RUNS,
  type ShardCall,
  type ShardRun,
} from "./shard_commands.ts";

/** Method codes of the direct path (internal: the wire v1 port does not serve them). */
export const RespMethod = {
  /** One RESP command routed by its first key; RESP2 reply. */
  Key2: 0x8010,
  /** The same with a RESP3 reply. */
  Key3: 0x8011,
  /** A header naming the shard, then RESP commands. */
  Pinned: 0x8012,
} as const;

/** Bytes of a pinned body's fixed header: shard u16, proto u8, mode u8, commands u32, watches u32. */
export const PINNED_HEADER = 12;
/** Pinned mode: replies of the commands one after another. */
export const MODE_PLAIN = 0;
/** Pinned mode: EXEC; an array of the replies, or a null array when a WATCH check fails. */
export const MODE_EXEC = 1;

/**
 * Writes a pinned body's fixed header at `dst[off]`; each watched key then
 * follows as fingerprint u32, length u32, bytes, and then the commands.
 *
 * @example
 * ```ts
 * import { encodePinnedHeader, MODE_PLAIN, PINNED_HEADER } from "./shard_methods.ts";
 * const head = new Uint8Array(PINNED_HEADER);
 * encodePinnedHeader(head, 0, 1, 2, MODE_PLAIN, 1, 0);
 * ```
 */
export function encodePinnedHeader(
  dst: Uint8Array,
  off: number,
  shard: number,
  proto: number,
  mode: number,
  commands: number,
  watches: number,
): void {
  const v = new DataView(dst.buffer, dst.byteOffset);
  v.setUint16(off, shard, true);
  dst[off + 2] = proto;
  dst[off + 3] = mode;
  v.setUint32(off + 4, commands, true);
  v.setUint32(off + 8, watches, true);
}

/** Argument spans of the command being run, reused (one thread per module instance). */
let spans = new Int32Array(64);
const out = new RespOut();
const call: ShardCall = {
  store: null as unknown as ShardStore,
  b: new Uint8Array(0),
  spans,
  argc: 0,
  out,
  start: 0,
};

/** Where the last {@link parseCommand} ended. */
let parsedEnd = 0;

function readNumber(b: Uint8Array, i: number): number {
  let n = 0;
  for (; b[i] !== 13; i++) n = n * 10 + (b[i] - 0x30);
  parsedEnd = i + 2;
  return n;
}

/**
 * Records the arguments of the multibulk command at `b[at]` (whole and
 * checked by the IO worker) in {@link spans}; returns the count.
 */
function parseCommand(b: Uint8Array, at: number): number {
  const n = readNumber(b, at + 1);
  if (spans.length < 2 * n) spans = call.spans = new Int32Array(2 * n);
  let i = parsedEnd;
  for (let k = 0; k < n; k++) {
    const len = readNumber(b, i + 1);
    i = parsedEnd;
    spans[2 * k] = i;
    spans[2 * k + 1] = i + len;
    i += len + 2;
  }
  parsedEnd = i;
  return n;
}

const RUNS = new Map<number, { name: string; run: ShardRun }[]>();
for (const [name, run] of Object.entries(SHARD_RUNS)) {
  const h = nameHash(new TextEncoder().encode(name), 0, name.length);
  const list = RUNS.get(h) ?? [];
  list.push({ name, run });
  RUNS.set(h, list);
}

/**
 * A hash of `b[start, end)` lower-cased, for looking command names up
 * without making a string.
 *
 * @example
 * ```ts
 * import { nameHash } from "./shard_methods.ts";
 * const get = new TextEncoder().encode("GET");
 * nameHash(get, 0, 3) === nameHash(new TextEncoder().encode("get"), 0, 3); // true
 * ```
 */
export function nameHash(b: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5 ^ (end - start);
  for (let i = start; i < end; i++) {
    const c = b[i];
    h = Math.imul(h ^ (c >= 65 && c <= 90 ? c + 32 : c), 0x01000193);
  }
  // 30 bits: a small integer (Smi) is a cheap Map key; a full uint32 is a
  // heap number, and hashing those showed up in the profile.
  return h & 0x3fffffff;
}

/**
 * True when `b[start, end)` is `name` (lower-case ASCII) ignoring case.
 *
 * @example
 * ```ts
 * import { nameIs } from "./shard_methods.ts";
 * nameIs(new TextEncoder().encode("Get"), 0, 3, "get"); // true
 * ```
 */
export function nameIs(b: Uint8Array, start: number, end: number, name: string): boolean {
  if (end - start !== name.length) return false;
  for (let j = 0; j < name.length; j++) {
    const x = b[start + j];
    if ((x >= 65 && x <= 90 ? x + 32 : x) !== name.charCodeAt(j)) return false;
  }
  return true;
}

/** The command found last: a run of the same command (the usual case) skips the hash. */
let lastRun: { name: string; run: ShardRun } | null = null;

function findRun(b: Uint8Array, start: number, end: number): ShardRun | undefined {
  const last = lastRun;
  if (last !== null && nameIs(b, start, end, last.name)) return last.run;
  const list = RUNS.get(nameHash(b, start, end));
  if (list === undefined) return undefined;
  for (const e of list) {
    if (nameIs(b, start, end, e.name)) {
      lastRun = e;
      return e.run;
    }
  }
  return undefined;
}

/** Runs the command at `b[at]` into {@link out}; returns where it ended. */
function runOne(store: ShardStore, b: Uint8Array, at: number): number {
  const argc = parseCommand(b, at);
  const end = parsedEnd;
  call.store = store;
  call.b = b;
  call.argc = argc;
  call.start = out.len;
  const run = findRun(b, spans[0], spans[1]);
  try {
    if (run === undefined) out.error("ERR unknown command");
    else run(call);
  } catch (e) {
    // One command's failure is its own reply; the commands around it (in
    // EXEC, say) still run, as in Redis.
    out.len = call.start;
    out.tail = null;
    if (e instanceof StoreFullError) out.error(E_OOM);
    else out.error(`ERR ${e instanceof Error ? e.message : String(e)}`);
  }
  return end;
}

/** Moves a reply's tail into the buffer, before another reply follows it. */
function settleTail(): void {
  const tail = out.tail;
  if (tail === null) return;
  out.tail = null;
  out.raw(tail);
  out.ascii("\r\n");
}

/** The reply body writer: the rendered reply, copied once into the frame. */
const respReplyWriter = {
  size: (o: RespOut) => o.size(),
  write: (o: RespOut, dst: Uint8Array, off: number) => o.writeTo(dst, off),
  // The frame never leaves the server (the RESP door forwards only its
  // body), so its checksum would be computed for nobody.
  crc: () => 0,
};

/** The request as its reader finds it: a range, never copied. */
interface RespBody {
  b: Uint8Array;
  start: number;
  end: number;
}
const body: RespBody = { b: new Uint8Array(0), start: 0, end: 0 };
const bodyReader = {
  read(b: Uint8Array, start: number, end: number): RespBody {
    body.b = b;
    body.start = start;
    body.end = end;
    return body;
  },
};

/** What protobufjs would do with these bodies, never asked (the reader takes every body). */
const opaque: MessageType<unknown> = {
  encode: (m) => ({ finish: () => (m as RespOut).bytes() }),
  decode: (bytes) => bytes,
};

/**
 * Shard of a RESP command by its first key (argument 1), or 0 for a
 * command without one.
 *
 * @example
 * ```ts
 * import { respKeyShard } from "./shard_methods.ts";
 * const cmd = new TextEncoder().encode("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
 * respKeyShard(cmd, 4); // 0..3
 * ```
 */
export function respKeyShard(b: Uint8Array, shards: number): number {
  const n = readNumber(b, 1);
  if (n < 2) return 0;
  let i = parsedEnd;
  const nameLen = readNumber(b, i + 1);
  i = parsedEnd + nameLen + 2;
  const keyLen = readNumber(b, i + 1);
  i = parsedEnd;
  return shardOfKey(b, i, i + keyLen, shards);
}

function keyMethod(name: string, proto: number): Method<ShardStore> {
  return method<RespBody, RespOut, ShardStore>({
    name,
    request: opaque as MessageType<RespBody>,
    reply: opaque as MessageType<RespOut>,
    requestReader: bodyReader,
    replyWriter: respReplyWriter,
    internal: true,
    route: respKeyShard,
    handler(req, ctx) {
      if (maxStringBytes !== ctx.maxBody) setMaxStringBytes(ctx.maxBody);
      out.reset(proto);
      runOne(ctx.state, req.b, req.start);
      return out;
    },
  });
}

function runPinned(store: ShardStore, b: Uint8Array, start: number): RespOut {
  const v = new DataView(b.buffer, b.byteOffset);
  out.reset(b[start + 2]);
  const mode = b[start + 3];
  const commands = v.getUint32(start + 4, true);
  const watches = v.getUint32(start + 8, true);
  let at = start + PINNED_HEADER;
  let watchOk = true;
  for (let w = 0; w < watches; w++) {
    const fp = v.getUint32(at, true);
    const len = v.getUint32(at + 4, true);
    if (fingerprint(store, b.subarray(at + 8, at + 8 + len)) !== fp) watchOk = false;
    at += 8 + len;
  }
  if (mode === MODE_EXEC) {
    if (!watchOk) {
      out.nullArray();
      return out;
    }
    out.arrayHead(commands);
  }
  for (let k = 0; k < commands; k++) {
    at = runOne(store, b, at);
    settleTail();
  }
  return out;
}

/**
 * The direct path's methods, to spread into the KV service's method table.
 *
 * @example
 * ```ts
 * import { defineService } from "../server/service.ts";
 * import { ShardStore } from "../kv/store.ts";
 * import { respMethods } from "./shard_methods.ts";
 * defineService({ name: "kv-resp", createState: () => new ShardStore(), methods: { ...respMethods } });
 * ```
 */
export const respMethods: Record<number, Method<ShardStore>> = {
  [RespMethod.Key2]: keyMethod("Resp", 2),
  [RespMethod.Key3]: keyMethod("Resp3", 3),
  [RespMethod.Pinned]: method<RespBody, RespOut, ShardStore>({
    name: "RespPinned",
    request: opaque as MessageType<RespBody>,
    reply: opaque as MessageType<RespOut>,
    requestReader: bodyReader,
    replyWriter: respReplyWriter,
    internal: true,
    route: (b) => b[0] | (b[1] << 8),
    handler(req, ctx) {
      if (maxStringBytes !== ctx.maxBody) setMaxStringBytes(ctx.maxBody);
      return runPinned(ctx.state, req.b, req.start);
    },
  }),
};

// The KV service's own internal codes must not collide with these.
if (Object.values(KvInternalMethod).some((c) => c >= 0x8010 && c <= 0x8012)) {
  throw new Error("Define RESP methods: codes 0x8010-0x8012 are taken");
}
