/**
 * The byte pipe under a connection. A `Deno.Conn` is one already. With
 * `--accept main` the socket stays in the main thread, which reads and
 * writes it on the IO worker's behalf ({@link ProxyTransport} here,
 * `SocketProxy` in main_accept.ts).
 *
 * Why not transfer `conn.readable`/`conn.writable` to the worker: Deno
 * closes the whole socket when a transferred readable reaches end of
 * stream (so a client that half-closes loses its replies), and the
 * writable's close and the readable's cancel travel on two message ports,
 * so a close could overtake queued replies. Messages on the worker's own
 * port arrive in order, and reads happen only when the worker asks, which
 * is backpressure for free.
 *
 * @module
 */

/** Minimal reader/writer a connection needs. */
export interface Transport {
  /** Reads into `p`; resolves to the count, or null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some prefix of `p`; resolves to how many bytes were taken. */
  write(p: Uint8Array): Promise<number>;
  /** Closes both directions; pending reads and writes reject or end. */
  close(): void;
}

/** Messages between an IO worker and the main thread about one proxied socket. */
export type ProxyMessage =
  | { type: "sock-read"; id: number; max: number }
  | { type: "sock-data"; id: number; bytes: Uint8Array | null }
  | { type: "sock-write"; id: number; bytes: Uint8Array }
  | { type: "sock-written"; id: number; ok: boolean }
  | { type: "sock-close"; id: number };

/** A socket that lives in the main thread, driven by messages. */
export class ProxyTransport implements Transport {
  readonly #id: number;
  readonly #post: (message: ProxyMessage, transfer?: Transferable[]) => void;
  /** The read waiting for its data (the connection reads one at a time). */
  #reading: { p: Uint8Array; done: (n: number | null) => void } | null = null;
  /** The write waiting for its acknowledgement. */
  #writing: { n: number; done: (n: number) => void; fail: (e: Error) => void } | null = null;
  #closed = false;

  /** `post` sends a message to the main thread. */
  constructor(id: number, post: (message: ProxyMessage, transfer?: Transferable[]) => void) {
    this.#id = id;
    this.#post = post;
  }

  /** See {@link Transport.read}. */
  read(p: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.resolve(null);
    return new Promise((done) => {
      this.#reading = { p, done };
      this.#post({ type: "sock-read", id: this.#id, max: p.length });
    });
  }

  /** Data (or end of stream) for the pending read. */
  received(bytes: Uint8Array | null): void {
    const r = this.#reading;
    this.#reading = null;
    if (!r) return;
    if (bytes === null) return r.done(null);
    r.p.set(bytes);
    r.done(bytes.length);
  }

  /** See {@link Transport.write}: resolves once the bytes are on the socket. */
  write(p: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Error("Write: the connection is closed"));
    const bytes = p.slice();
    return new Promise((done, fail) => {
      this.#writing = { n: bytes.length, done, fail };
      this.#post({ type: "sock-write", id: this.#id, bytes }, [bytes.buffer]);
    });
  }

  /** The main thread's answer to the pending write. */
  written(ok: boolean): void {
    const w = this.#writing;
    this.#writing = null;
    if (!w) return;
    if (ok) w.done(w.n);
    else w.fail(new Error("Write: the socket failed"));
  }

  /** See {@link Transport.close}: the main thread closes after writes already sent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#post({ type: "sock-close", id: this.#id });
    this.received(null);
    this.written(false);
  }
}
