/**
 * TLS listeners for both ports. Plain server TLS uses Deno's own listener
 * (rustls), with `SO_REUSEPORT` per IO worker as the TCP listener has.
 * Deno's listener cannot ask for client certificates, so
 * `--tls-client-auth` goes through `node:tls`, whose sockets are adapted to
 * the server's {@link Transport} here.
 *
 * @module
 */
import type { TLSSocket } from "node:tls";
import type { Transport } from "../server/io/transport.ts";

/**
 * TLS settings of a server (`serve({ tls })`): PEM text, not file names.
 *
 * @example
 * ```ts
 * import type { TlsOptions } from "@evkv/evkv";
 * const tls: TlsOptions = {
 *   cert: Deno.readTextFileSync("server.crt"),
 *   key: Deno.readTextFileSync("server.key"),
 * };
 * ```
 */
export interface TlsOptions {
  /** Certificate chain (PEM). */
  cert: string;
  /** Private key (PEM). */
  key: string;
  /** CA certificates (PEM) that client certificates must chain to; needed by {@link clientAuth}. */
  ca?: string;
  /** Require a client certificate signed by {@link ca}. */
  clientAuth?: boolean;
}

/** A listener the IO worker can close. */
export interface Closable {
  /** Stops accepting. */
  close(): void;
}

/**
 * Listens with Deno's TLS listener: the accepted connections are
 * `Deno.Conn`s like TCP ones, carried inside TLS from the first byte.
 *
 * @example
 * ```ts
 * import { listenTls } from "./tls.ts";
 * // const l = listenTls("127.0.0.1", 0, { cert, key }, true);
 * ```
 */
export function listenTls(
  hostname: string,
  port: number,
  o: TlsOptions,
  reusePort: boolean,
): Deno.Listener {
  return Deno.listenTls({ hostname, port, cert: o.cert, key: o.key, reusePort });
}

/** Bytes a node socket may buffer before it is paused until read. */
const MAX_BUFFERED = 256 * 1024;

/** A `node:tls` socket as a {@link Transport}: reads pull from what arrived. */
class NodeSocketTransport implements Transport {
  readonly #sock: TLSSocket;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #waiter: { p: Uint8Array; done: (n: number | null) => void } | null = null;

  constructor(sock: TLSSocket) {
    this.#sock = sock;
    sock.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered > MAX_BUFFERED) sock.pause();
      this.#serve();
    });
    const end = () => {
      this.#ended = true;
      this.#serve();
    };
    sock.on("end", end);
    sock.on("close", end);
    sock.on("error", end);
  }

  #serve(): void {
    const w = this.#waiter;
    if (w === null) return;
    if (this.#chunks.length > 0) {
      this.#waiter = null;
      w.done(this.#take(w.p));
    } else if (this.#ended) {
      this.#waiter = null;
      w.done(null);
    }
  }

  #take(p: Uint8Array): number {
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const c = this.#chunks[0];
      const k = Math.min(c.length, p.length - n);
      p.set(c.subarray(0, k), n);
      n += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#buffered -= n;
    if (this.#buffered <= MAX_BUFFERED && this.#sock.isPaused()) this.#sock.resume();
    return n;
  }

  read(p: Uint8Array): Promise<number | null> {
    if (this.#chunks.length > 0) return Promise.resolve(this.#take(p));
    if (this.#ended) return Promise.resolve(null);
    return new Promise((done) => this.#waiter = { p, done });
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#ended) return Promise.reject(new Error("Write: the connection is closed"));
    // The caller reuses its buffer once this resolves: hand node a copy.
    const bytes = p.slice();
    return new Promise((done, fail) =>
      this.#sock.write(bytes, (err) => err ? fail(err) : done(bytes.length))
    );
  }

  close(): void {
    this.#ended = true;
    this.#sock.destroy();
    this.#serve();
  }
}

/**
 * Listens with `node:tls`, requiring a client certificate that chains to
 * `o.ca`; a client without one fails the handshake and is never seen.
 * Resolves once listening.
 *
 * @example
 * ```ts
 * import { listenClientAuth } from "./tls.ts";
 * // const l = await listenClientAuth("127.0.0.1", 0, { cert, key, ca, clientAuth: true }, true,
 * //   (transport, remote) => console.log("client", remote));
 * ```
 */
export async function listenClientAuth(
  hostname: string,
  port: number,
  o: TlsOptions,
  reusePort: boolean,
  onConn: (transport: Transport, remote: string) => void,
): Promise<Closable & { port: number }> {
  // Loaded only here: the node compatibility layer stays out of servers that never need it.
  const tls = await import("node:tls");
  const server = tls.createServer({
    cert: o.cert,
    key: o.key,
    ca: o.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.2",
  }, (sock) => {
    sock.setNoDelay(true);
    onConn(new NodeSocketTransport(sock), `${sock.remoteAddress}:${sock.remotePort}`);
  });
  // A failed handshake (no or wrong certificate, plain TCP) only ends that socket.
  server.on("tlsClientError", () => {});
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: hostname, port, reusePort }, () => {
      const addr = server.address();
      resolve({
        port: typeof addr === "object" && addr !== null ? addr.port : port,
        close: () => server.close(),
      });
    });
  });
}
