/**
 * Hostile input: a seeded fuzzer throws random and mutated frames (bit
 * flips, truncations, huge lengths, random codes and flags, undecodable
 * bodies, garbage) at a live server over many connections at once, for a
 * bounded time, while a well-behaved canary connection checks that its own
 * Puts and Gets are undisturbed. Afterwards fresh connections must
 * round-trip, and the resource table must be back to where it was before
 * the first connection.
 *
 * Replay a run with `EVKV_FUZZ_SEED=<seed from the test name>`; run longer
 * with `EVKV_FUZZ_MS=<total ms over all layouts>` (default 2500).
 *
 * @module
 */
import assert from "node:assert/strict";
import { DEFAULT_MAX_BODY, KvMethod, pb, type Server, type StatsSnapshot, Status } from "../mod.ts";
import { crc32 } from "../src/protocol/crc32.ts";
import { Flags, REPLY_SLACK } from "../src/protocol/constants.ts";
import { TRANSIENT_KINDS } from "../src/stats/resources.ts";
import { writeHeader, writeU32 } from "../src/protocol/frame.ts";
import {
  LAYOUTS,
  mulberry32,
  RawClient,
  type RawFrame,
  sleep,
  text,
  utf8,
  withServer,
} from "./support.ts";

// --- configuration ---------------------------------------------------------

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: use the defaults
  }
}

function envInt(name: string, fallback: () => number, max: number): number {
  const s = env(name);
  if (s === undefined || s === "") return fallback();
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new RangeError(`${name} must be an integer from 0 to ${max}, got ${JSON.stringify(s)}`);
  }
  return n;
}

const SEED = envInt(
  "EVKV_FUZZ_SEED",
  () => crypto.getRandomValues(new Uint32Array(1))[0],
  2 ** 32 - 1,
);
const TOTAL_MS = envInt("EVKV_FUZZ_MS", () => 2500, 24 * 3600 * 1000);
const SEED_HEX = `0x${SEED.toString(16).padStart(8, "0")}`;
/** Fuzz connections open at a time. */
const SLOTS = 16;
/** How long a fuzz peer waits for the server to close after its FIN. */
const FIN_WAIT_MS = 3000;
/** How long the resource table may take to settle once every client is gone. */
const SETTLE_MS = 3000;

// --- seeded randomness -----------------------------------------------------

/** Seeded choices over {@link mulberry32}: small, fast, and good enough to pick bytes. */
class Rng {
  readonly u32: () => number;

  constructor(seed: number) {
    this.u32 = mulberry32(seed);
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor((this.u32() / 2 ** 32) * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)];
  }

  /** One of `choices`, with probability proportional to its weight. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of choices) total += w;
    let x = (this.u32() / 2 ** 32) * total;
    for (const [w, v] of choices) {
      if ((x -= w) < 0) return v;
    }
    return choices[choices.length - 1][1];
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let v = this.u32();
      for (let j = i; j < i + 4 && j < n; j++, v >>>= 8) out[j] = v;
    }
    return out;
  }

  /** An independent generator, so that each connection's bytes do not depend on timing. */
  fork(): Rng {
    return new Rng(this.u32() ^ 0x5bd1e995);
  }
}

// --- frame generators ------------------------------------------------------

const METHODS = [
  KvMethod.Ping,
  KvMethod.Get,
  KvMethod.Put,
  KvMethod.Delete,
  KvMethod.Scan,
  KvMethod.Stats,
] as const;

/** The parts of a request frame that a generator chooses. */
interface Req {
  code: number;
  flags: number;
  requestId: number;
  timeoutMs: number;
  body: Uint8Array;
}

const crcOf = (body: Uint8Array) => (body.length === 0 ? 0 : crc32(body));

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const hex = (b: Uint8Array, max = 64) =>
  Array.from(b.subarray(0, max), (x) => x.toString(16).padStart(2, "0")).join(" ") +
  (b.length > max ? ` ... (${b.length} bytes)` : "");

/** A frame with any header values, `body` and a trailer (the body's CRC unless given). */
function rawFrame(r: Req, opts: { bodyLen?: number; crc?: number; status?: number } = {}) {
  const out = new Uint8Array(24 + r.body.length + 4);
  writeHeader(
    out,
    0,
    r.flags,
    r.code,
    r.requestId,
    opts.status ?? 0,
    opts.bodyLen ?? r.body.length,
    r.timeoutMs,
  );
  out.set(r.body, 24);
  writeU32(out, 24 + r.body.length, opts.crc ?? crcOf(r.body));
  return out;
}

/** Filled with one byte, so that such keys repeat instead of piling up in the store. */
const filled = (n: number, byte: number) => new Uint8Array(n).fill(byte);

/** Fuzz keys never start with "canary/" or "fresh/", so they cannot touch the checked keys. */
function fuzzKey(rng: Rng): Uint8Array {
  return rng.weighted<() => Uint8Array>([
    [1, () => new Uint8Array(0)],
    [1, () => filled(1024, rng.int(0x61, 0x64))],
    [1, () => filled(1025, rng.int(0x61, 0x64))],
    [0.5, () => filled(rng.int(1026, 5000), 0x7a)],
    [1, () => Uint8Array.of(rng.int(0, 3))],
    [1, () => concat([Uint8Array.of(0xff), rng.bytes(rng.int(0, 15))])],
    [8, () => utf8(`fz/${rng.int(0, 63)}`)],
  ])();
}

function fuzzValue(rng: Rng): Uint8Array {
  return rng.weighted<() => Uint8Array>([
    [3, () => new Uint8Array(0)],
    [8, () => rng.bytes(rng.int(1, 64))],
    [2, () => rng.bytes(rng.int(65, 4096))],
    [0.3, () => filled(rng.int(4097, 32 * 1024), 0x76)],
  ])();
}

function fuzzTimeout(rng: Rng): number {
  return rng.weighted<() => number>([
    [12, () => 0],
    [1, () => rng.int(1, 3)],
    [1, () => 60_000],
    [1, () => rng.u32()],
  ])();
}

/** A well-formed request of a random method with random (possibly invalid) fields. */
function validRequest(rng: Rng): Req {
  const code = rng.pick(METHODS);
  let body: Uint8Array;
  switch (code) {
    case KvMethod.Ping:
      body = pb.PingRequest.encode({ payload: fuzzValue(rng) }).finish();
      break;
    case KvMethod.Get:
      body = pb.GetRequest.encode({ key: fuzzKey(rng) }).finish();
      break;
    case KvMethod.Put:
      body = pb.PutRequest.encode({
        key: fuzzKey(rng),
        value: fuzzValue(rng),
        ttlMs: rng.pick([0, 0, 0, 1, rng.int(1, 50), 2 ** 32 - 1]),
      }).finish();
      break;
    case KvMethod.Delete:
      body = pb.DeleteRequest.encode({ key: fuzzKey(rng) }).finish();
      break;
    case KvMethod.Scan:
      body = pb.ScanRequest.encode({
        prefix: rng.chance(0.5) ? utf8("fz/") : rng.chance(0.5) ? new Uint8Array(0) : fuzzKey(rng),
        startAfter: rng.chance(0.7) ? new Uint8Array(0) : fuzzKey(rng),
        limit: rng.pick([0, 1, 2, rng.int(1, 10), 1000, 1001, 2 ** 32 - 1]),
      }).finish();
      break;
    default:
      body = pb.StatsRequest.encode({}).finish();
  }
  return {
    code,
    flags: rng.chance(0.2) ? Flags.ONEWAY : 0,
    requestId: rng.u32(),
    timeoutMs: fuzzTimeout(rng),
    body,
  };
}

/** Bytes of a protobuf varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** Bodies that stress the protobuf decoder: bad lengths, bad wire types, deep groups. */
function protobufEdge(rng: Rng, maxBody: number): Uint8Array {
  return rng.weighted<() => Uint8Array>([
    [1, () => Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f)], // field 1, length 2^32-1
    [1, () => Uint8Array.of(0x0a, 0x05, 1, 2)], // length past the end
    [1, () => Uint8Array.of(0x12, 0x80, 0x80, 0x80, 0x80, 0x10, 1)], // length overflows u32
    [1, () => Uint8Array.of(0x08, ...filled(11, 0xff))], // varint too long
    [1, () => Uint8Array.of(0x18, ...filled(9, 0xff), 0x01)], // ttl: 64-bit varint
    [1, () => Uint8Array.of(0x0b, 0x0c)], // empty group for field 1
    [1, () => Uint8Array.of(0x0b)], // group never ends
    [1, () => Uint8Array.of(0x0c)], // end group without a start
    [1, () => Uint8Array.of(0x0f)], // wire type 7
    [1, () => Uint8Array.of(0x00)], // field number 0
    [1, () => Uint8Array.of(0xfa, 0xff, 0xff, 0xff, 0x0f, 0x00)], // field 2^29-1
    [1, () => Uint8Array.of(0x0a, 0x00)], // explicit empty key
    [1, () => Uint8Array.of(0x0a, 0x01, 0x41, 0x0a, 0x00)], // key twice, last one empty
    [1, () => Uint8Array.of(0x0a, 0x81, 0x00, 0x41)], // non-minimal length varint
    [1, () => Uint8Array.of(0x78, 0x05, 0x0a, 0x02, 0x66, 0x7a)], // unknown field, then a key
    [1, () => Uint8Array.of(0x0d, 1, 2, 3, 4, 0x11, ...filled(8, 9))], // fixed32 and fixed64
    [1, () => Uint8Array.of(0x0a, ...varint(1024), ...filled(1024, 0x6b))], // 1024-byte key
    [1, () => Uint8Array.of(0x0a, ...varint(1025), ...filled(1025, 0x6b))], // 1025-byte key
    [1, () => {
      // Deeply nested groups: a recursive decoder may run out of stack.
      const depth = Math.min(rng.int(100, 50_000), Math.floor(maxBody / 2) - 1);
      const out = new Uint8Array(depth * 2);
      out.fill(0x0b, 0, depth);
      out.fill(0x0c, depth);
      return out;
    }],
    [1, () => {
      // Deeply nested length-delimited fields in an unknown field.
      const depth = rng.int(10, 200);
      let inner = Uint8Array.of(0x08, 0x01);
      for (let i = 0; i < depth; i++) {
        inner = Uint8Array.of(0x7a, ...varint(inner.length), ...inner);
      }
      return inner;
    }],
  ])();
}

/** The largest body a Ping can have and still encode to exactly `n` bytes. */
function pingBodyOfSize(n: number, fill: number): Uint8Array {
  for (let v = 1; v <= 5; v++) {
    const len = n - 1 - v;
    if (len >= 0 && varint(len).length === v) {
      return pb.PingRequest.encode({ payload: filled(len, fill) }).finish();
    }
  }
  throw new Error(`No Ping body encodes to ${n} bytes`);
}

/** Context shared by the generators of one server. */
interface GenContext {
  maxBody: number;
  /** Body sizes up to this may be sent whole (big frames cost time). */
  bigCap: number;
  /** Puts sent with a body within a few bytes of the limit (a past bug: see the regressions). */
  nearLimitPuts: number;
}

type Mutation = (rng: Rng, g: GenContext) => Uint8Array;

/** What the fuzzer sends, by name, with weights. */
const MUTATIONS: readonly (readonly [number, string, Mutation])[] = [
  [4, "valid", (rng) => rawFrame(validRequest(rng))],
  [5, "bit flips", (rng) => {
    const f = rawFrame(validRequest(rng));
    const bodyEnd = f.length - 4;
    for (let i = rng.int(1, 4); i > 0; i--) {
      const at = rng.weighted<() => number>([
        [3, () => rng.int(0, 23)],
        [2, () => (bodyEnd > 24 ? rng.int(24, bodyEnd - 1) : rng.int(0, f.length - 1))],
        [1, () => rng.int(bodyEnd, f.length - 1)],
        [1, () => rng.int(0, f.length - 1)],
      ])();
      f[at] ^= 1 << rng.int(0, 7);
    }
    return f;
  }],
  [3, "truncated", (rng) => {
    const f = rawFrame(validRequest(rng));
    return f.subarray(0, rng.int(0, f.length - 1));
  }],
  [2, "huge body_len", (rng, g) => {
    const r = validRequest(rng);
    const len = rng.pick([
      0xffffffff,
      0x80000000,
      g.maxBody + 1,
      g.maxBody + rng.int(2, 1 << 20),
      g.maxBody,
      g.maxBody - 1,
      g.maxBody - rng.int(2, 1000),
      r.body.length + rng.int(1, 100),
    ]);
    const header = new Uint8Array(24);
    writeHeader(header, 0, r.flags, r.code, r.requestId, 0, len, r.timeoutMs);
    if (len <= g.bigCap && rng.chance(0.5)) {
      // The whole declared body follows, with a CRC that may or may not match.
      const body = rng.chance(0.5) ? filled(len, 0) : rng.bytes(len);
      const trailer = new Uint8Array(4);
      writeU32(trailer, 0, rng.chance(0.5) ? crcOf(body) : rng.u32());
      return concat([header, body, trailer]);
    }
    // Only part of the body follows (maybe none): the rest never comes.
    return concat([header, rng.bytes(rng.int(0, Math.min(len, 4096)))]);
  }],
  [3, "random code", (rng) => {
    const r = validRequest(rng);
    r.code = rng.pick([0, 7, 99, 0xffff, 0x0100 | r.code, rng.int(0, 0xffff)]);
    return rawFrame(r);
  }],
  [3, "random flags, status", (rng) => {
    const r = validRequest(rng);
    r.flags = rng.int(0, 255);
    return rawFrame(r, { status: rng.chance(0.5) ? 0 : rng.u32() });
  }],
  [4, "random body, good CRC", (rng) => {
    const r = validRequest(rng);
    r.body = rng.bytes(rng.weighted([[4, rng.int(1, 64)], [1, rng.int(65, 2048)]]));
    return rawFrame(r);
  }],
  [3, "protobuf edge", (rng, g) => {
    const r = validRequest(rng);
    r.body = protobufEdge(rng, g.maxBody);
    return rawFrame(r);
  }],
  [3, "bad CRC", (rng) => {
    const r = validRequest(rng);
    if (rng.chance(0.2)) r.body = new Uint8Array(0);
    const good = crcOf(r.body);
    const crc = rng.pick([0, good ^ 1, good ^ 0x80000000, rng.u32(), crc32(r.body)]);
    return rawFrame(r, { crc: crc === good ? good ^ 0xffffffff : crc });
  }],
  [1, "garbage", (rng) => rng.bytes(rng.int(1, 512))],
  [1, "bad preamble", (rng) => {
    const f = rawFrame(validRequest(rng));
    return rng.weighted<() => Uint8Array>([
      [2, () => {
        f[4] = rng.pick([0, 2, 0xff]);
        return f;
      }],
      [2, () => {
        f[rng.int(0, 3)] ^= 1 << rng.int(0, 7);
        return f;
      }],
      [1, () => utf8("GET / HTTP/1.1\r\nHost: evkv\r\n\r\n")],
      [1, () => f.subarray(0, rng.int(1, 4)).map((b) => b ^ 0x20)],
    ])();
  }],
  [2, "pipelined burst", (rng) => {
    const n = rng.int(10, 80);
    const parts: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const r = validRequest(rng);
      if (r.body.length > 2048) r.body = r.body.subarray(0, 16); // may break the body: fine
      parts.push(rawFrame(r));
    }
    return concat(parts);
  }],
  [1, "flood", (rng) => {
    // Far more requests than a connection may have in flight: parsing pauses.
    const n = rng.int(200, 3000);
    const r = validRequest(rng);
    r.code = rng.pick([KvMethod.Ping, KvMethod.Get, KvMethod.Stats, 99]);
    r.body = r.code === KvMethod.Get
      ? pb.GetRequest.encode({ key: utf8("fz/1") }).finish()
      : r.body.subarray(0, 0);
    r.flags = rng.chance(0.3) ? Flags.ONEWAY : 0;
    const one = rawFrame(r);
    const out = new Uint8Array(one.length * n);
    for (let i = 0; i < n; i++) {
      out.set(one, i * one.length);
      writeU32(out, i * one.length + 8, r.requestId + i);
    }
    return out;
  }],
  [0.3, "big replies", (rng, g) => {
    // Replies far larger than the requests, maybe never read: output backs up.
    const payload = filled(Math.min(g.maxBody - 8, rng.int(16, 60) * 1024), 0x71);
    const body = pb.PingRequest.encode({ payload }).finish();
    const parts: Uint8Array[] = [];
    for (let i = rng.int(2, 40); i > 0; i--) {
      parts.push(
        rawFrame({ code: KvMethod.Ping, flags: 0, requestId: rng.u32(), timeoutMs: 0, body }),
      );
    }
    return concat(parts);
  }],
  [0.5, "body at the limit", (rng, g) => {
    const size = rng.pick([g.maxBody, g.maxBody - 1, g.maxBody + 1]);
    if (size > g.bigCap + 1) {
      return rawFrame({ ...validRequest(rng), code: KvMethod.Ping, body: rng.bytes(8) });
    }
    if (rng.chance(0.5)) {
      return rawFrame({
        ...validRequest(rng),
        code: KvMethod.Ping,
        body: pingBodyOfSize(size, 0x70),
      });
    }
    // A Put whose body is the limit: its key may be long, so a Scan reply
    // holding it is larger than the Put was.
    const key = rng.chance(0.5) ? filled(1024, 0x62) : utf8(`fz/${rng.int(0, 63)}`);
    const overhead = 1 + varint(key.length).length + key.length + 1;
    let vlen = size - overhead - 3;
    while (overhead + varint(vlen).length + vlen < size) vlen++;
    while (overhead + varint(vlen).length + vlen > size) vlen--;
    const body = pb.PutRequest.encode({ key, value: filled(vlen, 0x56) }).finish();
    g.nearLimitPuts++;
    return rawFrame({ ...validRequest(rng), code: KvMethod.Put, flags: 0, body });
  }],
];

function hostilePiece(rng: Rng, g: GenContext): { kind: string; bytes: Uint8Array } {
  const [, kind, make] = rng.weighted(MUTATIONS.map((m) => [m[0], m] as const));
  return { kind, bytes: make(rng, g) };
}

// --- fuzz connections ------------------------------------------------------

/** What the whole run saw; failures are collected here and asserted at the end. */
interface FuzzContext extends GenContext {
  server: Server;
  sessions: number;
  bytesSent: number;
  repliesSeen: number;
  netErrors: number;
  sent: Map<string, number>;
  /** Failures to connect: the server must keep accepting. */
  connectFailures: string[];
  /** Errors that are not network errors: bugs in this test or a broken runtime. */
  unexpected: string[];
  /** Replies that break the wire spec, and connections the server never closed. */
  violations: string[];
  /** INTERNAL replies seen, by message (digits replaced by N). */
  internal: Map<string, number>;
}

/** Records a violation; the first few are kept verbatim, the rest only counted. */
function violation(ctx: FuzzContext, what: string): void {
  if (ctx.violations.length < 10) ctx.violations.push(what);
  else if (ctx.violations.length === 10) ctx.violations.push("... and more");
}

function isNetError(e: unknown): boolean {
  return Object.values(Deno.errors).some((c) => e instanceof c);
}

function noteError(ctx: FuzzContext, e: unknown): void {
  if (isNetError(e)) ctx.netErrors++;
  else if (ctx.unexpected.length < 10) {
    ctx.unexpected.push(e instanceof Error ? e.stack ?? e.message : String(e));
  }
}

/** Resolves with `{ value }`, or with null after `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<{ value: T } | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((r) => timer = setTimeout(() => r(null), ms));
  const wrapped = p.then((value) => ({ value }));
  wrapped.catch(() => {}); // a rejection after the timeout must not go unhandled
  try {
    return await Promise.race([wrapped, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The header fields of a reply that {@link checkedSession} matches to its requests. */
interface ReplyHead {
  code: number;
  requestId: number;
  status: number;
}

/** Checks that what the server sends is a stream of well-formed reply frames. */
class ReplyChecker {
  #buf: Uint8Array = new Uint8Array(0);
  #bad = false;

  constructor(readonly ctx: FuzzContext, readonly onReply?: (reply: ReplyHead) => void) {}

  push(chunk: Uint8Array): void {
    if (this.#bad) return;
    this.#buf = this.#buf.length === 0 ? chunk.slice() : concat([this.#buf, chunk]);
    let off = 0;
    while (this.#buf.length - off >= 24) {
      const b = this.#buf.subarray(off);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const fail = (why: string) => {
        this.#bad = true;
        violation(this.ctx, `reply: ${why}: ${hex(b)}`);
      };
      if (dv.getUint32(0, true) !== 0x564b5645 || b[4] !== 1) return fail("bad magic or version");
      const flags = b[5];
      const status = dv.getUint32(12, true);
      const bodyLen = dv.getUint32(16, true);
      if (!(flags & Flags.REPLY)) return fail("REPLY flag not set");
      if (status > Status.PERMISSION_DENIED) return fail(`status ${status} is not in the spec`);
      if ((status !== 0) !== ((flags & Flags.ERROR) !== 0)) {
        return fail("ERROR flag does not match the status");
      }
      if (dv.getUint32(20, true) !== 0) return fail("timeout_ms is not 0 in a reply");
      if (bodyLen > this.ctx.maxBody + REPLY_SLACK) {
        return fail(`body_len ${bodyLen} over the reply limit`);
      }
      if (b.length < bodyLen + 28) break;
      const body = b.subarray(24, 24 + bodyLen);
      if (dv.getUint32(24 + bodyLen, true) !== crcOf(body)) return fail("CRC does not match");
      if (status !== 0) {
        let err: { code: number; message: string };
        try {
          err = pb.Error.decode(body);
        } catch (e) {
          return fail(`error body does not decode: ${e}`);
        }
        if (err.code !== status) return fail(`Error.code ${err.code} != status ${status}`);
        if (status === Status.INTERNAL) {
          const m = err.message.replace(/\d+/g, "N");
          this.ctx.internal.set(m, (this.ctx.internal.get(m) ?? 0) + 1);
        }
      }
      this.ctx.repliesSeen++;
      this.onReply?.({ code: dv.getUint16(6, true), requestId: dv.getUint32(8, true), status });
      off += bodyLen + 28;
    }
    this.#buf = this.#buf.slice(off);
  }
}

/** One hostile connection. Never throws; everything it sees goes into the context. */
class Peer {
  readonly #conn: Deno.TcpConn;
  readonly #ctx: FuzzContext;
  readonly #replies: ReplyChecker;
  /** The read in progress: at most one at a time. */
  #reading: Promise<Uint8Array | null> | null = null;
  /** Operations that may still be pending when the connection closes. */
  readonly #ops = new Set<Promise<unknown>>();
  /** False once the server closed, a write failed, or we closed. */
  open = true;
  eof = false;
  /** True once a write failed (the server closed or reset the connection). */
  writeFailed = false;
  /** How the stream ended: "end of stream" or the read error's name. */
  ended: string | undefined;
  #closed = false;

  constructor(conn: Deno.TcpConn, ctx: FuzzContext, onReply?: (reply: ReplyHead) => void) {
    this.#conn = conn;
    this.#ctx = ctx;
    this.#replies = new ReplyChecker(ctx, onReply);
  }

  /** Remembers `p` until it settles, so that close() can wait for it. */
  #track<T>(p: Promise<T>): Promise<T> {
    const settled = p.then(() => {}, () => {});
    this.#ops.add(settled);
    settled.then(() => this.#ops.delete(settled));
    return p;
  }

  /** Writes all of `bytes` in random-sized pieces; false if it could not. */
  async write(bytes: Uint8Array, rng: Rng, until: number): Promise<boolean> {
    const mode = rng.weighted([[5, "whole"], [3, "chunks"], [1, "tiny"]] as const);
    let off = 0;
    let naps = 0;
    for (let i = 0; i < 1000 && off < bytes.length && this.open; i++) {
      let n = bytes.length - off;
      if (i < 200 && mode === "chunks") n = Math.min(n, rng.int(1, Math.max(1, bytes.length >> 2)));
      if (i < 200 && mode === "tiny") n = Math.min(n, rng.int(1, 3));
      if (!await this.#writeAll(bytes.subarray(off, off + n), until)) return false;
      off += n;
      if (mode !== "whole" && naps < 5 && rng.chance(0.1)) {
        naps++;
        await sleep(rng.int(0, 2));
      }
    }
    this.#ctx.bytesSent += off;
    return off === bytes.length;
  }

  async #writeAll(b: Uint8Array, until: number): Promise<boolean> {
    let off = 0;
    for (let i = 0; off < b.length && i < 100_000; i++) {
      const left = until - Date.now();
      if (left <= 0 || !this.open) return false;
      const p = this.#track(
        this.#conn.write(b.subarray(off)).catch((e: unknown) => {
          noteError(this.#ctx, e);
          return -1;
        }),
      );
      const r = await within(p, left);
      if (r === null) {
        // The server stopped reading (we do not read its replies): give up.
        await this.close();
        return false;
      }
      if (r.value < 0) {
        this.open = false;
        this.writeFailed = true;
        return false;
      }
      off += r.value;
    }
    return off === b.length;
  }

  #read(size: number): Promise<Uint8Array | null> {
    if (!this.#reading) {
      const buf = new Uint8Array(size);
      this.#reading = this.#track(
        this.#conn.read(buf).then(
          (n) => {
            if (n === null) this.ended ??= "end of stream";
            return n === null ? null : buf.subarray(0, n);
          },
          (e: unknown) => {
            noteError(this.#ctx, e);
            this.ended ??= e instanceof Error ? e.name : String(e);
            return null;
          },
        ),
      );
    }
    return this.#reading;
  }

  /** Reads with random buffer sizes for up to `ms`; false once the stream ended. */
  async readFor(ms: number, rng: Rng): Promise<boolean> {
    const end = Date.now() + ms;
    for (let i = 0; i < 256 && !this.eof; i++) {
      const left = end - Date.now();
      if (left <= 0) break;
      const size = rng.pick([1, 7, 24, 100, 4096, 65536]);
      const r = await within(this.#read(size), left);
      if (r === null) break;
      this.#reading = null;
      if (r.value === null) {
        this.eof = true;
        this.open = false;
      } else {
        this.#replies.push(r.value);
      }
    }
    return !this.eof;
  }

  /** Half-closes and expects the server to finish its replies and close. */
  async finish(rng: Rng, label: string): Promise<void> {
    if (!await this.awaitClose(rng, true)) {
      violation(
        this.#ctx,
        `${label}: the server did not close the connection within ${FIN_WAIT_MS} ms of our FIN`,
      );
    }
  }

  /**
   * Reads until the server closes (end of stream or reset), after sending
   * our FIN if `halfClose`; false if it is still open after FIN_WAIT_MS.
   */
  async awaitClose(rng: Rng, halfClose: boolean): Promise<boolean> {
    if (halfClose) {
      try {
        await this.#track(this.#conn.closeWrite());
      } catch (e) {
        noteError(this.#ctx, e);
        return true; // already reset by the server
      }
    }
    const end = Date.now() + FIN_WAIT_MS;
    for (let i = 0; i < 1000 && !this.eof && Date.now() < end; i++) {
      await this.readFor(end - Date.now(), rng);
    }
    return this.eof || this.#closed;
  }

  async close(): Promise<void> {
    this.open = false;
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch (e) {
      noteError(this.#ctx, e);
    }
    // Let pending reads and writes fail now, so no op outlives the test.
    await Promise.all([...this.#ops]);
  }
}

/** Connects a fuzz session and counts it; null (recorded) when the connect fails. */
async function openSession(ctx: FuzzContext): Promise<Deno.TcpConn | null> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: ctx.server.addr.port });
    ctx.sessions++;
    return conn;
  } catch (e) {
    ctx.connectFailures.push(String(e));
    return null;
  }
}

/** One hostile connection's life: a few writes, some reads, and an ending. */
async function session(ctx: FuzzContext, rng: Rng, until: number, label: string): Promise<void> {
  const conn = await openSession(ctx);
  if (!conn) return;
  const peer = new Peer(conn, ctx);
  try {
    if (rng.chance(0.5)) conn.setNoDelay(true);
    const steps = rng.int(1, 8);
    for (let s = 0; s < steps && peer.open && Date.now() < until; s++) {
      const parts: Uint8Array[] = [];
      for (let i = rng.chance(0.2) ? rng.int(2, 20) : rng.int(1, 3); i > 0; i--) {
        const { kind, bytes } = hostilePiece(rng, ctx);
        ctx.sent.set(kind, (ctx.sent.get(kind) ?? 0) + 1);
        parts.push(bytes);
      }
      if (!await peer.write(concat(parts), rng, until)) break;
      const r = rng.int(0, 3);
      if (r > 0) await peer.readFor(rng.pick([0, 1, 5, 20]), rng);
    }
    if (peer.open) {
      const ending = rng.int(0, 9);
      if (ending < 4) {
        // Abrupt close, maybe with replies unread.
      } else if (ending < 7) {
        await peer.readFor(rng.int(0, 20), rng);
      } else {
        await peer.finish(rng, label);
      }
    }
  } finally {
    await peer.close();
  }
}

/** What a request of a {@link checkedSession} must get back. */
interface Expected {
  code: number;
  oneway: boolean;
  /** The status it must have; undefined when several are right. */
  status?: number;
  replies: number;
}

/**
 * A connection whose stream stays aligned, so replies can be matched to
 * requests: hostile frames that keep their length (bad CRC, unknown code,
 * random flags, undecodable bodies), then an ending that the spec defines:
 * our FIN (every request answered, then close), a body over the limit
 * (every request answered, TOO_LARGE, then close), or a bad preamble
 * (closed, no reply for it).
 */
async function checkedSession(
  ctx: FuzzContext,
  rng: Rng,
  until: number,
  label: string,
): Promise<void> {
  const conn = await openSession(ctx);
  if (!conn) return;
  const expected = new Map<number, Expected>();
  const problems: string[] = [];
  const peer = new Peer(conn, ctx, (reply) => {
    const e = expected.get(reply.requestId);
    if (!e) return void problems.push(`a reply to id ${reply.requestId}, which we never sent`);
    e.replies++;
    const what = `id ${reply.requestId} (code ${e.code})`;
    if (e.oneway) problems.push(`a reply to ONEWAY request ${what}`);
    if (e.replies > 1) problems.push(`${e.replies} replies to ${what}`);
    if (reply.code !== e.code) problems.push(`${what}: reply has code ${reply.code}`);
    if (e.status !== undefined && reply.status !== e.status) {
      problems.push(`${what}: status ${reply.status}, expected ${e.status}`);
    }
  });
  try {
    let id = rng.u32();
    const parts: Uint8Array[] = [];
    const add = (r: Req, status: number | undefined, opts: { crc?: number } = {}) => {
      r.requestId = id = (id + 1) >>> 0;
      expected.set(id, {
        code: r.code & 0xffff,
        oneway: (r.flags & Flags.ONEWAY) !== 0,
        status,
        replies: 0,
      });
      parts.push(rawFrame(r, opts));
    };
    for (let i = rng.int(1, 30); i > 0; i--) {
      const r = validRequest(rng);
      if (r.body.length > 4096) r.body = r.body.subarray(0, 64);
      r.timeoutMs = 0;
      const kind = rng.int(0, 6);
      if (kind === 0) {
        add(r, undefined);
      } else if (kind === 1) {
        add(r, Status.CRC_MISMATCH, { crc: crcOf(r.body) ^ (1 << rng.int(0, 31)) });
      } else if (kind === 2 && r.body.length > 0) {
        const body = r.body.slice();
        body[rng.int(0, body.length - 1)] ^= 1 << rng.int(0, 7);
        add(r, Status.CRC_MISMATCH, { crc: crcOf(r.body) });
        parts[parts.length - 1].set(body, 24);
      } else if (kind === 3) {
        r.code = rng.pick([0, 99, 0xffff, 0x0100 | r.code]);
        add(r, Status.UNKNOWN_METHOD);
      } else if (kind === 4) {
        r.flags = rng.int(0, 255);
        add(r, undefined);
      } else if (kind === 5) {
        r.body = protobufEdge(rng, Math.min(ctx.maxBody, 4096));
        add(r, undefined);
      } else {
        r.body = rng.bytes(rng.int(1, 64));
        add(r, undefined);
      }
    }
    const ending = rng.weighted([[3, "fin"], [1, "too large"], [1, "bad preamble"]] as const);
    let badId = -1;
    if (ending === "too large") {
      const r = validRequest(rng);
      const header = new Uint8Array(24);
      id = (id + 1) >>> 0;
      writeHeader(header, 0, r.flags, r.code, id, 0, rng.pick([ctx.maxBody + 1, 0xffffffff]), 0);
      expected.set(id, {
        code: r.code,
        oneway: (r.flags & Flags.ONEWAY) !== 0,
        status: Status.TOO_LARGE,
        replies: 0,
      });
      parts.push(header);
    } else if (ending === "bad preamble") {
      const f = rawFrame(validRequest(rng));
      badId = id = (id + 1) >>> 0;
      writeU32(f, 8, badId);
      f[rng.int(0, 4)] ^= 1 << rng.int(0, 7);
      expected.set(badId, { code: -1, oneway: false, replies: 0 });
      parts.push(f);
    }
    if (!await peer.write(concat(parts), rng, until)) {
      // Either the fuzz is over, or the server closed while we wrote: only
      // a bad preamble (the last thing written) allows that.
      if (peer.writeFailed && ending !== "bad preamble") {
        violation(ctx, `${label}: the server closed the connection before the ${ending}`);
      }
      return;
    }
    const closed = await peer.awaitClose(rng, ending === "fin");
    if (!closed) problems.push(`still open ${FIN_WAIT_MS} ms after the ${ending}`);
    if (ending !== "bad preamble") {
      for (const [rid, e] of expected) {
        if (e.oneway || e.replies > 0) continue;
        problems.push(`no reply to id ${rid} (code ${e.code})`);
      }
    } else if (expected.get(badId)!.replies > 0) {
      problems.push("a reply to the frame with the bad preamble");
    }
    if (problems.length > 0) {
      const replied = [...expected.values()].filter((e) => e.replies > 0).length;
      violation(
        ctx,
        `${label}, ending ${ending} (${expected.size} requests, ${replied} answered, then ` +
          `${peer.ended}): ${problems.slice(0, 3).join("; ")}`,
      );
    }
  } finally {
    await peer.close();
  }
}

// --- the canary ------------------------------------------------------------

interface CanaryResult {
  rounds: number;
  /** The slowest round, in ms. */
  slowestMs: number;
  /** OVERLOADED replies, each retried. */
  overloaded: number;
  error?: unknown;
}

/** How many OVERLOADED replies in a row the canary accepts for one round. */
const CANARY_RETRIES = 100;

/**
 * Put/Get round trips with checked values, all through the fuzz. Every
 * reply must be OK, except OVERLOADED, which the spec makes a transient
 * "retry later" for the server's shared queues: the canary retries it, as a
 * well-behaved client would, and it is counted. Every Get must return the
 * last value this connection put for that key (or nothing if it has none).
 */
async function canary(server: Server, rng: Rng, until: number, out: CanaryResult): Promise<void> {
  let c: RawClient | null = null;
  try {
    c = await RawClient.connect(server);
    const base = `canary/${rng.u32().toString(16)}/`;
    const written = new Map<string, Uint8Array>();
    let id = 0;
    for (let i = 0; i < 100_000 && (Date.now() < until || i < 3); i++) {
      const roundAt = Date.now();
      const key = `${base}${rng.int(0, 7)}`;
      const value = rng.chance(0.1) ? new Uint8Array(0) : rng.bytes(rng.int(1, 300));
      const check = rng.pick([...written.keys(), key]);
      for (let attempt = 0;; attempt++) {
        const putId = ++id;
        const getId = ++id;
        const put = c.frame(
          KvMethod.Put,
          pb.PutRequest.encode({ key: utf8(key), value }).finish(),
          { id: putId },
        );
        const get = c.frame(
          KvMethod.Get,
          pb.GetRequest.encode({ key: utf8(check) }).finish(),
          { id: getId },
        );
        let replies: (RawFrame | null)[];
        if (i % 2 === 0) {
          await c.send(put);
          const first = await c.read();
          await c.send(get);
          replies = [first, await c.read()];
        } else {
          await c.send(concat([put, get])); // pipelined: the Get must see the Put
          replies = [await c.read(), await c.read()];
        }
        const byId = new Map(replies.map((r) => {
          assert.ok(r, "the server closed the canary connection");
          return [r.header.requestId, r];
        }));
        const p = byId.get(putId);
        const g = byId.get(getId);
        assert.ok(p && g, `canary round ${i}: replies ${[...byId.keys()]}`);
        if (p.header.status === Status.OVERLOADED) {
          out.overloaded++;
        } else {
          assert.equal(p.header.status, Status.OK, `canary Put: ${text(p.body)}`);
          assert.equal(p.header.flags, Flags.REPLY);
          written.set(key, value);
        }
        if (g.header.status === Status.OVERLOADED) {
          out.overloaded++;
        } else {
          assert.equal(g.header.status, Status.OK, `canary Get: ${text(g.body)}`);
          const reply = pb.GetReply.decode(g.body);
          const want = written.get(check);
          assert.equal(reply.found, want !== undefined, `canary Get ${check}: found`);
          if (want) assert.deepEqual(reply.value, want, `canary Get ${check}: wrong value`);
        }
        if (p.header.status === Status.OK && g.header.status === Status.OK) break;
        assert.ok(attempt < CANARY_RETRIES, `canary: OVERLOADED ${CANARY_RETRIES} times in a row`);
        await sleep(attempt < 10 ? 1 : 10);
      }
      out.rounds++;
      out.slowestMs = Math.max(out.slowestMs, Date.now() - roundAt);
    }
  } catch (e) {
    out.error = e;
  } finally {
    c?.close();
  }
}

// --- checks after the fuzz -------------------------------------------------

/** A fresh connection must round-trip Ping, Put, Get and Scan. */
async function freshRoundTrip(server: Server, n: number): Promise<void> {
  using c = await RawClient.connect(server);
  const payload = utf8(`ping ${n}`);
  const ping = await c.call(KvMethod.Ping, pb.PingRequest.encode({ payload }).finish());
  assert.equal(ping.header.status, Status.OK, text(ping.body));
  assert.deepEqual(pb.PingReply.decode(ping.body).payload, payload);
  const prefix = `fresh/${n}/`;
  const keys = [`${prefix}a`, `${prefix}b`];
  for (const key of keys) {
    const put = await c.call(
      KvMethod.Put,
      pb.PutRequest.encode({ key: utf8(key), value: utf8(`v ${key}`) }).finish(),
    );
    assert.equal(put.header.status, Status.OK, text(put.body));
    const get = await c.call(KvMethod.Get, pb.GetRequest.encode({ key: utf8(key) }).finish());
    assert.equal(get.header.status, Status.OK, text(get.body));
    const g = pb.GetReply.decode(get.body);
    assert.equal(g.found, true);
    assert.equal(text(g.value), `v ${key}`);
  }
  const scan = await c.call(
    KvMethod.Scan,
    pb.ScanRequest.encode({ prefix: utf8(prefix) }).finish(),
  );
  assert.equal(scan.header.status, Status.OK, text(scan.body));
  const s = pb.ScanReply.decode(scan.body);
  assert.deepEqual(
    s.entries.map((e) => [text(e.key), text(e.value)]),
    keys.map((k) => [k, `v ${k}`]),
  );
  assert.equal(s.more, false);
}

/** Kinds whose held count or bytes differ from `base`. */
function unsettled(now: StatsSnapshot, base: StatsSnapshot): string[] {
  return TRANSIENT_KINDS.filter((k) => {
    const r = now.resources[k];
    const b = base.resources[k];
    return r.alloc - r.free !== b.alloc - b.free || r.heldBytes !== b.heldBytes;
  });
}

// --- the test --------------------------------------------------------------

/**
 * Known server bug, reproduced by the regression test at the end of this
 * file: a Put whose body is within a few bytes of the body limit stores an
 * entry that no Scan reply can hold, so every Scan that reaches it fails
 * with INTERNAL. The fuzz tolerates exactly this message (digits as N) while
 * the bug stands; remove it once the regression test passes.
 */

/** Layouts and body limits: each mode and each accept path gets both limits. */
const RUNS = LAYOUTS.map((layout, i) => ({
  layout,
  maxBody: i === 0 || i === 3 ? 64 * 1024 : DEFAULT_MAX_BODY,
}));
const BUDGET_MS = Math.max(50, Math.floor(TOTAL_MS / RUNS.length));

for (const { layout, maxBody } of RUNS) {
  const limit = maxBody === DEFAULT_MAX_BODY ? "4 MiB" : `${maxBody / 1024} KiB`;
  Deno.test(
    `fuzz: ${layout.name}, maxBody ${limit} (seed ${SEED_HEX}, ${BUDGET_MS} ms)`,
    async () => {
      const say = (msg: string) => `[EVKV_FUZZ_SEED=${SEED_HEX}] ${msg}`;
      await withServer({ ...layout.options, maxBody }, async (server) => {
        const base = server.stats();
        const master = new Rng(SEED);
        const ctx: FuzzContext = {
          server,
          maxBody,
          bigCap: Math.min(maxBody, 256 * 1024),
          nearLimitPuts: 0,
          sessions: 0,
          bytesSent: 0,
          repliesSeen: 0,
          netErrors: 0,
          sent: new Map(),
          connectFailures: [],
          unexpected: [],
          violations: [],
          internal: new Map(),
        };
        const started = Date.now();
        const until = started + BUDGET_MS;
        const canaryResult: CanaryResult = { rounds: 0, slowestMs: 0, overloaded: 0 };
        const canaryRun = canary(server, master.fork(), until, canaryResult);
        await Promise.all(Array.from({ length: SLOTS }, async (_, slot) => {
          const rng = master.fork();
          for (let n = 0; n < 10_000 && Date.now() < until; n++) {
            const label = `slot ${slot} session ${n}`;
            if (rng.chance(0.25)) await checkedSession(ctx, rng, until, label);
            else await session(ctx, rng, until, label);
          }
        }));
        await canaryRun;
        const fuzzMs = Date.now() - started;

        assert.deepEqual(ctx.unexpected, [], say("unexpected errors in fuzz connections"));
        assert.deepEqual(ctx.connectFailures, [], say("the server refused connections"));
        assert.deepEqual(ctx.violations, [], say("the server broke the wire spec"));
        if (canaryResult.error) {
          const e = canaryResult.error;
          throw new Error(
            say(`the canary was disturbed after ${canaryResult.rounds} rounds: ${e}`),
            { cause: e },
          );
        }
        assert.ok(canaryResult.rounds >= 3, say(`canary made ${canaryResult.rounds} rounds`));

        // The server is still up: fresh connections (spread over the IO
        // workers by the kernel or the main thread) round-trip.
        const checkAt = Date.now();
        for (let n = 0; n < 6; n++) await freshRoundTrip(server, n);
        const freshMs = Date.now() - checkAt;

        // Every connection is gone: the table goes back to where it started.
        const settleBy = Date.now() + SETTLE_MS;
        let snap = server.stats();
        for (
          let i = 0;
          i < 1000 && unsettled(snap, base).length > 0 && Date.now() < settleBy;
          i++
        ) {
          await sleep(20);
          snap = server.stats();
        }
        const settleMs = Date.now() - checkAt - freshMs;
        assert.deepEqual(
          unsettled(snap, base),
          [],
          say(`resources still held ${SETTLE_MS} ms after the last client left:\n${server.dump()}`),
        );
        for (const kind of TRANSIENT_KINDS) {
          // Kinds held for the server's lifetime (the idle timer) were checked against `base`.
          if (base.resources[kind].alloc !== base.resources[kind].free) continue;
          const r = snap.resources[kind];
          assert.equal(r.alloc, r.free, say(`${kind}: alloc ${r.alloc} != free ${r.free}`));
          assert.equal(r.heldBytes, 0, say(`${kind}: ${r.heldBytes} bytes held`));
        }

        // The server really saw hostile input, so this cannot pass vacuously.
        const c = snap.counters;
        const hostile = c.bad_preambles + c["errors.CRC_MISMATCH"] + c["errors.BAD_REQUEST"] +
          c["errors.UNKNOWN_METHOD"] + c["errors.TOO_LARGE"];
        const summary = [
          `${ctx.sessions} connections, ${ctx.bytesSent} bytes sent, ` +
          `${ctx.repliesSeen} replies checked in ${fuzzMs} ms`,
          `canary ${canaryResult.rounds} rounds (slowest ${canaryResult.slowestMs} ms, ` +
          `${canaryResult.overloaded} OVERLOADED retried)`,
          `fresh checks ${freshMs} ms, settled in ${settleMs} ms`,
          `server: requests ${c.requests}, bad_preambles ${c.bad_preambles}, ` +
          ["CRC_MISMATCH", "BAD_REQUEST", "UNKNOWN_METHOD", "TOO_LARGE", "DEADLINE_EXCEEDED"]
            .concat(["OVERLOADED", "INTERNAL"])
            .map((n) => `${n} ${c[`errors.${n}` as keyof typeof c]}`).join(", "),
          `${ctx.nearLimitPuts} Puts at the limit`,
        ].join("; ");
        console.log(`seed ${SEED_HEX}: ${summary}`);
        console.log(`  sent: ${[...ctx.sent].map(([k, n]) => `${k} ${n}`).join(", ")}`);
        assert.ok(hostile > 0, say(`no hostile input reached the server: ${summary}`));
        assert.ok(ctx.sessions >= SLOTS, say(`only ${ctx.sessions} fuzz connections`));
        if (BUDGET_MS >= 400) {
          // With time for a few hundred connections, every kind shows up.
          for (
            const name of [
              "bad_preambles",
              "errors.CRC_MISMATCH",
              "errors.BAD_REQUEST",
              "errors.UNKNOWN_METHOD",
              "errors.TOO_LARGE",
            ] as const
          ) {
            assert.ok(c[name] > 0, say(`${name} is 0: ${summary}`));
          }
        }
        // Hostile input is the client's fault: it must never fail a handler.
        const internal = JSON.stringify([...ctx.internal]);
        assert.equal(c["errors.INTERNAL"], 0, say(`INTERNAL replies ${internal}: ${summary}`));
      });
    },
  );
}

// --- regressions found by the fuzzer ----------------------------------------

// Scan once answered INTERNAL "Encode Scan reply: 65542 bytes is over the
// 65536-byte body limit": replies now have REPLY_SLACK above the limit.
Deno.test({
  name: "regression (fuzz): an entry whose Put body is at the body limit can still be scanned",
  async fn() {
    for (const maxBody of [64 * 1024, DEFAULT_MAX_BODY]) {
      await withServer({ ...LAYOUTS[0].options, maxBody }, async (server) => {
        using c = await RawClient.connect(server);
        // PutRequest { key: "k", value: "v" x (maxBody - 7) }: exactly maxBody bytes,
        // 0a 01 6b 12 <varint maxBody - 7> 76 76 ...
        const key = utf8("k");
        const valueLen = maxBody - 3 - 1 - varint(maxBody - 7).length;
        const body = pb.PutRequest.encode({ key, value: filled(valueLen, 0x76) }).finish();
        assert.equal(body.length, maxBody);
        const put = await c.call(KvMethod.Put, body);
        const scan = await c.call(KvMethod.Scan, pb.ScanRequest.encode({ prefix: key }).finish());
        const why = scan.header.status === Status.OK ? "" : pb.Error.decode(scan.body).message;
        if (put.header.status === Status.OK) {
          // The server took the entry: Scan must be able to return it.
          assert.equal(scan.header.status, Status.OK, `maxBody ${maxBody}: Scan: ${why}`);
          const entries = pb.ScanReply.decode(scan.body).entries;
          assert.deepEqual(entries.map((e) => [text(e.key), e.value?.length ?? 0]), [[
            "k",
            valueLen,
          ]]);
        } else {
          // Or it refused the Put as the client's fault, and the store is empty.
          assert.notEqual(put.header.status, Status.INTERNAL);
          assert.equal(scan.header.status, Status.OK, `maxBody ${maxBody}: Scan: ${why}`);
          assert.equal(pb.ScanReply.decode(scan.body).entries.length, 0);
        }
        // A Scan of the whole store also reaches the entry.
        const all = await c.call(KvMethod.Scan, pb.ScanRequest.encode({}).finish());
        assert.equal(all.header.status, Status.OK, `maxBody ${maxBody}: Scan of everything`);
      });
    }
  },
});

/** Reads replies until the server closes; each as "request_id:status", sorted. */
async function repliesUntilClose(c: RawClient): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < 100; i++) {
    const f = await c.read(3000);
    if (!f) break;
    got.push(`${f.header.requestId}:${f.header.status}`);
  }
  return got.sort();
}

for (const layout of LAYOUTS) {
  // With accept "main" this once failed every time: the client's FIN ended
  // a transferred `conn.readable`, and Deno closes the socket at the end of
  // that stream. The main thread now keeps the socket and reads it itself.
  Deno.test({
    name: `regression (fuzz): ${layout.name}: requests in flight when the client half-closes ` +
      `are still answered`,
    async fn() {
      await withServer(layout.options, async (server) => {
        using c = await RawClient.connect(server);
        // Ping { payload: 01 02 03 }, request_id 7, then shutdown(SHUT_WR):
        // 45 56 4b 56 01 00 01 00 07 00 00 00 00 00 00 00 05 00 00 00 00 00 00 00
        // 0a 03 01 02 03 <crc32 LE>
        const body = pb.PingRequest.encode({ payload: Uint8Array.of(1, 2, 3) }).finish();
        await c.send(c.frame(KvMethod.Ping, body, { id: 7 }));
        await c.conn.closeWrite();
        const reply = await c.read(3000);
        assert.ok(reply, "the server closed the connection without answering request 7");
        assert.equal(reply.header.requestId, 7);
        assert.equal(reply.header.status, Status.OK);
        assert.deepEqual(pb.PingReply.decode(reply.body).payload, Uint8Array.of(1, 2, 3));
        await c.expectClosed();
      });
    },
  });

  // With accept "main" this once failed one trial in 10 to 100: a write on
  // a handed-over stream resolves once the chunk is queued to the main
  // thread, and close() aborted the writable (dropping queued chunks). Close
  // now lets the writer finish before the socket closes.
  Deno.test({
    name: `regression (fuzz): ${layout.name}: replies owed when TOO_LARGE closes the ` +
      `connection are all sent`,
    async fn() {
      await withServer(layout.options, async (server) => {
        for (let trial = 0; trial < 300; trial++) {
          using c = await RawClient.connect(server);
          // Put { key: "k", value: "v" } with request_id 7, then, in the same write,
          // a Get header with request_id 8 and body_len 0xffffffff:
          // 45 56 4b 56 01 00 02 00 08 00 00 00 00 00 00 00 ff ff ff ff 00 00 00 00
          const put = c.frame(
            KvMethod.Put,
            pb.PutRequest.encode({ key: utf8("k"), value: utf8("v") }).finish(),
            { id: 7 },
          );
          const header = new Uint8Array(24);
          writeHeader(header, 0, 0, KvMethod.Get, 8, 0, 0xffffffff, 0);
          await c.send(concat([put, header]));
          assert.deepEqual(
            await repliesUntilClose(c),
            [`7:${Status.OK}`, `8:${Status.TOO_LARGE}`],
            `trial ${trial}`,
          );
        }
      });
    },
  });
}
