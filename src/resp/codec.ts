/**
 * The RESP2 codec: Redis's protocol on the same IO workers, task rings and
 * shards as wire v1, so redis-cli and redis-benchmark work against the KV
 * store. Commands become calls on the KV service.
 *
 * @module
 */
import type { CallSite, Codec } from "../server/codec.ts";
import { CLOSE_AFTER_REPLY } from "../server/codec.ts";
import type { Connection } from "../server/connection.ts";
import { COMMANDS, unknownCommand, wrongArity } from "./commands.ts";
import { checkCommand, RespProtocolError } from "./frame.ts";
import { error } from "./reply.ts";
import { Session } from "./session.ts";
import { respCommandIndex } from "../ops/command_index.ts";

/** Command names are short ASCII: lower-cased without a TextDecoder per command. */
function commandName(bytes: Uint8Array): string {
  if (bytes.length > 32) return "";
  let name = "";
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    name += String.fromCharCode(c >= 65 && c <= 90 ? c + 32 : c);
  }
  return name;
}

function session(conn: Connection): Session {
  return conn.codecState as Session;
}

/** The RESP2 codec. */
export const respCodec: Codec = {
  name: "RESP2",

  open(conn: Connection): void {
    conn.codecState = new Session();
  },

  check(conn: Connection, buf: Uint8Array, start: number, end: number, maxBody: number): number {
    const s = session(conn);
    if (s.quitting) return CLOSE_AFTER_REPLY;
    try {
      return checkCommand(buf, start, end, maxBody, s.args);
    } catch (e) {
      if (!(e instanceof RespProtocolError)) throw e;
      s.reply(conn, error(`ERR Protocol error: ${e.message}`));
      return CLOSE_AFTER_REPLY;
    }
  },

  sizeHint(): number {
    return 0;
  },

  dispatch(conn: Connection, buf: Uint8Array, off: number, _total: number, site: CallSite): void {
    const s = session(conn);
    const spans = s.args;
    let args: Uint8Array[];
    if (spans.inline) args = spans.inline;
    else {
      args = new Array(spans.count);
      for (let i = 0; i < spans.count; i++) {
        args[i] = buf.subarray(spans.spans[2 * i], spans.spans[2 * i + 1]);
      }
    }
    if (spans.at !== off || args.length === 0) return; // an empty line or `*0`
    const name = commandName(args[0]);
    s.track.begin(respCommandIndex(name), conn.arrivedAt);
    // Own properties only: "constructor" or "__proto__" are not commands.
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!command) return s.reply(conn, unknownCommand(args[0], args.slice(1)));
    const n = args.length;
    if ((command.arity > 0 && n !== command.arity) || (command.arity < 0 && n < -command.arity)) {
      return s.reply(conn, wrongArity(name));
    }
    command.run({ conn, site, session: s }, args.slice(1));
  },
};
