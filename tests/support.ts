/**
 * Test support: real servers on loopback and a raw frame client that
 * speaks wire v1 byte by byte, the way an independent client would.
 *
 * @module
 */
import assert from "node:assert/strict";
import { leakedKinds, serve, type ServeOptions, type Server } from "../mod.ts";
import { checkFrame, decodeHeader, encodeFrame, type FrameHeader } from "../src/protocol/frame.ts";

/** The server layouts every end-to-end suite runs on. */
export const LAYOUTS: { name: string; options: ServeOptions }[] = [
  { name: "pool, reuseport", options: { mode: "pool", accept: "reuseport" } },
  { name: "inline, reuseport", options: { mode: "inline", accept: "reuseport" } },
  { name: "pool, main accept", options: { mode: "pool", accept: "main" } },
  { name: "inline, main accept", options: { mode: "inline", accept: "main" } },
];

/** URL of the echo service in examples/. */
export const ECHO_SERVICE = new URL("../examples/echo_service.ts", import.meta.url);

/**
 * Runs `fn` against a fresh server with 2 IO workers and 2 task workers on
 * a free loopback port, then shuts it down and checks that every resource
 * kind is back to zero.
 */
export async function withServer(
  options: ServeOptions,
  fn: (server: Server) => Promise<void>,
): Promise<void> {
  const server = await serve({
    port: 0,
    ioThreads: 2,
    workers: 2,
    drainTimeoutMs: 2000,
    // Memory only unless a test asks: servers must not share (and lock) one data dir.
    persist: { mode: "off" },
    ...options,
  });
  let failed = false;
  try {
    await fn(server);
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    const report = await server.shutdown();
    if (!failed) {
      assert.deepEqual(report.leaks, [], `resources left held at shutdown:\n${report.dump}`);
      assert.deepEqual(leakedKinds(report.final), []);
    }
  }
}

/** A reply frame as read off the socket. */
export interface RawFrame {
  /** Header fields. */
  header: FrameHeader;
  /** Body bytes (a copy). */
  body: Uint8Array;
}

/** A connection that sends and receives raw frames. */
export class RawClient implements Disposable {
  readonly conn: Deno.TcpConn;
  #buf = new Uint8Array(64 * 1024);
  #end = 0;
  #nextId = 1;
  #closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Connects to the server. */
  static async connect(server: Server): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    conn.setNoDelay(true);
    return new RawClient(conn);
  }

  /** A fresh request id. */
  id(): number {
    return this.#nextId++;
  }

  /** Builds a request frame. */
  frame(
    code: number,
    body: Uint8Array,
    opts: { id?: number; flags?: number; timeoutMs?: number } = {},
  ): Uint8Array {
    return encodeFrame({
      flags: opts.flags ?? 0,
      code,
      requestId: opts.id ?? this.id(),
      status: 0,
      timeoutMs: opts.timeoutMs ?? 0,
    }, body);
  }

  /** Writes all of `bytes`. */
  async send(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  /** Sends one request and returns its reply. */
  async call(
    code: number,
    body: Uint8Array,
    opts: { flags?: number; timeoutMs?: number } = {},
  ): Promise<RawFrame> {
    const id = this.id();
    await this.send(this.frame(code, body, { ...opts, id }));
    const reply = await this.read();
    assert.ok(reply, `connection closed while waiting for reply ${id}`);
    assert.equal(reply.header.requestId, id);
    return reply;
  }

  /**
   * Reads the next frame; null when the server closed the connection.
   * Fails after `timeoutMs`, so that a missing reply cannot hang a test.
   */
  async read(timeoutMs = 5000): Promise<RawFrame | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const total = checkFrame(this.#buf, 0, this.#end, 1 << 30);
      if (total > 0) {
        const header = decodeHeader(this.#buf, 0);
        const body = this.#buf.slice(24, total - 4);
        this.#buf.copyWithin(0, total, this.#end);
        this.#end -= total;
        return { header, body };
      }
      assert.equal(total, 0, "server sent a frame with a bad preamble");
      if (this.#end === this.#buf.length) {
        const next = new Uint8Array(this.#buf.length * 2);
        next.set(this.#buf);
        this.#buf = next;
      }
      const left = deadline - Date.now();
      assert.ok(left > 0, `no complete frame within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.conn.read(this.#buf.subarray(this.#end)).catch(() => null),
        new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), left)),
      ]);
      clearTimeout(timer);
      assert.notEqual(n, "timeout", `no complete frame within ${timeoutMs} ms`);
      if (n === null) {
        assert.equal(this.#end, 0, "server closed the connection in the middle of a frame");
        return null;
      }
      this.#end += n as number;
    }
  }

  /** Reads `n` frames. */
  async readMany(n: number): Promise<RawFrame[]> {
    const out: RawFrame[] = [];
    for (let i = 0; i < n; i++) {
      const f = await this.read();
      assert.ok(f, `connection closed after ${i} of ${n} replies`);
      out.push(f);
    }
    return out;
  }

  /** Asserts that the server closes the connection without sending more. */
  async expectClosed(): Promise<void> {
    assert.equal(await this.read(), null, "expected the server to close the connection");
  }

  /** Closes the connection. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** UTF-8 bytes of `s`. */
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
/** `s` of UTF-8 bytes. */
export const text = (b: Uint8Array | null | undefined): string =>
  new TextDecoder().decode(b ?? new Uint8Array(0));
/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** mulberry32: a small seeded PRNG so failures reproduce; each call gives a u32. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A seeded generator of floats in [0, 1), from {@link mulberry32}. */
export function seededRandom(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/** The bytes of `parts`, one after another, in a new array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
