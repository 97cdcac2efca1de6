/**
 * Authentication and permissions at run time, inside an IO worker: the
 * users (built from {@link UserSpec}s), each connection's authenticated
 * user ({@link ConnAuth}), and the wire v1 gate that answers `Auth` and
 * refuses what a connection's user may not do before anything reaches a
 * shard. A connection changes user only here, in its own IO worker, which
 * is why `Auth` never runs in a shard.
 *
 * Cost when nobody configured authentication: every connection's user is
 * the open default user, {@link ConnAuth.restricted} is false, and the
 * codecs test that one field (and, on wire v1, whether the code is Auth).
 *
 * @module
 */
import { KvMethod, Status } from "../protocol/constants.ts";
import { pb } from "../protocol/messages.ts";
import { errorOutcome, Outcome } from "../server/outcome.ts";
import { Counter, Res, type StatsBlock } from "../stats/resources.ts";
import { type AuthConfig, DEFAULT_USER, type UserSpec } from "./acl.ts";
import { COMMAND_INDEX, COMMAND_TABLE, WIRE_COMMANDS, WIRE_NAMES } from "./commands.ts";
import { compileKeyPattern, type KeyPattern } from "./glob.ts";
import { digests, passwordMatches } from "./password.ts";

/** Failures past this many on one connection do not lengthen its delay further. */
const MAX_DELAY_STEPS = 10;
/** Log lines about failures per IO worker per second; the rest are summed up in one line. */
const MAX_LOG_LINES_PER_SECOND = 10;

/** A user, compiled for fast checks. */
export class AuthUser {
  /** The configuration it was built from (hashes only, no password). */
  readonly spec: UserSpec;
  /** Its name. */
  readonly name: string;
  /** May do anything to any key: connections of this user skip every check. */
  readonly unrestricted: boolean;
  readonly #digests: Uint8Array[];
  readonly #patterns: KeyPattern[];
  /** allowed[i]: command i of COMMAND_TABLE is allowed. */
  readonly #allowed: boolean[];
  /** Bit c set: wire method code c is allowed. */
  readonly #wireMask: number;

  /** Compiles `spec`. */
  constructor(spec: UserSpec) {
    this.spec = spec;
    this.name = spec.name;
    this.#digests = digests(spec.hashes);
    this.#patterns = spec.patterns.map(compileKeyPattern);
    const set = new Set(spec.commands);
    this.#allowed = COMMAND_TABLE.map((c) => spec.allCommands || set.has(c.name));
    let mask = (1 << KvMethod.Ping) | (1 << KvMethod.Auth);
    for (const [code, name] of WIRE_COMMANDS) if (this.mayRun(name)) mask |= 1 << code;
    this.#wireMask = mask;
    this.unrestricted = spec.enabled && spec.allCommands && spec.allKeys;
  }

  /** True when `password` is right for this user (`nopass`: `anyPassword` decides). */
  accepts(password: Uint8Array, anyPassword: boolean): boolean {
    const match = passwordMatches(this.#digests, password);
    if (!this.spec.enabled) return false;
    if (this.spec.nopass) return anyPassword || password.length === 0;
    return match;
  }

  /** True when the user may run command `name` (lower case, `acl|whoami` for subcommands). */
  mayRun(name: string): boolean {
    const i = COMMAND_INDEX.get(name);
    return i === undefined ? this.spec.allCommands : this.#allowed[i];
  }

  /** True when the user may call wire method `code` (unknown codes pass: the service refuses them). */
  mayCall(code: number): boolean {
    return code > 30 || (this.#wireMask & (1 << code)) !== 0 || !WIRE_COMMANDS.has(code);
  }

  /** True when the user may touch the key `bytes[start, end)`. */
  mayTouch(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    if (this.spec.allKeys) return true;
    for (const p of this.#patterns) if (p.matches(bytes, start, end)) return true;
    return false;
  }

  /** True when every key starting with `prefix` is one the user may touch. */
  mayScan(prefix: Uint8Array): boolean {
    if (this.spec.allKeys) return true;
    for (const p of this.#patterns) if (p.coversPrefix(prefix)) return true;
    return false;
  }
}

/**
 * What the guard needs of a connection: its peer's address for the log,
 * and the hold that pauses its parsing during a failure delay. Structural,
 * so that the guard does not import the IO worker's connection (which
 * holds a {@link ConnAuth}).
 *
 * @example
 * ```ts
 * const conn: GuardedConnection = { info: { remote: "127.0.0.1:5000" }, held: false, wake() {} };
 * ```
 */
export interface GuardedConnection {
  /** The peer, for the failure log. */
  readonly info: { readonly remote: string };
  /** True while nothing more may be parsed; the guard sets and clears it. */
  held: boolean;
  /** Lets a paused read loop re-check its limits once the hold is cleared. */
  wake(): void;
}

/** The users of one IO worker, and what failed authentications cost. */
export class Guard {
  /** Users by name. */
  readonly users: ReadonlyMap<string, AuthUser>;
  /** Connections start unauthenticated (false: as the default user). */
  readonly required: boolean;
  /** Delay per failure so far, ms; 0 when no user has a password (nothing to guess). */
  readonly failureDelayMs: number;
  /** Some user has a password: failures are worth a log line. */
  readonly guarded: boolean;
  /**
   * No connection can ever be restricted: the only user is the open default
   * one. Such a server's wire v1 connections skip the gate altogether.
   */
  readonly wideOpen: boolean;
  readonly #stats: StatsBlock;
  #logWindowAt = 0;
  #logged = 0;
  #unlogged = 0;

  /** Builds the users of `config`; `stats` counts failures and delay timers. */
  constructor(config: AuthConfig, stats: StatsBlock) {
    this.users = new Map(config.users.map((u) => [u.name, new AuthUser(u)]));
    this.required = config.required;
    this.guarded = config.users.some((u) => u.hashes.length > 0);
    this.failureDelayMs = this.guarded ? config.failureDelayMs : 0;
    const d = this.users.get(DEFAULT_USER);
    this.wideOpen = this.users.size === 1 && d !== undefined && d.unrestricted && d.spec.nopass;
    this.#stats = stats;
  }

  /** The state of a new connection from `remote`. */
  open(conn: GuardedConnection): ConnAuth {
    const initial = this.required ? null : this.users.get(DEFAULT_USER)!;
    return new ConnAuth(this, conn, initial);
  }

  /**
   * The user `name` if `password` is right for it, else null. The password
   * is hashed and compared even for a user that does not exist, so the
   * time taken does not say which names exist.
   */
  check(name: string, password: Uint8Array, anyPassword: boolean): AuthUser | null {
    const u = this.users.get(name);
    if (!u) {
      passwordMatches([], password);
      return null;
    }
    return u.accepts(password, anyPassword) ? u : null;
  }

  /**
   * Logs a failure line, at most {@link MAX_LOG_LINES_PER_SECOND} a second
   * (many connections guessing at once must not flood the log); the lines
   * left out are counted in the next one.
   */
  log(line: string): void {
    const now = Date.now();
    if (now - this.#logWindowAt >= 1000) {
      if (this.#unlogged > 0) {
        console.error(
          `evkv: ${this.#unlogged} more authentication failures were not logged (auth_failures counts all)`,
        );
      }
      this.#logWindowAt = now;
      this.#logged = 0;
      this.#unlogged = 0;
    }
    if (this.#logged < MAX_LOG_LINES_PER_SECOND) {
      this.#logged++;
      console.error(line);
    } else this.#unlogged++;
  }

  /** The stats block failures are counted in. */
  get stats(): StatsBlock {
    return this.#stats;
  }
}

/** One connection's authenticated user and failure count. */
export class ConnAuth {
  /** The user in force, or null before a successful authentication. */
  user: AuthUser | null;
  /** True when requests must be checked: not authenticated, or a user with limits. */
  restricted: boolean;
  /** Failed authentications on this connection so far. */
  failures = 0;
  readonly guard: Guard;
  readonly #conn: GuardedConnection;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** State of `conn`, starting as `user` (null: unauthenticated). */
  constructor(guard: Guard, conn: GuardedConnection, user: AuthUser | null) {
    this.guard = guard;
    this.#conn = conn;
    this.user = user;
    this.restricted = user === null || !user.unrestricted;
  }

  /** Makes `user` the connection's user. */
  succeed(user: AuthUser): void {
    this.user = user;
    this.restricted = !user.unrestricted;
    this.failures = 0;
  }

  /**
   * Counts a failed authentication, logs it with the peer's address (the
   * user name only when such a user exists: a password typed into the name
   * field must not reach the log), and stops reading this connection for
   * `failureDelayMs × min(failures, 10)` ms, so one connection cannot guess
   * at line rate: pipelined guesses wait their turn.
   */
  fail(name: string): void {
    this.failures++;
    const g = this.guard;
    g.stats.count(Counter.auth_failures);
    const who = g.users.has(name) ? `user '${name}'` : "an unknown user";
    const delay = g.failureDelayMs * Math.min(this.failures, MAX_DELAY_STEPS);
    // With no password anywhere there is nothing to guess: count, but keep the log quiet.
    if (!g.guarded) return;
    g.log(
      `evkv: authentication failed for ${who} from ${this.#conn.info.remote} ` +
        `(failure ${this.failures} on this connection${
          delay > 0 ? `; its next request waits ${delay} ms` : ""
        })`,
    );
    if (delay <= 0) return;
    this.#clearTimer();
    const conn = this.#conn;
    conn.held = true;
    g.stats.alloc(Res.timer, 0);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      g.stats.free(Res.timer, 0);
      conn.held = false;
      conn.wake();
    }, delay);
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.guard.stats.free(Res.timer, 0);
  }

  /** The connection closed: drops the delay timer. */
  close(): void {
    this.#clearTimer();
  }
}

/** Start of bytes field `field` in a protobuf body, or -1; its end is left in {@link fieldEnd}. */
let fieldEnd = 0;

function bytesField(buf: Uint8Array, start: number, end: number, field: number): number {
  let i = start;
  let found = -1;
  while (i < end) {
    let tag = 0;
    let shift = 0;
    let b: number;
    do {
      if (i >= end) return found;
      b = buf[i++];
      tag += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80 && shift < 35);
    const wire = tag & 7;
    if (wire === 0) { while (i < end && buf[i++] & 0x80); }
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      let len = 0;
      shift = 0;
      do {
        if (i >= end) return found;
        b = buf[i++];
        len += (b & 0x7f) * 2 ** shift;
        shift += 7;
      } while (b & 0x80 && shift < 35);
      if (Math.floor(tag / 8) === field) {
        found = i;
        fieldEnd = Math.min(i + len, end);
      }
      i += len;
    } else return found;
  }
  return found;
}

const NO_BYTES = new Uint8Array(0);

/**
 * The wire v1 gate, for a connection with a guard: answers `Auth` itself,
 * and refuses a request its connection may not make. Returns the reply to
 * send instead of running the request, or null to run it.
 *
 * @example
 * ```ts
 * // In the wire v1 codec: a non-null outcome is sent back and nothing runs.
 * // const refusal = wireGate(auth, code, buf, bodyStart, bodyEnd);
 * ```
 */
export function wireGate(
  auth: ConnAuth,
  code: number,
  buf: Uint8Array,
  start: number,
  end: number,
): Outcome | null {
  if (code === KvMethod.Auth) return wireAuth(auth, buf.subarray(start, end));
  if (code === KvMethod.Ping || !auth.restricted) return null;
  const user = auth.user;
  const method = WIRE_NAMES.get(code) ?? `method ${code}`;
  if (user === null) {
    return errorOutcome(
      Status.UNAUTHENTICATED,
      `Run ${method}: this connection has not authenticated; send Auth first`,
    );
  }
  if (!user.mayCall(code)) {
    return errorOutcome(
      Status.PERMISSION_DENIED,
      `Run ${method}: user '${user.name}' may not call ${method}`,
    );
  }
  if (user.spec.allKeys || !WIRE_COMMANDS.has(code) || code === KvMethod.Stats) return null;
  const at = bytesField(buf, start, end, 1);
  if (code === KvMethod.Scan) {
    const prefix = at < 0 ? NO_BYTES : buf.subarray(at, fieldEnd);
    if (user.mayScan(prefix)) return null;
    return errorOutcome(
      Status.PERMISSION_DENIED,
      `Run Scan: user '${user.name}' may scan only prefixes inside its key patterns (${
        user.spec.patterns.join(" ") || "none"
      })`,
    );
  }
  // A missing key is the handler's BAD_REQUEST, not a permission question.
  if (at < 0 || at === fieldEnd || user.mayTouch(buf, at, fieldEnd)) return null;
  return errorOutcome(
    Status.PERMISSION_DENIED,
    `Run ${method}: user '${user.name}' may not touch this key`,
  );
}

function wireAuth(auth: ConnAuth, body: Uint8Array): Outcome {
  let user: string;
  let password: Uint8Array;
  try {
    const req = pb.AuthRequest.decode(body);
    user = req.user || DEFAULT_USER;
    password = req.password ?? NO_BYTES;
  } catch (e) {
    return errorOutcome(Status.BAD_REQUEST, `Decode Auth request: ${(e as Error).message}`);
  }
  const u = auth.guard.check(user, password, false);
  if (u === null) {
    auth.fail(user);
    return errorOutcome(
      Status.UNAUTHENTICATED,
      "Auth: wrong user name or password, or the user is disabled",
    );
  }
  auth.succeed(u);
  return Outcome.encoded(0, pb.AuthReply.encode({ user: u.name }));
}
