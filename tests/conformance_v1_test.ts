/**
 * Wire v1 conformance for `Incr` (8) and `Auth` (7), written from the wire
 * spec alone, as an independent client would write it: its own protobuf
 * varints (64-bit exact, through BigInt), its own frames and zlib's CRC-32.
 * Nothing here imports the server's encoders, so a shared mistake between the
 * server and its own client library cannot hide.
 */
import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { RawClient, utf8, withServer } from "./support.ts";

const PING = 1;
const GET = 2;
const PUT = 3;
const AUTH = 7;
const INCR = 8;
const OK = 0;
const BAD_REQUEST = 1;
const UNAUTHENTICATED = 10;
const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/** An unsigned varint of `n` (a non-negative BigInt below 2^64). */
function varint(n: bigint): number[] {
  const out: number[] = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n) b |= 0x80;
    out.push(b);
  } while (n > 0n);
  return out;
}

const zigzag = (n: bigint) => n >= 0n ? n << 1n : ((-n) << 1n) - 1n;
const unzigzag = (n: bigint) => (n & 1n) === 0n ? n >> 1n : -((n + 1n) >> 1n);

/** One length-delimited field. */
const bytesField = (field: number, b: Uint8Array) => [
  ...varint(BigInt(field << 3 | 2)),
  ...varint(BigInt(b.length)),
  ...b,
];
const varintField = (field: number, n: bigint) => [...varint(BigInt(field << 3)), ...varint(n)];

function incrBody(key: string, delta: bigint, ttlMs = 0): Uint8Array {
  const parts = [...bytesField(1, utf8(key))];
  if (delta !== 0n) parts.push(...varintField(2, zigzag(delta)));
  if (ttlMs !== 0) parts.push(...varintField(3, BigInt(ttlMs)));
  return new Uint8Array(parts);
}

function authBody(user: string, password: string): Uint8Array {
  const parts: number[] = [];
  if (user !== "") parts.push(...bytesField(1, utf8(user)));
  if (password !== "") parts.push(...bytesField(2, utf8(password)));
  return new Uint8Array(parts);
}

/** The fields of a protobuf message: field number to its last varint or bytes. */
function fields(body: Uint8Array): Map<number, bigint | Uint8Array> {
  const out = new Map<number, bigint | Uint8Array>();
  let at = 0;
  const readVarint = () => {
    let n = 0n;
    let shift = 0n;
    for (;;) {
      const b = body[at++];
      n |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return n;
      shift += 7n;
    }
  };
  while (at < body.length) {
    const tag = Number(readVarint());
    if ((tag & 7) === 0) out.set(tag >> 3, readVarint());
    else if ((tag & 7) === 2) {
      const len = Number(readVarint());
      out.set(tag >> 3, body.slice(at, at + len));
      at += len;
    } else throw new Error(`Decode reply: wire type ${tag & 7} is not expected here`);
  }
  return out;
}

/** Sends one frame built by hand and returns the reply's status and body. */
async function call(
  c: RawClient,
  code: number,
  body: Uint8Array,
): Promise<{ status: number; flags: number; body: Uint8Array }> {
  const id = c.id();
  const frame = new Uint8Array(24 + body.length + 4);
  const v = new DataView(frame.buffer);
  frame.set([0x45, 0x56, 0x4b, 0x56, 1, 0], 0);
  v.setUint16(6, code, true);
  v.setUint32(8, id, true);
  v.setUint32(16, body.length, true);
  frame.set(body, 24);
  v.setUint32(24 + body.length, crc32(body) >>> 0, true);
  await c.send(frame);
  const reply = await c.read();
  assert.ok(reply, "the server closed the connection instead of replying");
  assert.equal(reply.header.requestId, id);
  assert.equal(reply.header.code, code);
  return { status: reply.header.status, flags: reply.header.flags, body: reply.body };
}

/** The value an OK `Incr` reply carries; fails on any other status. */
async function incr(c: RawClient, key: string, delta: bigint, ttlMs = 0): Promise<bigint> {
  const r = await call(c, INCR, incrBody(key, delta, ttlMs));
  assert.equal(r.status, OK, `Incr ${key} ${delta}: status ${r.status}`);
  assert.equal(r.flags, 1);
  return unzigzag((fields(r.body).get(1) as bigint | undefined) ?? 0n);
}

async function getText(c: RawClient, key: string): Promise<string | null> {
  const r = await call(c, GET, new Uint8Array(bytesField(1, utf8(key))));
  assert.equal(r.status, OK);
  const f = fields(r.body);
  if (f.get(1) !== 1n) return null;
  return new TextDecoder().decode((f.get(2) as Uint8Array | undefined) ?? new Uint8Array(0));
}

async function putText(c: RawClient, key: string, value: string): Promise<void> {
  const body = new Uint8Array([...bytesField(1, utf8(key)), ...bytesField(2, utf8(value))]);
  assert.equal((await call(c, PUT, body)).status, OK);
}

Deno.test("wire v1 Incr counts in ASCII decimal, exactly over the whole int64 range", async () => {
  await withServer({ mode: "pool" }, async (server) => {
    using c = await RawClient.connect(server);
    assert.equal(await incr(c, "n", 5n), 5n, "a missing key counts as 0");
    assert.equal(await getText(c, "n"), "5");
    assert.equal(await incr(c, "n", -12n), -7n);
    assert.equal(await getText(c, "n"), "-7", "the stored form is the ASCII decimal");
    assert.equal(await incr(c, "n", 0n), -7n, "a zero delta reads the counter");

    await putText(c, "big", String(INT64_MAX - 1n));
    assert.equal(await incr(c, "big", 1n), INT64_MAX, "no precision is lost near 2^63");
    await putText(c, "small", String(INT64_MIN + 3n));
    assert.equal(await incr(c, "small", -3n), INT64_MIN);
    assert.equal(await incr(c, "delta", INT64_MAX), INT64_MAX, "a delta of 2^63-1 is exact");
  });
});

Deno.test("wire v1 Incr refuses non-integers and overflow with BAD_REQUEST and changes nothing", async () => {
  await withServer({ mode: "inline" }, async (server) => {
    using c = await RawClient.connect(server);
    for (const bad of ["abc", "1.5", " 1", "1 ", "", "+1", "0x10", "99999999999999999999"]) {
      await putText(c, "v", bad);
      const r = await call(c, INCR, incrBody("v", 1n));
      assert.equal(r.status, BAD_REQUEST, `Incr of ${JSON.stringify(bad)}`);
      assert.equal(r.flags, 3, "an error reply has REPLY|ERROR");
      assert.equal(await getText(c, "v"), bad, "the value is unchanged");
    }
    await putText(c, "max", String(INT64_MAX));
    assert.equal((await call(c, INCR, incrBody("max", 1n))).status, BAD_REQUEST);
    assert.equal(await getText(c, "max"), String(INT64_MAX));
    await putText(c, "min", String(INT64_MIN));
    assert.equal((await call(c, INCR, incrBody("min", -1n))).status, BAD_REQUEST);
    assert.equal(await getText(c, "min"), String(INT64_MIN));
    const empty = await call(c, INCR, incrBody("", 1n));
    assert.equal(empty.status, BAD_REQUEST, "an empty key is a bad request");
  });
});

Deno.test("wire v1 Incr applies ttl_ms only when it creates the key", async () => {
  await withServer({ mode: "pool" }, async (server) => {
    using c = await RawClient.connect(server);
    assert.equal(await incr(c, "t", 1n, 150), 1n);
    assert.equal(await incr(c, "t", 1n, 60_000), 2n, "a later ttl_ms does not extend it");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await getText(c, "t"), null, "the key expired with its first ttl");
    assert.equal(await incr(c, "forever", 1n), 1n);
    assert.equal(await incr(c, "forever", 1n, 100), 2n, "an existing key gets no ttl");
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(await getText(c, "forever"), "2");
  });
});

Deno.test("wire v1 Incr from many connections at once never loses an update", async () => {
  await withServer({ mode: "pool" }, async (server) => {
    const clients = await Promise.all(Array.from({ length: 4 }, () => RawClient.connect(server)));
    try {
      await Promise.all(clients.map(async (c) => {
        for (let i = 0; i < 50; i++) await incr(c, "shared", 1n);
      }));
      assert.equal(await getText(clients[0], "shared"), "200");
    } finally {
      for (const c of clients) c.close();
    }
  });
});

Deno.test("wire v1 Auth on a server without passwords names the default user", async () => {
  await withServer({ mode: "inline" }, async (server) => {
    using c = await RawClient.connect(server);
    const empty = await call(c, AUTH, authBody("", ""));
    assert.equal(empty.status, OK);
    assert.equal(new TextDecoder().decode(fields(empty.body).get(1) as Uint8Array), "default");
    const named = await call(c, AUTH, authBody("default", ""));
    assert.equal(named.status, OK);
    const wrong = await call(c, AUTH, authBody("nobody", "secret"));
    assert.equal(wrong.status, UNAUTHENTICATED, "unknown credentials are refused");
    assert.equal(wrong.flags, 3);
    const ping = await call(c, PING, new Uint8Array(bytesField(1, utf8("still here"))));
    assert.equal(ping.status, OK, "the connection stays open after a failed Auth");
    await putText(c, "k", "v");
    assert.equal(await getText(c, "k"), "v", "and keeps its user");
  });
});
