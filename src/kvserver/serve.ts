/**
 * The KV server, assembled: the generic server (src/server) with the KV
 * service as its default service and the Redis protocol (RESP2) as the
 * protocol `respPort` asks for. The generic server names neither; this is
 * where the list of protocols is wired.
 *
 * @module
 */
import { type RunningServer, type ServerOptions, startServer } from "../server/main/server.ts";

/**
 * URL of the KV service module, the default `service` of {@link serve}.
 *
 * @example
 * ```ts
 * import { KV_SERVICE_URL, serve } from "@evkv/evkv";
 * const server = await serve({ service: KV_SERVICE_URL, port: 0 });
 * await server.shutdown();
 * ```
 */
export const KV_SERVICE_URL: string = new URL("../kv/service.ts", import.meta.url).href;
/** The RESP door's codec, for `respPort`: loaded by the IO workers, imported by nothing here. */
const RESP_CODEC_URL = new URL("../resp/codec.ts", import.meta.url).href;

/** Options of {@link serve}; every field has a default. */
export interface ServeOptions extends Omit<ServerOptions, "service" | "protocols"> {
  /** URL of the service module (its default export is the service). Default: the KV service. */
  service?: string | URL;
  /**
   * Also serve the Redis protocol (RESP2) on this port, on the same workers
   * and store. Off when absent; 0 picks a free port.
   */
  respPort?: number;
}

/** A running server started by {@link serve}: its address also names the RESP port. */
export interface Server extends RunningServer {
  /** Where it listens. */
  readonly addr: RunningServer["addr"] & {
    /** The RESP port, when `respPort` was given. */
    respPort?: number;
  };
}

/**
 * Starts a server and resolves once it accepts connections. It serves the
 * KV service unless `service` names another.
 *
 * @example
 * ```ts
 * import { serve } from "@evkv/evkv";
 * const server = await serve({ port: 0, ioThreads: 2, workers: 2 });
 * console.log(`listening on ${server.addr.port}`);
 * await server.shutdown();
 * ```
 */
export async function serve(options: ServeOptions = {}): Promise<Server> {
  const { respPort, ...rest } = options;
  const service = String(options.service ?? KV_SERVICE_URL);
  const server = await startServer({
    ...rest,
    service,
    // The guard checks calls against the KV service's methods: the KV service always gets it.
    auth: service === KV_SERVICE_URL ? options.auth ?? {} : options.auth,
    protocols: respPort === undefined ? {} : { resp: { codecUrl: RESP_CODEC_URL, port: respPort } },
  });
  const addr = { ...server.addr, respPort: server.addr.protocols.resp };
  return { ...server, addr };
}
