/**
 * Authentication on the Redis port: the gate every command passes
 * ({@link respGate}), `AUTH [user] password`, `ACL WHOAMI|LIST|USERS|CAT`,
 * and {@link respAuthenticate} for `HELLO ... AUTH user password`, with
 * Redis 7's exact replies and errors.
 *
 * @module
 */
import { DEFAULT_USER, describeUser } from "../auth/acl.ts";
import { CATEGORIES, COMMAND_INDEX, COMMAND_TABLE } from "../auth/commands.ts";
import type { ConnAuth } from "../auth/guard.ts";
import type { Connection } from "../server/io/connection.ts";
import type { Command, CommandContext } from "./command_table.ts";
import { array, bulk, error, OK } from "./reply.ts";
import type { Session } from "./session.ts";

/** Redis's reply to a command sent before authenticating. */
export const NOAUTH: Uint8Array = error("NOAUTH Authentication required.");
/** Redis's reply to a wrong password, an unknown user or a disabled one. */
export const WRONGPASS: Uint8Array = error(
  "WRONGPASS invalid username-password pair or user is disabled.",
);
/** Redis's reply to a key outside the user's patterns. */
export const NOPERM_KEY: Uint8Array = error(
  "NOPERM this user has no permissions to access one of the keys used as arguments",
);
/** Redis's reply to `AUTH password` when the default user has no password. */
const NO_DEFAULT_PASSWORD = error(
  "ERR AUTH <password> called without any password configured for the default user. " +
    "Are you sure your configuration is correct?",
);

const decoder = new TextDecoder();
const text = (b: Uint8Array) => decoder.decode(b);

/** The literal start of a MATCH pattern: every key it matches begins with these bytes. */
function literalPrefix(p: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === 0x2a || c === 0x3f || c === 0x5b) break;
    if (c === 0x5c && i + 1 < p.length) out.push(p[++i]);
    else out.push(c);
  }
  return Uint8Array.from(out);
}

/** Commands whose rules are per subcommand (`acl`). */
const PARENTS = new Set(
  COMMAND_TABLE.filter((c) => c.name.includes("|")).map((c) => c.name.split("|")[0]),
);

/** The name rules know a command by: `acl|whoami` for a known subcommand. */
function fullName(name: string, args: Uint8Array[]): string {
  if (args.length === 0 || !PARENTS.has(name)) return name;
  const sub = `${name}|${text(args[0]).toLowerCase()}`;
  return COMMAND_INDEX.has(sub) ? sub : name;
}

/**
 * Checks a command against its connection's user before it runs; true to
 * run it, false when a refusal was queued instead. Called only for
 * connections whose {@link ConnAuth.restricted} is set, after the arity
 * check (Redis's order: unknown command, arity, NOAUTH, NOPERM).
 *
 * @example
 * ```ts
 * // In the RESP codec, before command.run:
 * // if (conn.auth?.restricted && !respGate(conn, session, name, args)) return;
 * ```
 */
export function respGate(
  conn: Connection,
  session: Session,
  name: string,
  args: Uint8Array[],
): boolean {
  const auth = conn.auth!;
  const user = auth.user;
  const full = fullName(name, args);
  const i = COMMAND_INDEX.get(full) ?? COMMAND_INDEX.get(name);
  const info = i === undefined ? undefined : COMMAND_TABLE[i];
  // AUTH, HELLO and QUIT pass whoever asks, as in Redis (CMD_NO_AUTH).
  if (info?.noAuth) return true;
  if (user === null) {
    session.reply(conn, NOAUTH);
    return false;
  }
  // An unknown subcommand is left to its command to refuse, as Redis does.
  if (PARENTS.has(name) && full === name) return true;
  if (!user.mayRun(full)) {
    session.reply(conn, error(`NOPERM this user has no permissions to run the '${full}' command`));
    return false;
  }
  if (user.spec.allKeys) return true;
  let ok = true;
  switch (info?.keys ?? "unknown") {
    case "first":
      ok = user.mayTouch(args[0]);
      break;
    case "all":
      ok = args.every((k) => user.mayTouch(k));
      break;
    case "pairs":
      for (let k = 0; k < args.length && ok; k += 2) ok = user.mayTouch(args[k]);
      break;
    case "scan": {
      let prefix: Uint8Array = new Uint8Array(0);
      for (let k = 1; k + 1 < args.length; k++) {
        if (text(args[k]).toUpperCase() === "MATCH") prefix = literalPrefix(args[++k]);
      }
      ok = user.mayScan(prefix);
      break;
    }
    case "none":
      break;
    default:
      // A command this table does not know may have keys: only allkeys users run it.
      ok = false;
  }
  if (!ok) session.reply(conn, NOPERM_KEY);
  return ok;
}

/**
 * Authenticates `conn` as `user` with `password`, as `AUTH` and `HELLO ...
 * AUTH` do: null on success, else the error reply to send (WRONGPASS, with
 * the failure counted, logged and the connection slowed). A user with
 * `nopass` accepts any password, as in Redis.
 *
 * @example
 * ```ts
 * // HELLO's AUTH clause: const refusal = respAuthenticate(conn, user, pass);
 * // if (refusal) return session.reply(conn, refusal);
 * ```
 */
export function respAuthenticate(
  conn: Connection,
  user: Uint8Array | string,
  password: Uint8Array,
): Uint8Array | null {
  const auth: ConnAuth | null = conn.auth;
  const name = typeof user === "string" ? user : text(user);
  if (auth === null) return name === DEFAULT_USER ? null : WRONGPASS;
  const u = auth.guard.check(name, password, true);
  if (u === null) {
    auth.fail(name);
    return WRONGPASS;
  }
  auth.succeed(u);
  return null;
}

/** Redis's reply to HELLO without AUTH on a connection that has not authenticated. */
export const HELLO_NOAUTH: Uint8Array = error(
  "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH " +
    "<user> <pass> option can be used to authenticate the client and select the RESP protocol " +
    "version at the same time",
);

/**
 * True when `conn` has authenticated or needs not. HELLO without AUTH
 * answers {@link HELLO_NOAUTH} when this is false.
 *
 * @example
 * ```ts
 * // In HELLO: if (!auth && !respAuthenticated(conn)) return session.reply(conn, HELLO_NOAUTH);
 * ```
 */
export function respAuthenticated(conn: Connection): boolean {
  return conn.auth === null || conn.auth.user !== null;
}

function auth(ctx: CommandContext, args: Uint8Array[]): void {
  const { conn, session } = ctx;
  if (args.length > 2) return session.reply(conn, error("ERR syntax error"));
  if (args.length === 1) {
    const d = conn.auth?.guard.users.get(DEFAULT_USER);
    if (!d || d.spec.nopass) return session.reply(conn, NO_DEFAULT_PASSWORD);
  }
  const user = args.length === 2 ? args[0] : DEFAULT_USER;
  const refusal = respAuthenticate(conn, user, args[args.length - 1]);
  session.reply(conn, refusal ?? OK);
}

function acl(ctx: CommandContext, args: Uint8Array[]): void {
  const { conn, session } = ctx;
  const sub = text(args[0]).toLowerCase();
  const users = conn.auth ? [...conn.auth.guard.users.values()].map((u) => u.spec) : [];
  const arity = (n: number) => {
    if (args.length === n) return true;
    session.reply(conn, error(`ERR wrong number of arguments for 'acl|${sub}' command`));
    return false;
  };
  switch (sub) {
    case "whoami":
      if (arity(1)) session.reply(conn, bulk(conn.auth?.user?.name ?? DEFAULT_USER));
      return;
    case "users":
      if (arity(1)) {
        const names = users.length > 0 ? users.map((u) => u.name).sort() : [DEFAULT_USER];
        session.reply(conn, array(names.map((n) => bulk(n))));
      }
      return;
    case "list":
      if (arity(1)) {
        const list = users.length > 0 ? [...users].sort((a, b) => a.name < b.name ? -1 : 1) : [];
        const lines = list.length > 0
          ? list.map(describeUser)
          : ["user default on nopass ~* +@all"];
        session.reply(conn, array(lines.map((l) => bulk(l))));
      }
      return;
    case "cat": {
      if (args.length > 2) return void arity(2);
      if (args.length === 1) return session.reply(conn, array(CATEGORIES.map((c) => bulk(c))));
      const cat = text(args[1]).toLowerCase();
      if (!(CATEGORIES as readonly string[]).includes(cat)) {
        return session.reply(conn, error(`ERR Unknown category '${text(args[1])}'`));
      }
      const names = COMMAND_TABLE.filter((c) => c.categories.includes(cat)).map((c) => c.name);
      return session.reply(conn, array(names.map((n) => bulk(n))));
    }
    default:
      session.reply(conn, error(`ERR unknown subcommand '${text(args[0])}'. Try ACL HELP.`));
  }
}

/** The commands of this module, for the RESP command table. */
export const AUTH_COMMANDS: Record<string, Command> = {
  auth: { arity: -2, run: auth },
  acl: { arity: -2, run: acl },
};
