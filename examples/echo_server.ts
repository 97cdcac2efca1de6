/**
 * Starts the echo service: `deno run --unstable-net --allow-net --allow-read
 * examples/echo_server.ts [serve flags]`. Same flags and signals as
 * `deno task serve`.
 *
 * @module
 */
import { parseServeFlags, serve } from "../mod.ts";

const flags = parseServeFlags(Deno.args);
const server = await serve({
  ...flags.options,
  service: new URL("./echo_service.ts", import.meta.url),
});
console.log(`echo service listening on ${server.addr.hostname}:${server.addr.port}`);
const stop = Promise.withResolvers<void>();
Deno.addSignalListener("SIGINT", () => stop.resolve());
Deno.addSignalListener("SIGTERM", () => stop.resolve());
await stop.promise;
const report = await server.shutdown();
console.log(report.dump);
