/**
 * `--accept main`: the main thread accepts, and keeps each socket, reading
 * and writing it when its IO worker asks (see transport.ts for why the
 * socket is not handed over as streams). Each IO worker gets connections
 * in turn.
 *
 * @module
 */
import type { CodecName } from "../io/io_worker.ts";
import type { WorkerHandle } from "./supervisor.ts";
import type { ProxyMessage } from "../io/transport.ts";

interface Proxied {
  conn: Deno.Conn;
  /** Index of the IO worker that owns it. */
  io: number;
  /** Writes and the close run in order on this chain. */
  chain: Promise<void>;
}

/** The main thread's side of every proxied socket. */
export class SocketProxy {
  readonly #sockets = new Map<number, Proxied>();
  readonly #ios: WorkerHandle[];
  #next = 0;
  #nextId = 1;

  /** Serves connections for `ios` (the array is updated in place on restarts). */
  constructor(ios: WorkerHandle[]) {
    this.#ios = ios;
  }

  /** Routes socket messages from IO worker `io`; call again for a replacement worker. */
  attach(io: number): void {
    const h = this.#ios[io];
    const handle = (m: ProxyMessage) => this.#onMessage(io, m);
    h.on<ProxyMessage>("sock-read", handle);
    h.on<ProxyMessage>("sock-write", handle);
    h.on<ProxyMessage>("sock-close", handle);
  }

  /** Accepts on `listener` until it closes, handing connections out in turn. */
  async accept(listener: Deno.Listener, codec: CodecName): Promise<void> {
    try {
      for await (const conn of listener) {
        try {
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch {
          // Not fatal: only latency suffers.
        }
        const io = this.#pickLive();
        if (io < 0) {
          conn.close();
          continue;
        }
        const id = this.#nextId++;
        this.#sockets.set(id, { conn, io, chain: Promise.resolve() });
        const addr = conn.remoteAddr as Deno.NetAddr;
        this.#ios[io].post({ type: "conn", id, codec, remote: `${addr.hostname}:${addr.port}` });
      }
    } catch {
      // Closed for shutdown.
    }
  }

  #pickLive(): number {
    for (let i = 0; i < this.#ios.length; i++) {
      const io = this.#next;
      this.#next = (this.#next + 1) % this.#ios.length;
      if (this.#ios[io].alive) return io;
    }
    return -1;
  }

  /** Closes every socket still kept (shutdown, after the drain). */
  closeAll(): void {
    for (const s of this.#sockets.values()) closeQuietly(s.conn);
    this.#sockets.clear();
  }

  /** Closes every socket of IO worker `io` (it died). */
  closeAllOf(io: number): void {
    for (const [id, s] of this.#sockets) {
      if (s.io !== io) continue;
      this.#sockets.delete(id);
      closeQuietly(s.conn);
    }
  }

  #onMessage(io: number, m: ProxyMessage): void {
    const s = this.#sockets.get(m.id);
    if (!s || s.io !== io) return;
    const reply = (msg: ProxyMessage, transfer?: Transferable[]) =>
      this.#ios[io].post(msg, transfer);
    switch (m.type) {
      case "sock-read": {
        const buf = new Uint8Array(m.max);
        s.conn.read(buf).then(
          (n) => {
            const bytes = n === null ? null : buf.subarray(0, n);
            reply({ type: "sock-data", id: m.id, bytes }, bytes ? [buf.buffer] : undefined);
          },
          () => reply({ type: "sock-data", id: m.id, bytes: null }),
        );
        break;
      }
      case "sock-write":
        s.chain = s.chain.then(async () => {
          let off = 0;
          try {
            while (off < m.bytes.length) off += await s.conn.write(m.bytes.subarray(off));
            reply({ type: "sock-written", id: m.id, ok: true });
          } catch {
            reply({ type: "sock-written", id: m.id, ok: false });
          }
        });
        break;
      case "sock-close":
        this.#sockets.delete(m.id);
        s.chain = s.chain.then(() => closeQuietly(s.conn));
        break;
    }
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
