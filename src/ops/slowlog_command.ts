/**
 * RESP `SLOWLOG GET [count] | LEN | RESET | HELP`, as Redis answers them,
 * over the slow logs of every IO worker (src/ops/recorder.ts). Each entry
 * is `[id, unix time (s), duration (µs), [command], client, ""]`; only the
 * command's name is kept (not its arguments), so a slow log never holds
 * keys or values.
 *
 * @module
 */
import { type Command, respCommandNames } from "../resp/command_table.ts";
import { array, bulk, error, integer, OK } from "../resp/reply.ts";
import { readSlowlog, recorder, resetSlowlog, type SlowEntry } from "./recorder.ts";

const decoder = new TextDecoder();

function nameOf(e: SlowEntry, methods: Readonly<Record<number, { name: string }>>): string {
  if (e.protocol === "resp") return respCommandNames()[e.code] ?? "unknown";
  return methods[e.code]?.name ?? `method ${e.code}`;
}

/** The SLOWLOG command. */
export const slowlogCommand: Command = {
  arity: -2,
  run(ctx, args) {
    const reply = (b: Uint8Array) => ctx.session.reply(ctx.conn, b);
    const sub = decoder.decode(args[0]).toUpperCase();
    const mem = recorder.memory;
    if (mem === null) return reply(error("ERR SLOWLOG is not available in this thread"));
    if (sub === "LEN" && args.length === 1) return reply(integer(readSlowlog(mem).length));
    if (sub === "RESET" && args.length === 1) {
      resetSlowlog(mem.slowlog);
      return reply(OK);
    }
    if (sub === "HELP" && args.length === 1) {
      return reply(array([
        bulk("SLOWLOG GET [<count>]: the newest entries (default 10, -1 for all)."),
        bulk("SLOWLOG LEN: how many entries there are."),
        bulk("SLOWLOG RESET: empties the slow log."),
      ]));
    }
    if (sub === "GET" && args.length <= 2) {
      let count = 10;
      if (args.length === 2) {
        const s = decoder.decode(args[1]);
        if (!/^-?\d{1,9}$/.test(s) || Number(s) < -1) {
          return reply(error("ERR count should be greater than or equal to -1"));
        }
        count = Number(s) === -1 ? Infinity : Number(s);
      }
      const methods = ctx.dispatcher.service.methods;
      const entries = readSlowlog(mem).slice(0, count).map((e) =>
        array([
          integer(e.id),
          integer(Math.floor(e.unixMs / 1000)),
          integer(e.durationUs),
          array([bulk(nameOf(e, methods))]),
          bulk(e.client),
          bulk(""),
        ])
      );
      return reply(array(entries));
    }
    reply(
      error(`ERR unknown subcommand or wrong number of arguments for '${sub}'. Try SLOWLOG HELP.`),
    );
  },
};
