/**
 * The KV request readers decode in place what protobufjs decodes from a
 * view of its own; these tests hold them to protobufjs for every shape they
 * take, and check that they hand every other body back to it.
 */
import assert from "node:assert/strict";
import { type BodyReader, pb, Status } from "../mod.ts";
import { keyRequestReader, putRequestReader } from "../src/kv/request_readers.ts";
import { Executor } from "../src/server/shard/executor.ts";
import { defineService, method } from "../src/server/service.ts";
import { seededRandom } from "./support.ts";

const bytes = (n: number, seed = 1) =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** The fields the handlers read, as plain values, to compare both decodes. */
function fields(m: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of ["key", "value", "ttlMs"]) {
    const v = m[name];
    if (v instanceof Uint8Array) out[name] = Array.from(v);
    else if (v !== undefined) out[name] = v;
  }
  return out;
}

type Decoder = { decode(b: Uint8Array): unknown; encode(m: never): { finish(): Uint8Array } };

/** `body` placed in the middle of a bigger buffer, as it sits in a receive buffer. */
function embedded(body: Uint8Array): { buf: Uint8Array; start: number; end: number } {
  const buf = new Uint8Array(body.length + 20).fill(0x0a);
  buf.set(body, 7);
  return { buf, start: 7, end: 7 + body.length };
}

/** Asserts `reader` declines `body` or reads what protobufjs decodes; returns true if it read. */
function agrees(reader: BodyReader<unknown>, type: Decoder, body: Uint8Array, what: string) {
  const { buf, start, end } = embedded(body);
  const mine = reader.read(buf, start, end);
  if (mine === undefined) return false;
  let theirs: unknown;
  try {
    theirs = type.decode(body.slice());
  } catch (e) {
    assert.fail(`${what}: the reader took a body protobufjs refuses (${e})`);
  }
  assert.deepEqual(
    fields(mine as Record<string, unknown>),
    fields(theirs as Record<string, unknown>),
    what,
  );
  return true;
}

const cases: [string, BodyReader<unknown>, Decoder, Record<string, unknown>[]][] = [
  ["GetRequest", keyRequestReader as BodyReader<unknown>, pb.GetRequest, [
    { key: bytes(10) },
    { key: bytes(0) },
    {},
    { key: bytes(127) },
    { key: bytes(128) },
    { key: bytes(1024) },
  ]],
  ["DeleteRequest", keyRequestReader as BodyReader<unknown>, pb.DeleteRequest, [
    { key: bytes(3) },
    {},
  ]],
  ["PutRequest", putRequestReader as BodyReader<unknown>, pb.PutRequest, [
    { key: bytes(10), value: bytes(100) },
    { key: bytes(10), value: bytes(100), ttlMs: 5000 },
    { key: bytes(1), value: bytes(300_000), ttlMs: 1 },
    { key: bytes(1), ttlMs: 2 ** 28 - 1 },
    { value: bytes(5) },
    { key: bytes(2), value: bytes(0), ttlMs: 0 },
    {},
  ]],
];

for (const [name, reader, type, messages] of cases) {
  Deno.test(`the ${name} reader reads what protobufjs encodes, for every shape`, () => {
    for (const m of messages) {
      const body = type.encode(m as never).finish();
      const what = `${name} ${JSON.stringify(Object.keys(m))}`;
      assert.ok(agrees(reader, type, body, what), `${what}: the reader declined it`);
    }
  });
}

Deno.test("the Put reader takes its fields in any order and views the caller's memory", () => {
  // ttl_ms, value, key: valid protobuf, not the order protobufjs writes.
  const body = new Uint8Array([0x18, 0x96, 0x01, 0x12, 2, 7, 8, 0x0a, 1, 9]);
  const { buf, start, end } = embedded(body);
  const m = putRequestReader.read(buf, start, end)!;
  assert.deepEqual(fields(m as Record<string, unknown>), { key: [9], value: [7, 8], ttlMs: 150 });
  assert.equal(m.key!.buffer, buf.buffer, "the key is a view, not a copy");
});

Deno.test("the readers leave odd bodies to protobufjs: repeats, other fields, long varints, cuts", () => {
  const declined: [BodyReader<unknown>, number[]][] = [
    [keyRequestReader as BodyReader<unknown>, [0x0a, 1, 5, 0x0a, 1, 6]], // key twice: last wins
    [keyRequestReader as BodyReader<unknown>, [0x12, 1, 5]], // an unknown field
    [keyRequestReader as BodyReader<unknown>, [0x0a, 3, 5]], // cut short
    [keyRequestReader as BodyReader<unknown>, [0x0a, 0x80, 0x80, 0x80, 0x80, 0x01]], // 5-byte length
    [putRequestReader as BodyReader<unknown>, [0x18, 0xff, 0xff, 0xff, 0xff, 0x0f]], // 5-byte ttl
    [putRequestReader as BodyReader<unknown>, [0x18, 1, 0x18, 2]], // ttl twice
    [putRequestReader as BodyReader<unknown>, [0x1a, 0]], // ttl as bytes
    [putRequestReader as BodyReader<unknown>, [0x0a, 1]], // cut short
  ];
  for (const [reader, body] of declined) {
    const { buf, start, end } = embedded(new Uint8Array(body));
    assert.equal(reader.read(buf, start, end), undefined, `declines [${body}]`);
  }
});

Deno.test("random and mutated bodies are declined or read as protobufjs reads them", () => {
  const rand = seededRandom(0x5eed);
  let read = 0;
  for (let i = 0; i < 10_000; i++) {
    const [, reader, type, messages] = cases[i % cases.length];
    let body: Uint8Array;
    if (i % 2 === 0) {
      body = Uint8Array.from({ length: Math.floor(rand() * 12) }, () => Math.floor(rand() * 256));
    } else {
      body = type.encode(messages[i % messages.length] as never).finish().slice();
      for (let f = 0; f < 1 + Math.floor(rand() * 3) && body.length > 0; f++) {
        body[Math.floor(rand() * body.length)] = Math.floor(rand() * 256);
      }
      body = body.subarray(0, body.length - Math.floor(rand() * 2));
    }
    if (agrees(reader, type, body, `case ${i}: [${body.subarray(0, 16)}]`)) read++;
  }
  assert.ok(read > 500, `the readers took a fair share of the bodies (${read})`);
});

Deno.test("a method whose reader declines a body still runs on protobufjs's decode", async () => {
  const seen: unknown[] = [];
  const service = defineService({
    name: "readers",
    methods: {
      1: method({
        name: "Echo",
        request: pb.PingRequest,
        reply: pb.PingReply,
        requestReader: {
          read: (b, s, e) => (e - s === 2 ? { payload: b.subarray(s, e) } : undefined),
        },
        handler: (req) => {
          seen.push(Array.from(req.payload ?? []));
          return { payload: req.payload };
        },
      }),
    },
  });
  const exec = new Executor(service, 0, 1, 1 << 20, () => {
    throw new Error("no stats here");
  }, Date.now());
  const caller = { receiveBytes: 0, inPacketBytes: -1, taskBytes: -1, ringSlotBytes: -1 };
  const odd = pb.PingRequest.encode({ payload: new Uint8Array([4, 5, 6]) }).finish();
  const buf = new Uint8Array([0, 0, 0xaa, 0xbb, ...odd, 0]);
  const took = await exec.execute(1, buf, 2, 4, 0, caller);
  const declined = await exec.execute(1, buf, 4, 4 + odd.length, 0, caller);
  assert.deepEqual(seen, [[0xaa, 0xbb], [4, 5, 6]]);
  assert.equal(took.status, 0);
  assert.equal(declined.status, 0);
  const bad = await exec.execute(1, new Uint8Array([0x0a, 9, 1]), 0, 3, 0, caller);
  assert.equal(bad.status, Status.BAD_REQUEST, "a body neither takes is a bad request");
});
