/**
 * The string-KV commands as they run on a shard: straight on the
 * {@link ShardStore}, reading their arguments where they sit in the request
 * (the receive buffer or a ring) and rendering Redis 7's exact reply into a
 * {@link RespOut}. No protobuf and no object per command on this path.
 *
 * Replies and errors follow Redis 7.0's t_string.c, expire.c and db.c.
 *
 * @module
 */
import {
  CounterError,
  incrBy,
  INT64_MAX,
  INT64_MIN,
  int64Bytes,
  parseInt64,
} from "../kv/counter.ts";
import { type ShardStore, StoreFullError } from "../kv/store.ts";
import { compileGlob } from "./glob.ts";
import type { RespOut } from "./out.ts";

/** One command's arguments and where its reply goes, reused for every command. */
export interface ShardCall {
  /** The shard's store. */
  store: ShardStore;
  /** The memory the arguments are in. */
  b: Uint8Array;
  /** Start and end of argument i at [2i], [2i + 1]; argument 0 is the name. */
  spans: Int32Array;
  /** Number of arguments, name included. */
  argc: number;
  /** Where the reply goes. */
  out: RespOut;
  /** Where this command's reply starts in `out`, so a refused write can take it back. */
  start: number;
}

/** A command body that runs on a shard. */
export type ShardRun = (c: ShardCall) => void;

/**
 * Largest string a command may make (APPEND, SETRANGE): Redis's
 * proto-max-bulk-len is 512 MB; ours is the server's body limit, so that
 * the value can still be read back in one reply.
 */
export let maxStringBytes = 4 * 1024 * 1024;

/**
 * Sets {@link maxStringBytes} (the shard's handler does, from the server's body limit).
 *
 * @example
 * ```ts
 * import { setMaxStringBytes } from "./shard_commands.ts";
 * setMaxStringBytes(1 << 20);
 * ```
 */
export function setMaxStringBytes(n: number): void {
  maxStringBytes = n;
}

export const E_NOT_INT = "ERR value is not an integer or out of range";
export const E_SYNTAX = "ERR syntax error";
const E_OVERFLOW = "ERR increment or decrement would overflow";
const E_NOT_FLOAT = "ERR value is not a valid float";
const E_NAN = "ERR increment would produce NaN or Infinity";
const E_TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
/** What Redis answers a write that needs memory past maxmemory. */
export const E_OOM = "OOM command not allowed when used memory > 'maxmemory'.";

const EMPTY = new Uint8Array(0);

/** Argument `i` as a view. */
export function arg(c: ShardCall, i: number): Uint8Array {
  return c.b.subarray(c.spans[2 * i], c.spans[2 * i + 1]);
}

/** True when argument `i` equals `word` (lower-case ASCII) ignoring case. */
export function argIs(c: ShardCall, i: number, word: string): boolean {
  const start = c.spans[2 * i];
  if (c.spans[2 * i + 1] - start !== word.length) return false;
  const b = c.b;
  for (let j = 0; j < word.length; j++) {
    const x = b[start + j];
    if ((x >= 65 && x <= 90 ? x + 32 : x) !== word.charCodeAt(j)) return false;
  }
  return true;
}

/** Argument `i` as an int64 (number when small), or null. */
export function argInt(c: ShardCall, i: number): number | bigint | null {
  return parseInt64(c.b, c.spans[2 * i], c.spans[2 * i + 1]);
}

const latin1 = new TextDecoder("latin1");
/** Argument `i` as text (for error messages). */
function argText(c: ShardCall, i: number): string {
  return latin1.decode(arg(c, i));
}

const TIME_SECONDS = 1000;

/**
 * An expiry argument as an absolute ms time, or null after replying the
 * error (as Redis's getExpireMillisecondsOrReply words it).
 */
function expiryArg(
  c: ShardCall,
  i: number,
  unitMs: number,
  relative: boolean,
  command: string,
): number | null {
  const v = argInt(c, i);
  if (v === null) {
    c.out.error(E_NOT_INT);
    return null;
  }
  const n = Number(v);
  if (n <= 0 || (unitMs === TIME_SECONDS && n > Number(INT64_MAX) / 1000)) {
    c.out.error(`ERR invalid expire time in '${command}' command`);
    return null;
  }
  let ms = n * unitMs;
  if (relative) ms += Date.now();
  if (ms > Number(INT64_MAX)) {
    c.out.error(`ERR invalid expire time in '${command}' command`);
    return null;
  }
  return ms;
}

const SET_NX = 1;
const SET_XX = 2;
const SET_GET = 4;
const SET_KEEPTTL = 8;
const SET_EX = 16;
const SET_PX = 32;
const SET_EXAT = 64;
const SET_PXAT = 128;
const SET_PERSIST = 256;
const ANY_EXPIRE = SET_EX | SET_PX | SET_EXAT | SET_PXAT;

/** Parsed SET/GETEX options: flags and the argument index of the expiry. */
let optAt = 0;

/**
 * Redis's parseExtendedStringArgumentsOrReply for SET (`forGetex` false)
 * and GETEX; returns the flags, or -1 after replying a syntax error.
 */
function parseSetOptions(c: ShardCall, from: number, forGetex: boolean): number {
  let flags = 0;
  optAt = 0;
  for (let j = from; j < c.argc; j++) {
    const hasNext = j + 1 < c.argc;
    if (!forGetex && argIs(c, j, "nx") && !(flags & SET_XX)) flags |= SET_NX;
    else if (!forGetex && argIs(c, j, "xx") && !(flags & SET_NX)) flags |= SET_XX;
    else if (!forGetex && argIs(c, j, "get")) flags |= SET_GET;
    else if (
      !forGetex && argIs(c, j, "keepttl") && !(flags & (SET_PERSIST | ANY_EXPIRE))
    ) flags |= SET_KEEPTTL;
    else if (forGetex && argIs(c, j, "persist") && !(flags & (ANY_EXPIRE | SET_KEEPTTL))) {
      flags |= SET_PERSIST;
    } else if (hasNext && !(flags & (SET_KEEPTTL | SET_PERSIST | ANY_EXPIRE))) {
      let f = 0;
      if (argIs(c, j, "ex")) f = SET_EX;
      else if (argIs(c, j, "px")) f = SET_PX;
      else if (argIs(c, j, "exat")) f = SET_EXAT;
      else if (argIs(c, j, "pxat")) f = SET_PXAT;
      if (f === 0) {
        c.out.error(E_SYNTAX);
        return -1;
      }
      flags |= f;
      optAt = ++j;
    } else {
      c.out.error(E_SYNTAX);
      return -1;
    }
  }
  return flags;
}

/** The absolute expiry the flags ask for (0 = none), or null after an error reply. */
function expiryOfFlags(c: ShardCall, flags: number, command: string): number | null {
  if (!(flags & ANY_EXPIRE)) return 0;
  const unit = flags & (SET_EX | SET_EXAT) ? TIME_SECONDS : 1;
  return expiryArg(c, optAt, unit, (flags & (SET_EX | SET_PX)) !== 0, command);
}

/** Runs `fn`, answering -OOM when the store is full (nothing was written). */
function writing(c: ShardCall, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof StoreFullError) {
      c.out.len = c.start;
      c.out.tail = null;
      c.out.error(E_OOM);
    } else throw e;
  }
}

function set(c: ShardCall): void {
  const flags = parseSetOptions(c, 3, false);
  if (flags < 0) return;
  const expiresAt = expiryOfFlags(c, flags, "set");
  if (expiresAt === null) return;
  const store = c.store;
  const key = arg(c, 1);
  const old = store.get(key);
  if (flags & SET_GET) {
    if (old === undefined) c.out.nullBulk();
    else c.out.bulk(old);
  }
  if ((flags & SET_NX && old !== undefined) || (flags & SET_XX && old === undefined)) {
    if (!(flags & SET_GET)) c.out.nullBulk();
    return;
  }
  let until = expiresAt;
  if (flags & SET_KEEPTTL && old !== undefined) until = store.expiryOf(key) ?? 0;
  writing(c, () => {
    store.putUntil(key, arg(c, 2), until);
    if (!(flags & SET_GET)) c.out.ok();
  });
}

function getex(c: ShardCall): void {
  const flags = parseSetOptions(c, 2, true);
  if (flags < 0) return;
  const expiresAt = expiryOfFlags(c, flags, "getex");
  if (expiresAt === null) return;
  const key = arg(c, 1);
  const value = c.store.get(key);
  if (value === undefined) return c.out.nullBulk();
  c.out.bulk(value);
  if (flags & ANY_EXPIRE) c.store.setExpiry(key, expiresAt);
  else if (flags & SET_PERSIST) c.store.setExpiry(key, 0);
}

function setWithTtl(c: ShardCall, unitMs: number, command: string): void {
  const at = expiryArg(c, 2, unitMs, true, command);
  if (at === null) return;
  writing(c, () => {
    c.store.putUntil(arg(c, 1), arg(c, 3), at);
    c.out.ok();
  });
}

function incrCommand(c: ShardCall, delta: number | bigint): void {
  writing(c, () => {
    try {
      c.out.int(incrBy(c.store, arg(c, 1), delta, 0));
    } catch (e) {
      if (!(e instanceof CounterError)) throw e;
      c.out.error(e.kind === "overflow" ? E_OVERFLOW : E_NOT_INT);
    }
  });
}

function incrByCommand(c: ShardCall, negate: boolean): void {
  const d = argInt(c, 2);
  if (d === null) return c.out.error(E_NOT_INT);
  if (!negate) return incrCommand(c, d);
  if (typeof d === "bigint" && d === INT64_MIN) return c.out.error("ERR decrement would overflow");
  incrCommand(c, typeof d === "number" ? -d : -d);
}

const FLOAT_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity)$/i;

/** A float the way Redis's string2ld takes it, or null. */
function parseFloatArg(bytes: Uint8Array): number | null {
  if (bytes.length === 0 || bytes.length > 5000) return null;
  const s = latin1.decode(bytes);
  if (!FLOAT_RE.test(s)) return null;
  const lower = s.toLowerCase();
  if (lower.endsWith("inf") || lower.endsWith("infinity")) {
    return lower.startsWith("-") ? -Infinity : Infinity;
  }
  return Number(s);
}

/** A double as INCRBYFLOAT prints it: plain decimal, no exponent, no trailing zeros. */
export function formatFloat(x: number): string {
  let s = String(x);
  if (!s.includes("e")) return s;
  if (Math.abs(x) >= 1) return BigInt(x).toString();
  s = x.toFixed(17);
  return s.replace(/0+$/, "").replace(/\.$/, "");
}

function incrByFloat(c: ShardCall): void {
  const key = arg(c, 1);
  const old = c.store.get(key);
  let current = 0;
  if (old !== undefined) {
    const v = parseFloatArg(old);
    if (v === null) return c.out.error(E_NOT_FLOAT);
    current = v;
  }
  const incr = parseFloatArg(arg(c, 2));
  if (incr === null) return c.out.error(E_NOT_FLOAT);
  const next = current + incr;
  if (!Number.isFinite(next)) return c.out.error(E_NAN);
  const text = formatFloat(next);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  writing(c, () => {
    c.store.putUntil(key, bytes, old === undefined ? 0 : c.store.expiryOf(key) ?? 0);
    c.out.bulk(bytes);
  });
}

function append(c: ShardCall): void {
  const key = arg(c, 1);
  const add = arg(c, 2);
  const old = c.store.get(key);
  if (old === undefined) {
    writing(c, () => {
      c.store.put(key, add, 0);
      c.out.int(add.length);
    });
    return;
  }
  if (old.length + add.length > maxStringBytes) return c.out.error(E_TOO_BIG);
  const next = new Uint8Array(old.length + add.length);
  next.set(old);
  next.set(add, old.length);
  writing(c, () => {
    c.store.putUntil(key, next, c.store.expiryOf(key) ?? 0);
    c.out.int(next.length);
  });
}

function getrange(c: ShardCall): void {
  const a = argInt(c, 2);
  const z = argInt(c, 3);
  if (a === null || z === null) return c.out.error(E_NOT_INT);
  let start = Number(a);
  let end = Number(z);
  const value = c.store.get(arg(c, 1)) ?? EMPTY;
  const len = value.length;
  if (start < 0 && end < 0 && start > end) return c.out.bulk(EMPTY);
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (start > end || len === 0) return c.out.bulk(EMPTY);
  c.out.bulk(value, start, end + 1);
}

function setrange(c: ShardCall): void {
  const o = argInt(c, 2);
  if (o === null) return c.out.error(E_NOT_INT);
  const offset = Number(o);
  if (offset < 0) return c.out.error("ERR offset is out of range");
  const key = arg(c, 1);
  const value = arg(c, 3);
  const old = c.store.get(key);
  if (old === undefined && value.length === 0) return c.out.int(0);
  if (old !== undefined && value.length === 0) return c.out.int(old.length);
  if (offset + value.length > maxStringBytes) return c.out.error(E_TOO_BIG);
  const len = Math.max(old?.length ?? 0, offset + value.length);
  const next = new Uint8Array(len);
  if (old) next.set(old);
  next.set(value, offset);
  writing(c, () => {
    c.store.putUntil(key, next, old === undefined ? 0 : c.store.expiryOf(key) ?? 0);
    c.out.int(len);
  });
}

/** EXPIRE and friends, as Redis 7's expireGenericCommand. */
function expire(c: ShardCall, unitMs: number, relative: boolean, command: string): void {
  let nx = false, xx = false, gt = false, lt = false;
  for (let j = 3; j < c.argc; j++) {
    if (argIs(c, j, "nx")) nx = true;
    else if (argIs(c, j, "xx")) xx = true;
    else if (argIs(c, j, "gt")) gt = true;
    else if (argIs(c, j, "lt")) lt = true;
    else return c.out.error(`ERR Unsupported option ${argText(c, j)}`);
  }
  if (nx && (xx || gt || lt)) {
    return c.out.error("ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if (gt && lt) return c.out.error("ERR GT and LT options at the same time are not compatible");
  const v = argInt(c, 2);
  if (v === null) return c.out.error(E_NOT_INT);
  let when = Number(v);
  const invalid = `ERR invalid expire time in '${command}' command`;
  if (unitMs === TIME_SECONDS) {
    if (Math.abs(when) > Number(INT64_MAX) / 1000) return c.out.error(invalid);
    when *= 1000;
  }
  const now = Date.now();
  if (relative) {
    if (when > Number(INT64_MAX) - now) return c.out.error(invalid);
    when += now;
  }
  const key = arg(c, 1);
  const current = c.store.expiryOf(key);
  if (current === undefined) return c.out.int(0);
  if (nx && current !== 0) return c.out.int(0);
  if (xx && current === 0) return c.out.int(0);
  if (gt && (current === 0 || when <= current)) return c.out.int(0);
  if (lt && current !== 0 && when >= current) return c.out.int(0);
  if (when <= now) c.store.delete(key);
  else c.store.setExpiry(key, when);
  c.out.int(1);
}

function ttl(c: ShardCall, ms: boolean): void {
  const at = c.store.expiryOf(arg(c, 1));
  if (at === undefined) return c.out.int(-2);
  if (at === 0) return c.out.int(-1);
  const left = Math.max(0, at - Date.now());
  c.out.int(ms ? left : Math.floor((left + 500) / 1000));
}

function countKeys(c: ShardCall, fn: (key: Uint8Array) => boolean): void {
  let n = 0;
  for (let i = 1; i < c.argc; i++) if (fn(arg(c, i))) n++;
  c.out.int(n);
}

/** Every live key of the shard matching `pattern`, through the store's scan. */
function eachKey(
  store: ShardStore,
  pattern: Uint8Array | null,
  fn: (key: Uint8Array) => void,
): void {
  const glob = pattern === null ? null : compileGlob(pattern);
  let after: Uint8Array = EMPTY;
  for (;;) {
    const r = store.scan({
      prefix: glob?.prefix ?? EMPTY,
      startAfter: after,
      limit: 1000,
      maxBytes: 1 << 30,
    });
    for (const e of r.entries) if (glob === null || glob.matches(e.key)) fn(e.key);
    if (!r.more || r.entries.length === 0) return;
    after = r.entries[r.entries.length - 1].key;
  }
}

/** Internal `__scan AFTER COUNT [MATCH pattern]`: up to COUNT keys after AFTER; the last examined key first. */
function shardScan(c: ShardCall): void {
  const after = arg(c, 1);
  const count = Number(argInt(c, 2) ?? 10);
  const pattern = c.argc > 4 ? arg(c, 4) : null;
  const glob = pattern === null ? null : compileGlob(pattern);
  const r = c.store.scan({
    prefix: glob?.prefix ?? EMPTY,
    startAfter: after,
    limit: Math.max(1, Math.min(count, 1000)),
    maxBytes: 1 << 20,
  });
  const keys = glob === null || glob.prefixOnly
    ? r.entries.map((e) => e.key)
    : r.entries.map((e) => e.key).filter((k) => glob.matches(k));
  // [more, last examined key, keys...]
  c.out.arrayHead(2 + keys.length);
  c.out.int(r.more && r.entries.length > 0 ? 1 : 0);
  if (r.entries.length > 0) c.out.bulk(r.entries[r.entries.length - 1].key);
  else c.out.bulk(EMPTY);
  for (const k of keys) c.out.bulk(k);
}

/**
 * Fingerprint of a key's state for WATCH: 0 when missing, else a hash of
 * the value's CRC, length and expiry (never 0).
 */
export function fingerprint(store: ShardStore, key: Uint8Array): number {
  const hit = store.lookup(key);
  if (hit === undefined) return 0;
  const at = store.expiryOf(key) ?? 0;
  let h = Math.imul(hit.crc ^ 0x9e3779b9, 0x85ebca6b) ^ hit.value.length;
  h = Math.imul(h ^ (at % 0x100000000), 0xc2b2ae35) ^ Math.floor(at / 0x100000000);
  return (h >>> 0) || 1;
}

/** The commands that run on a shard, by lower-case name. */
export const SHARD_RUNS: Record<string, ShardRun> = {
  get(c) {
    const v = c.store.get(arg(c, 1));
    if (v === undefined) c.out.nullBulk();
    else c.out.bulkTail(v);
  },
  set,
  setnx(c) {
    const key = arg(c, 1);
    if (c.store.get(key) !== undefined) return c.out.int(0);
    writing(c, () => {
      c.store.put(key, arg(c, 2), 0);
      c.out.int(1);
    });
  },
  setex: (c) => setWithTtl(c, TIME_SECONDS, "setex"),
  psetex: (c) => setWithTtl(c, 1, "psetex"),
  getset(c) {
    const key = arg(c, 1);
    const old = c.store.get(key);
    if (old === undefined) c.out.nullBulk();
    else c.out.bulk(old);
    writing(c, () => c.store.put(key, arg(c, 2), 0));
  },
  getdel(c) {
    const key = arg(c, 1);
    const old = c.store.get(key);
    if (old === undefined) return c.out.nullBulk();
    c.out.bulk(old);
    c.store.delete(key);
  },
  getex,
  mget(c) {
    c.out.arrayHead(c.argc - 1);
    for (let i = 1; i < c.argc; i++) {
      const v = c.store.get(arg(c, i));
      if (v === undefined) c.out.nullBulk();
      else c.out.bulk(v);
    }
  },
  mset(c) {
    if (c.argc % 2 === 0) return c.out.error("ERR wrong number of arguments for 'mset' command");
    writing(c, () => {
      for (let i = 1; i < c.argc; i += 2) c.store.put(arg(c, i), arg(c, i + 1), 0);
      c.out.ok();
    });
  },
  msetnx(c) {
    if (c.argc % 2 === 0) return c.out.error("ERR wrong number of arguments for 'msetnx' command");
    for (let i = 1; i < c.argc; i += 2) {
      if (c.store.get(arg(c, i)) !== undefined) return c.out.int(0);
    }
    writing(c, () => {
      for (let i = 1; i < c.argc; i += 2) c.store.put(arg(c, i), arg(c, i + 1), 0);
      c.out.int(1);
    });
  },
  append,
  strlen(c) {
    c.out.int(c.store.get(arg(c, 1))?.length ?? 0);
  },
  getrange,
  substr: getrange,
  setrange,
  incr: (c) => incrCommand(c, 1),
  decr: (c) => incrCommand(c, -1),
  incrby: (c) => incrByCommand(c, false),
  decrby: (c) => incrByCommand(c, true),
  incrbyfloat: incrByFloat,
  del: (c) => countKeys(c, (k) => c.store.delete(k)),
  unlink: (c) => countKeys(c, (k) => c.store.delete(k)),
  exists: (c) => countKeys(c, (k) => c.store.get(k) !== undefined),
  touch: (c) => countKeys(c, (k) => c.store.get(k) !== undefined),
  type(c) {
    c.out.simple(c.store.get(arg(c, 1)) === undefined ? "none" : "string");
  },
  expire: (c) => expire(c, TIME_SECONDS, true, "expire"),
  pexpire: (c) => expire(c, 1, true, "pexpire"),
  expireat: (c) => expire(c, TIME_SECONDS, false, "expireat"),
  pexpireat: (c) => expire(c, 1, false, "pexpireat"),
  ttl: (c) => ttl(c, false),
  pttl: (c) => ttl(c, true),
  expiretime(c) {
    const at = c.store.expiryOf(arg(c, 1));
    c.out.int(at === undefined ? -2 : at === 0 ? -1 : Math.floor(at / 1000));
  },
  pexpiretime(c) {
    const at = c.store.expiryOf(arg(c, 1));
    c.out.int(at === undefined ? -2 : at === 0 ? -1 : at);
  },
  persist(c) {
    const key = arg(c, 1);
    const at = c.store.expiryOf(key);
    if (at === undefined || at === 0) return c.out.int(0);
    c.store.setExpiry(key, 0);
    c.out.int(1);
  },
  rename(c) {
    const from = arg(c, 1);
    const value = c.store.get(from);
    if (value === undefined) return c.out.error("ERR no such key");
    const at = c.store.expiryOf(from) ?? 0;
    const copy = value.slice();
    const to = arg(c, 2);
    writing(c, () => {
      c.store.delete(from);
      c.store.putUntil(to, copy, at);
      c.out.ok();
    });
  },
  renamenx(c) {
    const from = arg(c, 1);
    const value = c.store.get(from);
    if (value === undefined) return c.out.error("ERR no such key");
    const to = arg(c, 2);
    if (c.store.get(to) !== undefined) return c.out.int(0);
    const at = c.store.expiryOf(from) ?? 0;
    const copy = value.slice();
    writing(c, () => {
      c.store.delete(from);
      c.store.putUntil(to, copy, at);
      c.out.int(1);
    });
  },
  // Keyless commands run on every shard; the IO worker joins the parts.
  dbsize(c) {
    c.out.int(c.store.size);
  },
  flushdb(c) {
    c.store.clear();
    c.out.ok();
  },
  flushall(c) {
    c.store.clear();
    c.out.ok();
  },
  keys(c) {
    const keys: Uint8Array[] = [];
    eachKey(c.store, arg(c, 1), (k) => keys.push(k));
    c.out.arrayHead(keys.length);
    for (const k of keys) c.out.bulk(k);
  },
  randomkey(c) {
    const k = c.store.randomKey();
    if (k === undefined) c.out.nullBulk();
    else c.out.bulk(k);
  },
  ping(c) {
    if (c.argc > 1) c.out.bulk(arg(c, 1));
    else c.out.simple("PONG");
  },
  echo(c) {
    c.out.bulk(arg(c, 1));
  },
  // Internal: not reachable by clients (the IO worker refuses names starting with "__").
  __scan: shardScan,
  __take(c) {
    // RENAME across shards, first half: the value and expiry, and the key is gone.
    const key = arg(c, 1);
    const value = c.store.get(key);
    if (value === undefined) return c.out.nullArray();
    c.out.arrayHead(2);
    c.out.bulk(value);
    c.out.int(c.store.expiryOf(key) ?? 0);
    c.store.delete(key);
  },
  __put(c) {
    // RENAME across shards, second half.
    writing(c, () => {
      c.store.putUntil(arg(c, 1), arg(c, 2), Number(argInt(c, 3) ?? 0));
      c.out.ok();
    });
  },
  __fp(c) {
    c.out.int(fingerprint(c.store, arg(c, 1)));
  },
  __keyspace(c) {
    // keys, keys with a TTL, used memory, expired, evicted
    const s = c.store;
    c.out.arrayHead(5);
    c.out.int(s.size);
    c.out.int(s.keysWithTtl);
    c.out.int(s.usedMemory);
    c.out.int(s.expiredKeys);
    c.out.int(s.evictedKeys);
  },
};

/** For KEYS and SCAN replies, so that a missing key is told apart. */
export { int64Bytes };
