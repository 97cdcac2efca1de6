// Client behaviour against small fake servers written here: the fakes speak
// just enough of wire v1 to drive each case, so these tests pin down what the
// client puts on the wire and how it reacts to what comes back.
import assert from "node:assert/strict";
import { crc32 as zlibCrc32 } from "node:zlib";
import {
  type Client,
  connect,
  ConnectionClosedError,
  type ConnectOptions,
  EvkvError,
  ProtocolError,
  Status,
} from "../src/client/mod.ts";
import { main } from "../src/client/cli.ts";
import { concat } from "./support.ts";
import { Flags, KvMethod } from "../src/protocol/constants.ts";
import { checkFrame, decodeHeader, encodeFrame, type FrameHeader } from "../src/protocol/frame.ts";
import { encodeError, pb } from "../src/protocol/messages.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Frame {
  header: FrameHeader;
  body: Uint8Array;
  raw: Uint8Array;
}

/** The server side of one accepted connection. */
class Peer {
  #buf: Uint8Array = new Uint8Array(0);
  constructor(readonly conn: Deno.TcpConn) {}

  async readFrame(): Promise<Frame> {
    for (;;) {
      const len = checkFrame(this.#buf, 0, this.#buf.length, 1 << 30);
      if (len > 0) {
        const raw = this.#buf.slice(0, len);
        this.#buf = this.#buf.slice(len);
        return { header: decodeHeader(raw, 0), body: raw.slice(24, len - 4), raw };
      }
      if (len < 0) throw new Error(`bad frame from the client (${len})`);
      const chunk = new Uint8Array(64 * 1024);
      const n = await this.conn.read(chunk);
      if (n === null) throw new Error("client closed the connection");
      this.#buf = concat(this.#buf, chunk.subarray(0, n));
    }
  }

  async readFrames(n: number): Promise<Frame[]> {
    const frames: Frame[] = [];
    while (frames.length < n) frames.push(await this.readFrame());
    return frames;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed by the test.
    }
  }
}

function reply(req: Frame, body: Uint8Array, status = 0): Uint8Array {
  return encodeFrame({
    flags: Flags.REPLY | (status === 0 ? 0 : Flags.ERROR),
    code: req.header.code,
    requestId: req.header.requestId,
    status,
    timeoutMs: 0,
  }, body);
}

function errorReply(req: Frame, status: number, message: string): Uint8Array {
  return reply(req, encodeError(status, message), status);
}

function getReply(req: Frame, value: Uint8Array | undefined): Uint8Array {
  return reply(req, pb.GetReply.encode({ found: value !== undefined, value }).finish());
}

function u32le(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
}

/** Runs `fn` with a client connected to a fresh one-connection fake server. */
async function withPeer(
  fn: (client: Client, peer: Peer) => Promise<void>,
  opts: ConnectOptions = {},
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let client: Client | undefined;
  let peer: Peer | undefined;
  try {
    const accepted = listener.accept();
    client = await connect({ ...opts, port: listener.addr.port });
    peer = new Peer(await accepted);
    await fn(client, peer);
  } catch (err) {
    // Closing the client below rejects the calls the test left waiting, and
    // those unhandled rejections would otherwise hide this error.
    console.error("test failed:", err);
    throw err;
  } finally {
    listener.close();
    await client?.close();
    peer?.close();
  }
}

Deno.test("a get request is framed to the byte, with timeout_ms from the call or the connection", async () => {
  await withPeer(async (client, peer) => {
    const got = client.get("k", { timeoutMs: 1234 });
    const pinged = client.ping();
    const [get, ping] = await peer.readFrames(2);

    const body = [0x0a, 0x01, 0x6b]; // GetRequest { key: "k" }
    const expected = new Uint8Array([
      0x45,
      0x56,
      0x4b,
      0x56, // magic "EVKV"
      1, // version
      0, // flags
      2,
      0, // code: Get
      ...u32le(1), // request_id: the first one
      ...u32le(0), // status
      ...u32le(body.length),
      ...u32le(1234), // timeout_ms
      ...body,
      ...u32le(zlibCrc32(new Uint8Array(body)) >>> 0),
    ]);
    assert.deepEqual(get.raw, expected);

    assert.equal(ping.header.code, KvMethod.Ping);
    assert.equal(ping.header.requestId, 2);
    assert.equal(ping.header.timeoutMs, 777, "the connection's default timeout");
    assert.equal(ping.header.bodyLen, 0);
    assert.deepEqual([...ping.raw.subarray(24)], [0, 0, 0, 0], "an empty body has crc 0");

    await peer.write(concat(getReply(get, enc.encode("v")), reply(ping, new Uint8Array(0))));
    assert.equal(dec.decode(await got), "v");
    assert.deepEqual(await pinged, new Uint8Array(0));
  }, { timeoutMs: 777 });
});

Deno.test("requests made in the same turn go out in one write", async () => {
  await withPeer(async (client, peer) => {
    const calls = [1, 2, 3, 4, 5].map((i) => client.ping(`p${i}`));
    const chunk = new Uint8Array(64 * 1024);
    const n = await peer.conn.read(chunk);
    assert.ok(n !== null);
    let frames = 0;
    for (let off = 0; off < n;) {
      const len = checkFrame(chunk, off, n, 1024);
      assert.ok(len > 0, "only whole frames in the one read");
      const f = { header: decodeHeader(chunk, off), body: chunk.slice(off + 24, off + len - 4) };
      await peer.write(reply({ ...f, raw: new Uint8Array(0) }, f.body));
      off += len;
      frames++;
    }
    assert.equal(frames, 5);
    assert.deepEqual((await Promise.all(calls)).map((p) => dec.decode(p)), [
      "p1",
      "p2",
      "p3",
      "p4",
      "p5",
    ]);
  });
});

Deno.test("pipelined calls are matched to replies sent back in reverse order", async () => {
  await withPeer(async (client, peer) => {
    const keys = Array.from({ length: 10 }, (_, i) => `key${i}`);
    const calls = keys.map((k) => client.get(k));
    const frames = await peer.readFrames(keys.length);
    assert.equal(new Set(frames.map((f) => f.header.requestId)).size, keys.length);
    for (const f of frames.reverse()) {
      const key = pb.GetRequest.decode(f.body).key;
      await peer.write(getReply(f, enc.encode(`value of ${dec.decode(key)}`)));
    }
    const values = (await Promise.all(calls)).map((v) => v && dec.decode(v));
    assert.deepEqual(values, keys.map((k) => `value of ${k}`));
  });
});

Deno.test("an error reply rejects with EvkvError carrying status, name, message and method", async () => {
  await withPeer(async (client, peer) => {
    const got = client.get("");
    const [f] = await peer.readFrames(1);
    await peer.write(errorReply(f, Status.BAD_REQUEST, "Get needs a key of 1 to 1024 bytes"));
    await assert.rejects(got, (err) => {
      assert.ok(err instanceof EvkvError);
      assert.equal(err.status, 1);
      assert.equal(err.statusName, "BAD_REQUEST");
      assert.equal(err.message, "Get needs a key of 1 to 1024 bytes");
      assert.equal(err.code, KvMethod.Get);
      return true;
    });

    // An error reply leaves the connection open.
    const pinged = client.ping("still here");
    const [p] = await peer.readFrames(1);
    await peer.write(reply(p, pb.PingReply.encode({ payload: enc.encode("still here") }).finish()));
    assert.equal(dec.decode(await pinged), "still here");
  });
});

Deno.test("a client timeout rejects with DEADLINE_EXCEEDED and the late reply is ignored", async () => {
  await withPeer(async (client, peer) => {
    const slow = client.get("slow", { timeoutMs: 50 });
    const [late] = await peer.readFrames(1);
    assert.equal(late.header.timeoutMs, 50);
    await assert.rejects(slow, (err) => {
      assert.ok(err instanceof EvkvError);
      assert.equal(err.status, Status.DEADLINE_EXCEEDED);
      assert.match(err.message, /gave up after 50 ms/);
      return true;
    });

    const fast = client.get("fast");
    const [f] = await peer.readFrames(1);
    assert.notEqual(f.header.requestId, late.header.requestId);
    await peer.write(
      concat(getReply(late, enc.encode("too late")), getReply(f, enc.encode("ok"))),
    );
    assert.equal(dec.decode((await fast)!), "ok");
  });
});

Deno.test("the server closing the connection rejects every pending call with ConnectionClosedError", async () => {
  await withPeer(async (client, peer) => {
    const calls = [client.get("a"), client.put("b", "1"), client.stats({ timeoutMs: 5000 })];
    await peer.readFrames(3);
    peer.close();
    await Promise.all(calls.map((call) => assert.rejects(call, ConnectionClosedError)));
    await client.closed;
    await assert.rejects(client.ping(), ConnectionClosedError);
  });
});

Deno.test("close() rejects the calls still waiting with ConnectionClosedError", async () => {
  await withPeer(async (client, peer) => {
    const waiting = client.get("k", { timeoutMs: 10_000 });
    await peer.readFrames(1);
    const rejected = assert.rejects(waiting, (err) => {
      assert.ok(err instanceof ConnectionClosedError);
      assert.match(err.message, /closed by the client/);
      return true;
    });
    await client.close();
    await rejected;
  });
});

Deno.test("a ONEWAY call sets flag 4 and resolves without a reply", async () => {
  await withPeer(async (client, peer) => {
    const body = pb.PutRequest.encode({ key: enc.encode("k"), value: enc.encode("v") }).finish();
    assert.deepEqual(await client.call(KvMethod.Put, body, { oneway: true }), new Uint8Array(0));
    assert.equal(await client.delete("k", { oneway: true }), false);
    const [put, del] = await peer.readFrames(2);
    assert.equal(put.header.flags, Flags.ONEWAY);
    assert.deepEqual(put.body, body);
    assert.equal(del.header.flags, Flags.ONEWAY);
    assert.equal(del.header.code, KvMethod.Delete);
  });
});

Deno.test("a reply delivered one byte at a time is reassembled", async () => {
  await withPeer(async (client, peer) => {
    peer.conn.setNoDelay(true);
    const pinged = client.ping("byte by byte");
    const [f] = await peer.readFrames(1);
    const frame = reply(f, pb.PingReply.encode({ payload: f.body.subarray(2) }).finish());
    for (let i = 0; i < frame.length; i++) {
      await peer.write(frame.subarray(i, i + 1));
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal(dec.decode(await pinged), "byte by byte");
  });
});

Deno.test("many replies in one write are all delivered", async () => {
  await withPeer(async (client, peer) => {
    const calls = Array.from({ length: 200 }, (_, i) => client.get(`k${i}`));
    const frames = await peer.readFrames(calls.length);
    await peer.write(concat(...frames.map((f) => getReply(f, pb.GetRequest.decode(f.body).key))));
    const values = (await Promise.all(calls)).map((v) => v && dec.decode(v));
    assert.deepEqual(values, calls.map((_, i) => `k${i}`));
  });
});

Deno.test("a reply larger than the read buffer is received whole", async () => {
  await withPeer(async (client, peer) => {
    const big = new Uint8Array(300_000).map((_, i) => i % 251);
    const calls = [client.get("big"), client.get("small"), client.get("big2")];
    const [a, b, c] = await peer.readFrames(3);
    await peer.write(concat(getReply(a, big), getReply(b, enc.encode("s")), getReply(c, big)));
    const [gotBig, gotSmall, gotBig2] = await Promise.all(calls);
    assert.deepEqual(gotBig, big);
    assert.equal(dec.decode(gotSmall!), "s");
    assert.deepEqual(gotBig2, big);
  });
});

Deno.test("a reply with a bad CRC rejects its call and closes the connection", async () => {
  await withPeer(async (client, peer) => {
    const bad = client.get("a");
    const other = client.get("b");
    const [f] = await peer.readFrames(2);
    const frame = getReply(f, enc.encode("value"));
    frame[frame.length - 1] ^= 0xff;
    await peer.write(frame);
    await assert.rejects(bad, (err) => {
      assert.ok(err instanceof ProtocolError);
      assert.match(err.message, /CRC/);
      return true;
    });
    await assert.rejects(other, (err) => {
      assert.ok(err instanceof ConnectionClosedError);
      assert.ok(err.cause instanceof ProtocolError);
      return true;
    });
    await client.closed;
  });
});

Deno.test("garbage from the server closes the connection with a ProtocolError cause", async () => {
  await withPeer(async (client, peer) => {
    const waiting = client.ping();
    await peer.readFrames(1);
    await peer.write(enc.encode("HTTP/1.1 400 Bad Request\r\n\r\n"));
    await assert.rejects(waiting, (err) => {
      assert.ok(err instanceof ConnectionClosedError);
      assert.ok(err.cause instanceof ProtocolError);
      assert.match(err.message, /magic/);
      return true;
    });
  });
});

Deno.test("a request body over maxBody is refused without being sent", async () => {
  await withPeer(async (client, peer) => {
    await assert.rejects(client.call(KvMethod.Put, new Uint8Array(17)), (err) => {
      assert.ok(err instanceof EvkvError);
      assert.equal(err.status, Status.TOO_LARGE);
      return true;
    });
    const pinged = client.ping();
    const [f] = await peer.readFrames(1);
    assert.equal(f.header.code, KvMethod.Ping, "the refused request never reached the server");
    await peer.write(reply(f, new Uint8Array(0)));
    await pinged;
  }, { maxBody: 16 });
});

Deno.test("scanAll pages through with start_after set to the last key of each page", async () => {
  await withPeer(async (client, peer) => {
    const keys = ["k1", "k2", "k3", "k4", "k5"];
    const requests: { prefix: string; startAfter: string; limit: number }[] = [];
    const serve = (async () => {
      for (;;) {
        const f = await peer.readFrame();
        const req = pb.ScanRequest.decode(f.body);
        const startAfter = dec.decode(req.startAfter);
        requests.push({ prefix: dec.decode(req.prefix), startAfter, limit: req.limit });
        const rest = keys.filter((k) => k > startAfter);
        const page = rest.slice(0, req.limit);
        const body = pb.ScanReply.encode({
          entries: page.map((k) => ({ key: enc.encode(k), value: enc.encode(`v${k}`) })),
          more: rest.length > page.length,
        }).finish();
        await peer.write(reply(f, body));
        if (rest.length <= page.length) return;
      }
    })();
    const seen: string[] = [];
    for await (const { key, value } of client.scanAll("k", { limit: 2 })) {
      seen.push(`${dec.decode(key)}=${dec.decode(value)}`);
    }
    await serve;
    assert.deepEqual(seen, ["k1=vk1", "k2=vk2", "k3=vk3", "k4=vk4", "k5=vk5"]);
    assert.deepEqual(requests, [
      { prefix: "k", startAfter: "", limit: 2 },
      { prefix: "k", startAfter: "k2", limit: 2 },
      { prefix: "k", startAfter: "k4", limit: 2 },
    ]);
  });
});

// ---- CLI ---------------------------------------------------------------

/** A tiny in-memory KV server, enough for the CLI: any number of connections. */
class FakeKv {
  readonly store = new Map<string, Uint8Array>();
  lastTtlMs = -1;
  readonly listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly port = this.listener.addr.port;
  #peers = new Set<Peer>();
  #served: Promise<void>[] = [];
  #accepting = this.#acceptLoop();

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.listener.accept();
      } catch {
        return; // listener closed
      }
      const peer = new Peer(conn);
      this.#peers.add(peer);
      this.#served.push(this.#serve(peer));
    }
  }

  async #serve(peer: Peer): Promise<void> {
    try {
      for (;;) {
        const f = await peer.readFrame();
        await peer.write(this.#handle(f));
      }
    } catch {
      // The client hung up.
    } finally {
      peer.close();
      this.#peers.delete(peer);
    }
  }

  #handle(f: Frame): Uint8Array {
    const latin1 = (b: Uint8Array) => String.fromCharCode(...b);
    const fromLatin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
    switch (f.header.code) {
      case KvMethod.Ping:
        return reply(f, f.body);
      case KvMethod.Get: {
        const { key } = pb.GetRequest.decode(f.body);
        if (key.length === 0) {
          return errorReply(f, Status.BAD_REQUEST, "key must be 1 to 1024 bytes");
        }
        return getReply(f, this.store.get(latin1(key)));
      }
      case KvMethod.Put: {
        const { key, value, ttlMs } = pb.PutRequest.decode(f.body);
        this.lastTtlMs = ttlMs;
        const replaced = this.store.has(latin1(key));
        this.store.set(latin1(key), value.slice());
        return reply(f, pb.PutReply.encode({ replaced }).finish());
      }
      case KvMethod.Delete: {
        const deleted = this.store.delete(latin1(pb.DeleteRequest.decode(f.body).key));
        return reply(f, pb.DeleteReply.encode({ deleted }).finish());
      }
      case KvMethod.Scan: {
        const req = pb.ScanRequest.decode(f.body);
        const prefix = latin1(req.prefix);
        const after = latin1(req.startAfter);
        const keys = [...this.store.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
        const page = keys.slice(0, req.limit || 1000);
        return reply(
          f,
          pb.ScanReply.encode({
            entries: page.map((k) => ({ key: fromLatin1(k), value: this.store.get(k) })),
            more: keys.length > page.length,
          }).finish(),
        );
      }
      case KvMethod.Stats:
        return reply(
          f,
          pb.StatsReply.encode({
            counters: [{ name: "keys", value: this.store.size }, {
              name: "requests.total",
              value: 12345,
            }],
          }).finish(),
        );
      default:
        return errorReply(f, Status.UNKNOWN_METHOD, `no method ${f.header.code}`);
    }
  }

  async close(): Promise<void> {
    this.listener.close();
    await this.#accepting;
    for (const peer of this.#peers) peer.close();
    await Promise.all(this.#served);
  }
}

async function runCli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void out.push(a.map(String).join(" "));
  console.error = (...a: unknown[]) => void err.push(a.map(String).join(" "));
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("kvclient put then get prints OK (new), OK (replaced) and the value", async () => {
  const kv = new FakeKv();
  try {
    const port = String(kv.port);
    assert.deepEqual(await runCli(["--port", port, "put", "greeting", "héllo"]), {
      code: 0,
      out: ["OK (new)"],
      err: [],
    });
    // `deno task client -- ...` passes the "--" along.
    assert.deepEqual(
      await runCli(["--", "--port", port, "put", "greeting", "hello", "--ttl", "5"]),
      {
        code: 0,
        out: ["OK (replaced)"],
        err: [],
      },
    );
    assert.equal(kv.lastTtlMs, 5);
    assert.deepEqual(await runCli(["--port", port, "get", "greeting"]), {
      code: 0,
      out: ["hello"],
      err: [],
    });
    assert.deepEqual(await runCli(["--port", port, "del", "greeting"]), {
      code: 0,
      out: ["deleted"],
      err: [],
    });
  } finally {
    await kv.close();
  }
});

Deno.test("kvclient --json prints one JSON object with UTF-8 and base64 forms of bytes", async () => {
  const kv = new FakeKv();
  try {
    kv.store.set("bin", new Uint8Array([0x68, 0x69, 0xff]));
    const got = await runCli(["--json", "--port", String(kv.port), "get", "bin"]);
    assert.equal(got.code, 0);
    assert.equal(got.out.length, 1);
    assert.deepEqual(JSON.parse(got.out[0]), {
      key: "bin",
      found: true,
      value: "hi\ufffd",
      valueBase64: "aGn/",
    });

    const put = await runCli(["--port", String(kv.port), "--json", "put", "k", "v"]);
    assert.deepEqual(JSON.parse(put.out[0]), { key: "k", replaced: false });
  } finally {
    await kv.close();
  }
});

Deno.test("kvclient get of a missing key prints (not found) on stderr and exits 1", async () => {
  const kv = new FakeKv();
  try {
    assert.deepEqual(await runCli(["--port", String(kv.port), "get", "nope"]), {
      code: 1,
      out: [],
      err: ["(not found)"],
    });
  } finally {
    await kv.close();
  }
});

Deno.test("kvclient reports an error reply as '<Action> failed: STATUS: message' and exits 1", async () => {
  const kv = new FakeKv();
  try {
    assert.deepEqual(await runCli(["--port", String(kv.port), "get", ""]), {
      code: 1,
      out: [],
      err: ["Get failed: BAD_REQUEST: key must be 1 to 1024 bytes"],
    });
  } finally {
    await kv.close();
  }
});

Deno.test("kvclient scan prints key<TAB>value lines and (more), stats an aligned table", async () => {
  const kv = new FakeKv();
  try {
    for (const k of ["a1", "a2", "a3", "b1"]) kv.store.set(k, enc.encode(k.toUpperCase()));
    const port = String(kv.port);
    assert.deepEqual((await runCli(["--port", port, "scan", "a", "--limit", "2"])).out, [
      "a1\tA1",
      "a2\tA2",
      "(more)",
    ]);
    assert.deepEqual((await runCli(["--port", port, "scan", "a", "--start-after", "a2"])).out, [
      "a3\tA3",
    ]);
    assert.deepEqual((await runCli(["--port", port, "stats"])).out, [
      "keys                4",
      "requests.total  12345",
    ]);
  } finally {
    await kv.close();
  }
});

Deno.test("kvclient exits 2 with the usage text on a usage error, and 0 on --help", async () => {
  const missing = await runCli(["get"]);
  assert.equal(missing.code, 2);
  assert.match(missing.err.join("\n"), /Usage: kvclient/);

  const wrongFlag = await runCli(["get", "k", "--ttl", "5"]);
  assert.equal(wrongFlag.code, 2);
  assert.match(wrongFlag.err[0], /--ttl applies only to put/);

  const badPort = await runCli(["--port", "x", "ping"]);
  assert.equal(badPort.code, 2);

  const help = await runCli(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out[0], /^Usage: kvclient/);
});
