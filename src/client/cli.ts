/**
 * `kvclient`: the evkv command-line client (`deno task client -- ...`).
 * Keys and values are taken and shown as UTF-8 text; `--json` output also
 * carries base64 of every byte string, for values that are not text.
 *
 * @example
 * ```sh
 * deno task client -- put user:1 ada --ttl 60000
 * deno task client -- --json get user:1
 * deno task client -- scan user: --limit 10
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import { benchArgs, benchMain } from "../loadgen/bench.ts";
import { backupMain } from "../persist/backup.ts";
import { slowlogMain } from "./slowlog.ts";
import {
  type Client,
  connect,
  ConnectionClosedError,
  DEFAULT_HOST,
  DEFAULT_PORT,
  EvkvError,
} from "./client.ts";

/** Per-call timeout when `--timeout` is not given: a CLI should not hang forever. */
const DEFAULT_TIMEOUT_MS = 5000;
const U32_MAX = 0xffffffff;

/**
 * The text `--help` prints.
 *
 * @example
 * ```ts
 * import { USAGE } from "./cli.ts";
 * console.log(USAGE);
 * ```
 */
export const USAGE: string = `Usage: kvclient [options] <command> [args]

Commands:
  ping [PAYLOAD]                     Round trip to the server; prints PONG and the latency
  get KEY                            Print the value of KEY (exit 1 when it is missing)
  put KEY VALUE [--ttl MS]           Store VALUE under KEY, expiring after MS ms if given
  del KEY                            Delete KEY
  incr KEY [DELTA] [--ttl MS]        Add DELTA (default 1) to the counter KEY; prints the new value
  scan PREFIX [--limit N] [--start-after KEY]
                                     List one page of keys starting with PREFIX
  stats                              Print the server's counters
  bench [options]                    Load generator; "bench --help" lists its options
  backup DIR [--data-dir DIR]        Copy a running server's data files into DIR (local)
  slowlog --resp-port P [get [N]|len|reset]
                                     The server's slow log, over its RESP port

Options:
  --host HOST      Server host (default ${DEFAULT_HOST})
  --port PORT      Server port (default ${DEFAULT_PORT})
  --timeout MS     Per-call timeout in ms, 0 for none (default ${DEFAULT_TIMEOUT_MS})
  --json           Print one JSON object; byte strings also as base64
  --user USER      Authenticate as USER (default: the default user, when a password is given)
  --password-file FILE
                   Authenticate with the password in FILE (its final line break is ignored)
  --tls            Speak TLS; --ca FILE trusts that CA (PEM) instead of the system's
  -h, --help       Print this help

Keys and values are UTF-8 text. Put "--" before a KEY or VALUE that starts with "-".
Exit status: 0 on success, 1 on failure or a missing key, 2 on a usage error.`;

/** A command line that parsed and passed every check, ready to run. */
type Command =
  | { name: "ping"; payload: string | undefined }
  | { name: "get"; key: string }
  | { name: "put"; key: string; value: string; ttlMs: number }
  | { name: "del"; key: string }
  | { name: "incr"; key: string; delta: bigint; ttlMs: number }
  | { name: "scan"; prefix: string; limit: number; startAfter: string | undefined }
  | { name: "stats" };

interface Invocation {
  host: string;
  port: number;
  timeoutMs: number;
  json: boolean;
  command: Command;
  /** --user, --password-file, --tls, --ca. */
  security: { user?: string; passwordFile?: string; tls: boolean; ca?: string };
}

class UsageError extends Error {}

/** How each command names itself in "<Action> failed: ..." messages. */
const ACTION: Record<Command["name"], string> = {
  ping: "Ping",
  get: "Get",
  put: "Put",
  del: "Delete",
  incr: "Incr",
  scan: "Scan",
  stats: "Stats",
};

/**
 * Runs `kvclient` with `args` (without the program name) and resolves with
 * the exit code: 0 success, 1 failure or missing key, 2 usage error. Output
 * goes through `console.log` / `console.error`.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = await main(["--port", "7379", "put", "k", "v"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  // `deno task client -- ...` passes the "--" through; it is not an end of options here.
  if (args[0] === "--") args = args.slice(1);
  const bench = benchArgs(args);
  if (bench) return await benchMain(bench);
  if (args[0] === "backup") return await backupMain(args.slice(1));
  if (args[0] === "slowlog") return await slowlogMain(args.slice(1));
  let inv: Invocation | "help";
  try {
    inv = parseInvocation(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (inv === "help") {
    console.log(USAGE);
    return 0;
  }

  let client: Client;
  try {
    const sec = inv.security;
    const password = sec.passwordFile === undefined
      ? undefined
      : Deno.readTextFileSync(sec.passwordFile).replace(/\r?\n$/, "");
    const caCerts = sec.ca === undefined ? undefined : [Deno.readTextFileSync(sec.ca)];
    client = await connect({
      host: inv.host,
      port: inv.port,
      timeoutMs: inv.timeoutMs,
      user: sec.user,
      password,
      tls: sec.tls || caCerts !== undefined ? { caCerts } : false,
    });
  } catch (err) {
    console.error(`Connect to ${inv.host}:${inv.port} failed: ${describe(err)}`);
    return 1;
  }
  try {
    return await runCommand(client, inv.command, inv.json);
  } catch (err) {
    console.error(`${ACTION[inv.command.name]} failed: ${describe(err)}`);
    return 1;
  } finally {
    await client.close();
  }
}

function parseInvocation(args: string[]): Invocation | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        timeout: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        ttl: { type: "string" },
        limit: { type: "string" },
        "start-after": { type: "string" },
        user: { type: "string" },
        "password-file": { type: "string" },
        tls: { type: "boolean" },
        ca: { type: "string" },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values: v, positionals } = parsed;
  if (v.help) return "help";
  const [name, ...rest] = positionals;
  if (name === undefined) throw new UsageError("Missing command");

  const onlyFor = (flag: "ttl" | "limit" | "start-after", command: string) => {
    if (v[flag] !== undefined && name !== command) {
      throw new UsageError(`--${flag} applies only to ${command}`);
    }
  };
  if (name !== "incr") onlyFor("ttl", "put");
  onlyFor("limit", "scan");
  onlyFor("start-after", "scan");

  const arity = (min: number, max: number, shape: string) => {
    if (rest.length < min || rest.length > max) {
      throw new UsageError(`Wrong number of arguments; expected: ${name} ${shape}`.trimEnd());
    }
  };
  let command: Command;
  switch (name) {
    case "ping":
      arity(0, 1, "[PAYLOAD]");
      command = { name, payload: rest[0] };
      break;
    case "get":
      arity(1, 1, "KEY");
      command = { name, key: rest[0] };
      break;
    case "put":
      arity(2, 2, "KEY VALUE [--ttl MS]");
      command = { name, key: rest[0], value: rest[1], ttlMs: uint("--ttl", v.ttl, 0, U32_MAX) };
      break;
    case "del":
      arity(1, 1, "KEY");
      command = { name, key: rest[0] };
      break;
    case "incr": {
      arity(1, 2, "KEY [DELTA] [--ttl MS]");
      const delta = rest.length > 1 ? rest[1] : "1";
      if (
        !/^-?\d{1,19}$/.test(delta) || BigInt(delta) < -(2n ** 63n) || BigInt(delta) >= 2n ** 63n
      ) {
        throw new UsageError(`incr: DELTA must be a signed 64-bit integer, got "${delta}"`);
      }
      command = {
        name,
        key: rest[0],
        delta: BigInt(delta),
        ttlMs: uint("--ttl", v.ttl, 0, U32_MAX),
      };
      break;
    }
    case "scan":
      arity(1, 1, "PREFIX [--limit N] [--start-after KEY]");
      command = {
        name,
        prefix: rest[0],
        limit: uint("--limit", v.limit, 0, U32_MAX),
        startAfter: v["start-after"],
      };
      break;
    case "stats":
      arity(0, 0, "");
      command = { name };
      break;
    // "bench" never gets here: main() hands it to benchMain() (src/loadgen/bench.ts)
    // before parsing, since its flags are its own.
    default:
      throw new UsageError(`Unknown command: ${name}`);
  }
  return {
    host: v.host ?? DEFAULT_HOST,
    port: uint("--port", v.port ?? String(DEFAULT_PORT), 1, 65535),
    timeoutMs: uint("--timeout", v.timeout ?? String(DEFAULT_TIMEOUT_MS), 0, U32_MAX),
    json: v.json === true,
    command,
    security: { user: v.user, passwordFile: v["password-file"], tls: v.tls === true, ca: v.ca },
  };
}

/** An absent flag is 0; a present one must be a plain decimal integer in range. */
function uint(flag: string, text: string | undefined, min: number, max: number): number {
  if (text === undefined) return 0;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

async function runCommand(client: Client, cmd: Command, json: boolean): Promise<number> {
  switch (cmd.name) {
    case "ping": {
      const t0 = performance.now();
      const echoed = await client.ping(cmd.payload ?? "");
      const latencyMs = Math.round((performance.now() - t0) * 1000) / 1000;
      if (json) print({ pong: true, latencyMs, ...bytesJson("payload", echoed) });
      else console.log(`PONG ${latencyMs.toFixed(3)} ms`);
      return 0;
    }
    case "get": {
      const value = await client.get(cmd.key);
      if (json) {
        print({ key: cmd.key, found: value !== undefined, ...bytesJson("value", value) });
      } else if (value !== undefined) {
        console.log(text(value));
      } else {
        console.error("(not found)");
      }
      return value === undefined ? 1 : 0;
    }
    case "put": {
      const replaced = await client.put(cmd.key, cmd.value, { ttlMs: cmd.ttlMs });
      if (json) print({ key: cmd.key, replaced });
      else console.log(replaced ? "OK (replaced)" : "OK (new)");
      return 0;
    }
    case "incr": {
      const value = await client.incr(cmd.key, cmd.delta, { ttlMs: cmd.ttlMs });
      if (json) print({ key: cmd.key, value: value.toString() });
      else console.log(value.toString());
      return 0;
    }
    case "del": {
      const deleted = await client.delete(cmd.key);
      if (json) print({ key: cmd.key, deleted });
      else console.log(deleted ? "deleted" : "not found");
      return 0;
    }
    case "scan": {
      const page = await client.scan(cmd.prefix, {
        limit: cmd.limit,
        startAfter: cmd.startAfter,
      });
      if (json) {
        print({
          prefix: cmd.prefix,
          entries: page.entries.map((e) => ({
            ...bytesJson("key", e.key),
            ...bytesJson("value", e.value),
          })),
          more: page.more,
        });
      } else {
        for (const e of page.entries) console.log(`${text(e.key)}\t${text(e.value)}`);
        if (page.more) console.log("(more)");
      }
      return 0;
    }
    case "stats": {
      const rows = await client.stats();
      if (json) {
        print({ counters: Object.fromEntries(rows.map((r) => [r.name, r.value])) });
      } else {
        const nameWidth = Math.max(0, ...rows.map((r) => r.name.length));
        const valueWidth = Math.max(0, ...rows.map((r) => String(r.value).length));
        for (const r of rows) {
          console.log(`${r.name.padEnd(nameWidth)}  ${String(r.value).padStart(valueWidth)}`);
        }
      }
      return 0;
    }
  }
}

const utf8 = new TextDecoder();

function text(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

/** `{name: utf8, nameBase64: base64}`, or nothing for an absent value. */
function bytesJson(name: string, bytes: Uint8Array | undefined): Record<string, string> {
  if (bytes === undefined) return {};
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  return { [name]: text(bytes), [`${name}Base64`]: b64 };
}

function print(obj: unknown): void {
  console.log(JSON.stringify(obj));
}

function describe(err: unknown): string {
  if (err instanceof EvkvError) return `${err.statusName}: ${err.message}`;
  if (
    err instanceof ConnectionClosedError && err.cause instanceof Error &&
    !err.message.includes(err.cause.message)
  ) {
    return `${err.message}: ${err.cause.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
