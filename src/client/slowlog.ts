/**
 * `kvclient slowlog`: reads or resets a server's slow log through its RESP
 * port (`SLOWLOG GET/LEN/RESET`), since that is where Redis tools look.
 *
 * @example
 * ```sh
 * deno task client -- slowlog --resp-port 6380            # the newest 10
 * deno task client -- slowlog --resp-port 6380 get 50 --json
 * deno task client -- slowlog --resp-port 6380 reset
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DEFAULT_HOST } from "./client.ts";

/** Usage of `kvclient slowlog`. */
export const SLOWLOG_USAGE: string =
  `Usage: kvclient slowlog --resp-port PORT [get [N] | len | reset]

  get [N]          the newest N entries (default 10; -1 for all)
  len              how many entries there are
  reset            empty the slow log
  --host HOST      server host (default ${DEFAULT_HOST})
  --resp-port PORT the server's RESP port (--resp-port of deno task serve)
  --json           one JSON object
Entries are requests slower than the server's --slowlog-threshold-us.`;

/** One slow log entry as printed. */
export interface SlowlogRow {
  /** Entry id, increasing. */
  id: number;
  /** When, ISO 8601. */
  time: string;
  /** µs from the request's arrival to the write of its reply. */
  durationUs: number;
  /** The command or method. */
  command: string;
  /** The client's host:port. */
  client: string;
}

type Reply = string | number | null | Reply[] | Error;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Sends one command and reads its whole reply. */
async function respCall(host: string, port: number, args: string[]): Promise<Reply> {
  const conn = await Deno.connect({ hostname: host, port });
  try {
    let out = `*${args.length}\r\n`;
    for (const a of args) out += `$${encoder.encode(a).length}\r\n${a}\r\n`;
    await conn.write(encoder.encode(out));
    let buf = new Uint8Array(0);
    let at = 0;
    const more = async () => {
      const chunk = new Uint8Array(64 * 1024);
      const n = await conn.read(chunk);
      if (n === null) throw new Error("Read SLOWLOG reply: the server closed the connection");
      const next = new Uint8Array(buf.length - at + n);
      next.set(buf.subarray(at));
      next.set(chunk.subarray(0, n), buf.length - at);
      buf = next;
      at = 0;
    };
    const line = async (): Promise<string> => {
      for (;;) {
        const end = buf.indexOf(10, at);
        if (end > at && buf[end - 1] === 13) {
          const s = decoder.decode(buf.subarray(at, end - 1));
          at = end + 1;
          return s;
        }
        await more();
      }
    };
    const value = async (): Promise<Reply> => {
      const l = await line();
      const rest = l.slice(1);
      switch (l[0]) {
        case "+":
          return rest;
        case "-":
          return new Error(rest);
        case ":":
          return Number(rest);
        case "$": {
          const n = Number(rest);
          if (n < 0) return null;
          while (buf.length - at < n + 2) await more();
          const s = decoder.decode(buf.subarray(at, at + n));
          at += n + 2;
          return s;
        }
        case "*": {
          const n = Number(rest);
          const items: Reply[] = [];
          for (let i = 0; i < n; i++) items.push(await value());
          return items;
        }
      }
      throw new Error(`Read SLOWLOG reply: unexpected line "${l.slice(0, 40)}"`);
    };
    return await value();
  } finally {
    conn.close();
  }
}

/**
 * Runs `kvclient slowlog ...` (`args` after the word `slowlog`); resolves
 * with the exit code.
 *
 * @example
 * ```ts ignore
 * import { slowlogMain } from "./slowlog.ts";
 * await slowlogMain(["--resp-port", "6380", "len"]);
 * ```
 */
export async function slowlogMain(args: string[]): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      allowNegative: false,
      options: {
        host: { type: "string" },
        "resp-port": { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`${e instanceof Error ? e.message : e}\n\n${SLOWLOG_USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(SLOWLOG_USAGE);
    return 0;
  }
  const port = Number(values["resp-port"]);
  const sub = (positionals[0] ?? "get").toLowerCase();
  const count = positionals[1] ?? "10";
  if (
    !Number.isInteger(port) || port < 1 || port > 65535 ||
    !["get", "len", "reset"].includes(sub) || (sub === "get" && !/^-?\d+$/.test(count)) ||
    positionals.length > (sub === "get" ? 2 : 1)
  ) {
    console.error(`Slowlog: bad arguments\n\n${SLOWLOG_USAGE}`);
    return 2;
  }
  let reply: Reply;
  try {
    const cmd = sub === "get" ? ["SLOWLOG", "GET", count] : ["SLOWLOG", sub.toUpperCase()];
    reply = await respCall(values.host ?? DEFAULT_HOST, port, cmd);
  } catch (e) {
    console.error(`Slowlog failed: ${e instanceof Error ? e.message : e}`);
    return 1;
  }
  if (reply instanceof Error) {
    console.error(`Slowlog failed: ${reply.message}`);
    return 1;
  }
  if (sub !== "get") {
    console.log(values.json ? JSON.stringify({ [sub]: reply }) : String(reply));
    return 0;
  }
  const rows: SlowlogRow[] = (reply as Reply[][]).map((e) => ({
    id: e[0] as number,
    time: new Date((e[1] as number) * 1000).toISOString(),
    durationUs: e[2] as number,
    command: ((e[3] as string[]) ?? []).join(" "),
    client: e[4] as string,
  }));
  if (values.json) {
    console.log(JSON.stringify({ entries: rows }));
    return 0;
  }
  console.log(
    `${"id".padStart(8)}  ${"time".padEnd(24)}  ${"duration_us".padStart(12)}  ${
      "command".padEnd(12)
    }  client`,
  );
  for (const r of rows) {
    console.log(
      `${String(r.id).padStart(8)}  ${r.time.padEnd(24)}  ${String(r.durationUs).padStart(12)}  ${
        r.command.padEnd(12)
      }  ${r.client}`,
    );
  }
  return 0;
}
