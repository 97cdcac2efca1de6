/**
 * `deno task serve`: runs the KV server until SIGINT or SIGTERM, prints the
 * resource table on SIGUSR2 and at exit.
 *
 * @module
 */
import { Res, RESOURCE_KINDS } from "../stats/resources.ts";
import { parseServeFlags, SERVE_USAGE } from "./config.ts";
import { serve, type ServeOptions, type Server } from "./serve.ts";
import type { ShutdownReport } from "../server/main/server.ts";
import { loadLine } from "../persist/manager.ts";

/**
 * The exit code after a shutdown: 1 when a resource kind is not back to
 * zero and either the drain timed out (something never finished: the
 * process must not look like it stopped cleanly) or `--strict-leaks` asks
 * for it; else 0.
 *
 * @example
 * ```ts
 * import { exitCodeFor } from "./cli.ts";
 * const report = { forced: true, leaks: ["task"] } as const;
 * exitCodeFor(report, false); // 1
 * ```
 */
export function exitCodeFor(
  report: Pick<ShutdownReport, "forced" | "leaks">,
  strictLeaks: boolean,
): number {
  if (report.leaks.length === 0) return 0;
  return report.forced || strictLeaks ? 1 : 0;
}
import { loadSecurity } from "../auth/load.ts";
import { argsWithConfig } from "../ops/config_file.ts";
import type { LogFields } from "../ops/log.ts";

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
  const log = flags.logger;
  let server;
  let security;
  try {
    security = loadSecurity(flags.security);
  } catch (e) {
    // One line saying what to fix (protected mode, a missing file, a bad ACL rule).
    log.error(e instanceof Error ? e.message : String(e));
    return 1;
  }
  try {
    server = await serve({ ...flags.options, ...security });
  } catch (e) {
    // One line, not a stack: a bad data dir, a port in use, a shard file that fails to load.
    // Each start error names the step that failed ("Open data dir ...", "Start evkv-io-0: ...").
    log.error(e instanceof Error ? e.message : String(e));
    return 1;
  }
  const persisted = server.persistence();
  if (persisted) log.info(loadLine(persisted));
  const { ioThreads, taskThreads, mode } = server.layout;
  const o = flags.options;
  const resp = server.addr.respPort === undefined ? "" : `, RESP on ${server.addr.respPort}`;
  const metrics = server.addr.metricsPort === undefined
    ? ""
    : `, metrics on ${server.addr.metricsPort}`;
  const listening =
    `evkv listening on ${server.addr.hostname}:${server.addr.port}${resp}${metrics} ` +
    `(pid ${Deno.pid}, mode ${mode}, accept ${o.accept ?? "reuseport"}, ` +
    `io workers ${ioThreads}, task workers ${taskThreads}` +
    `${security.tls ? ", TLS only" : ""}${server.authRequired ? ", auth required" : ""})`;
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
    log.error(
      report.forced
        ? `drain timed out with resources still held: ${kinds.join(", ")}`
        : `resources not released at exit: ${kinds.join(", ")}`,
    );
    return exitCodeFor(report, flags.strictLeaks);
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
