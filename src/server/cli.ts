/**
 * `deno task serve`: runs the KV server until SIGINT or SIGTERM, prints the
 * resource table on SIGUSR2 and at exit.
 *
 * @module
 */
import { Res, RESOURCE_KINDS } from "../stats/resources.ts";
import { parseServeFlags, SERVE_USAGE } from "./config.ts";
import { serve } from "./server.ts";
import { argsWithConfig } from "../ops/config_file.ts";
import type { LogFields } from "../ops/log.ts";
import type { ServeOptions, Server } from "./server.ts";

/** Runs the server command; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseServeFlags(await argsWithConfig(args));
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    console.error(SERVE_USAGE);
    return 2;
  }
  if (flags.help) {
    console.log(SERVE_USAGE);
    return 0;
  }
  const server = await serve(flags.options);
  const log = flags.logger;
  const { ioThreads, taskThreads, mode } = server.layout;
  const o = flags.options;
  const resp = server.addr.respPort === undefined ? "" : `, RESP on ${server.addr.respPort}`;
  const metrics = server.addr.metricsPort === undefined
    ? ""
    : `, metrics on ${server.addr.metricsPort}`;
  const listening =
    `evkv listening on ${server.addr.hostname}:${server.addr.port}${resp}${metrics} ` +
    `(pid ${Deno.pid}, mode ${mode}, accept ${o.accept ?? "reuseport"}, ` +
    `io workers ${ioThreads}, task workers ${taskThreads})`;
  log.info(listening, listeningFields(server, o), listening);
  if (flags.testLeak) {
    // Test-only: proves that the exit check reports a kind left held.
    server.leakForTest(Res[flags.testLeak]);
  }
  const dump = () => log.block("info", "resource table", server.dump());
  Deno.addSignalListener("SIGUSR2", dump);
  const stop = Promise.withResolvers<string>();
  const onInt = () => stop.resolve("SIGINT");
  const onTerm = () => stop.resolve("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  const signal = await stop.promise;
  log.info(`${signal}: draining`, { signal });
  const report = await server.shutdown();
  Deno.removeSignalListener("SIGUSR2", dump);
  Deno.removeSignalListener("SIGINT", onInt);
  Deno.removeSignalListener("SIGTERM", onTerm);
  log.block("info", "resource table at exit", report.dump);
  if (report.forced) log.warn("drain timed out; connections were closed by force");
  if (report.leaks.length > 0) {
    const kinds = report.leaks.map((k) => {
      const r = report.final.resources[k];
      return `${k} (held ${r.heldBytes} B, alloc ${r.alloc}, free ${r.free})`;
    });
    log.error(`resources not released at exit: ${kinds.join(", ")}`);
    return flags.strictLeaks ? 1 : 0;
  }
  log.info(`stopped cleanly; all ${RESOURCE_KINDS.length} resource kinds back to zero`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

/** The start line's facts as JSON log fields. */
function listeningFields(
  server: { addr: Server["addr"]; layout: Server["layout"] },
  o: ServeOptions,
): LogFields {
  return {
    host: server.addr.hostname,
    port: server.addr.port,
    resp_port: server.addr.respPort ?? null,
    metrics_port: server.addr.metricsPort ?? null,
    pid: Deno.pid,
    mode: server.layout.mode,
    accept: o.accept ?? "reuseport",
    io_workers: server.layout.ioThreads,
    task_workers: server.layout.taskThreads,
  };
}
