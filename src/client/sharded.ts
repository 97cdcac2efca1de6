/**
 * A client over several evkv servers that places each key where twemproxy
 * (Debian's `nutcracker`) would, so that wire v1 clients and RESP clients
 * behind the proxy see one keyspace. See `examples/nutcracker.yml`.
 *
 * @module
 */
import {
  type BytesLike,
  type CallOptions,
  type Client,
  connect,
  type PutOptions,
} from "./client.ts";
import { type KetamaHash, KetamaRing } from "./ketama.ts";

/** One server of a sharded client. */
export interface ShardedServer {
  /** Host of its wire v1 port. Default `127.0.0.1`. */
  host?: string;
  /** Its wire v1 port. */
  port: number;
  /**
   * Its name on the ring: the name given after the weight in twemproxy's
   * `servers:` line (`127.0.0.1:6380:1 evkv-a`). Without one, twemproxy
   * names a server by its `host:port`, which is the RESP port it proxies
   * to, not this wire port: give names in both places so that they agree.
   */
  name?: string;
  /** Weight, as in twemproxy's config. Default 1. */
  weight?: number;
}

/** Options of {@link connectSharded}. */
export interface ShardedOptions {
  /** twemproxy's `hash:`. Default `fnv1a_64`. */
  hash?: KetamaHash;
  /** twemproxy's `hash_tag:`, e.g. `"{}"`. Default none. */
  hashTag?: string;
  /** Default timeout of every call, ms; 0 = none. */
  timeoutMs?: number;
}

/** Calls go to the server that owns their key. */
export class ShardedClient implements AsyncDisposable {
  /** One client per server, in the order given. */
  readonly clients: readonly Client[];
  /** The ring that places keys. */
  readonly ring: KetamaRing;

  /** Wraps connected clients; use {@link connectSharded}. */
  constructor(clients: Client[], ring: KetamaRing) {
    this.clients = clients;
    this.ring = ring;
  }

  /** Index of the server that owns `key`. */
  serverFor(key: BytesLike): number {
    return this.ring.nodeFor(key);
  }

  /** The client of the server that owns `key`. */
  clientFor(key: BytesLike): Client {
    return this.clients[this.ring.nodeFor(key)];
  }

  /** Reads `key` from its server; undefined when missing. */
  get(key: BytesLike, opts?: CallOptions): Promise<Uint8Array | undefined> {
    return this.clientFor(key).get(key, opts);
  }

  /** Stores `key` on its server; true when it replaced a value. */
  put(key: BytesLike, value: BytesLike, opts?: PutOptions): Promise<boolean> {
    return this.clientFor(key).put(key, value, opts);
  }

  /** Deletes `key` on its server; true when it existed. */
  delete(key: BytesLike, opts?: CallOptions): Promise<boolean> {
    return this.clientFor(key).delete(key, opts);
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Connects to every server and places keys with twemproxy's ketama ring.
 *
 * @example
 * ```ts
 * import { connectSharded } from "@evkv/evkv/client";
 * // twemproxy: servers: ["127.0.0.1:6380:1 a", "127.0.0.1:6381:1 b"], hash: fnv1a_64
 * await using kv = await connectSharded([
 *   { port: 7380, name: "a" },
 *   { port: 7381, name: "b" },
 * ]);
 * await kv.put("user:1", "ada");
 * ```
 */
export async function connectSharded(
  servers: readonly ShardedServer[],
  options: ShardedOptions = {},
): Promise<ShardedClient> {
  const ring = new KetamaRing(
    servers.map((s) => ({
      name: s.name ?? `${s.host ?? "127.0.0.1"}:${s.port}`,
      weight: s.weight,
    })),
    { hash: options.hash, hashTag: options.hashTag },
  );
  const clients: Client[] = [];
  try {
    for (const s of servers) {
      clients.push(await connect({ host: s.host, port: s.port, timeoutMs: options.timeoutMs }));
    }
  } catch (err) {
    await Promise.all(clients.map((c) => c.close()));
    throw err;
  }
  return new ShardedClient(clients, ring);
}
