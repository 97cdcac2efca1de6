/**
 * The ceiling of the benchmark suite: a raw TCP echo server in Deno that
 * writes back every byte it reads, one task per connection, nothing parsed.
 * What evkv does on top of moving the same bytes (framing, CRC, protobuf,
 * the store, the thread hand-offs) is the gap between the two.
 *
 * ```sh
 * deno run --unstable-net --allow-net --allow-read bench/echo_server.ts --port 0 --threads 2
 * ```
 *
 * With `--threads N` (N > 1) it runs N workers that each listen on the same
 * port with SO_REUSEPORT, as evkv's IO workers do; otherwise the main thread
 * serves. Prints `echo listening on HOST:PORT (...)`; SIGINT or SIGTERM
 * stops it.
 *
 * @module
 */
import { parseArgs } from "node:util";

interface Start {
  hostname: string;
  port: number;
}

/** Echoes until the peer closes; errors just end the connection. */
async function echo(conn: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    conn.setNoDelay(true);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await conn.write(buf.subarray(off, n));
    }
  } catch {
    // Reset by the peer, or closed at shutdown.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** Accepts until the listener closes. */
async function serveEcho(listener: Deno.TcpListener): Promise<void> {
  try {
    for await (const conn of listener) echo(conn);
  } catch {
    // Listener closed.
  }
}

function listen(start: Start, reusePort: boolean): Deno.TcpListener {
  return Deno.listen({ hostname: start.hostname, port: start.port, transport: "tcp", reusePort });
}

interface WorkerScope {
  postMessage(message: number): void;
  onmessage: ((e: MessageEvent<Start>) => void) | null;
}

if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  const scope = globalThis as unknown as WorkerScope;
  scope.onmessage = (e) => {
    const listener = listen(e.data, true);
    scope.postMessage(listener.addr.port);
    serveEcho(listener);
  };
} else if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "7380" },
      threads: { type: "string", default: "1" },
    },
  });
  const threads = Number(values.threads);
  let port = Number(values.port);
  if (!Number.isInteger(threads) || threads < 1 || !Number.isInteger(port) || port < 0) {
    console.error("Usage: echo_server.ts [--host ADDR] [--port N] [--threads N]");
    Deno.exit(2);
  }
  const hostname = values.host;
  const workers: Worker[] = [];
  let listener: Deno.TcpListener | null = null;
  if (threads === 1) {
    listener = listen({ hostname, port }, false);
    port = listener.addr.port;
    serveEcho(listener);
  } else {
    for (let i = 0; i < threads; i++) {
      const w = new Worker(import.meta.url, { type: "module", name: `echo-${i}` });
      workers.push(w);
      // One at a time: the first binds port 0 to a real port the others join.
      port = await new Promise<number>((resolve, reject) => {
        w.onmessage = (e: MessageEvent<number>) => resolve(e.data);
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`Start echo worker ${i}: ${e.message}`));
        };
        w.postMessage({ hostname, port });
      });
    }
  }
  console.log(`echo listening on ${hostname}:${port} (pid ${Deno.pid}, threads ${threads})`);
  const stop = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", () => stop.resolve());
  Deno.addSignalListener("SIGTERM", () => stop.resolve());
  await stop.promise;
  listener?.close();
  for (const w of workers) w.terminate();
  Deno.exit(0);
}
