/**
 * Users and their rules: a subset of Redis's ACL file syntax, parsed in the
 * main thread into plain {@link UserSpec}s (passwords already hashed) that
 * travel to the IO workers.
 *
 * The subset, one user per line: `user NAME RULE...` where a rule is
 * `on`, `off`, `>password`, `<password`, `#sha256hex`, `!sha256hex`,
 * `nopass`, `resetpass`, `~pattern`, `allkeys`, `resetkeys`, `+@category`,
 * `-@category`, `+command`, `-command`, `+command|sub`, `allcommands`,
 * `nocommands`, `reset`; channel rules (`&...`, `allchannels`,
 * `resetchannels`) are accepted and ignored (there is no pub/sub). Blank
 * lines and lines starting with `#` are skipped. A user not named in the
 * file does not exist, except `default`, which is Redis's
 * `on nopass ~* +@all` unless the file defines it.
 *
 * @module
 */
import { CATEGORIES, COMMAND_TABLE } from "./commands.ts";
import { isSha256Hex, sha256Hex } from "./password.ts";

/**
 * One user, ready to send to a worker: no clear-text password in it.
 *
 * @example
 * ```ts
 * import { parseAclFile, type UserSpec } from "@evkv/evkv";
 * const u: UserSpec = parseAclFile("user bob on >pw ~app:* +@read", "inline").get("bob")!;
 * console.log(u.hashes.length); // 1
 * ```
 */
export interface UserSpec {
  /** User name. */
  name: string;
  /** `on` (true) or `off`. */
  enabled: boolean;
  /** Any password (or none) is accepted. */
  nopass: boolean;
  /** SHA-256 hex digests of the accepted passwords. */
  hashes: string[];
  /** Every key (`allkeys`, `~*`). */
  allKeys: boolean;
  /** Key patterns, when not {@link allKeys}. */
  patterns: string[];
  /** Every command, including ones added later (`+@all`). */
  allCommands: boolean;
  /** Allowed commands from the table, when not {@link allCommands}. */
  commands: string[];
}

/** The name of the user a connection starts as, and of `AUTH password`. */
export const DEFAULT_USER = "default";

/** A new user as Redis makes one: off, no password, no keys, no commands. */
function blankUser(name: string): UserSpec {
  return {
    name,
    enabled: false,
    nopass: false,
    hashes: [],
    allKeys: false,
    patterns: [],
    allCommands: false,
    commands: [],
  };
}

/** Redis's default user: `on nopass ~* +@all`. */
export function openDefaultUser(): UserSpec {
  return {
    ...blankUser(DEFAULT_USER),
    enabled: true,
    nopass: true,
    allKeys: true,
    allCommands: true,
    commands: COMMAND_TABLE.map((c) => c.name),
  };
}

const ALL_NAMES = COMMAND_TABLE.map((c) => c.name);

/** Applies one rule to `u`; throws a RangeError naming the rule (never a password). */
export function applyRule(u: UserSpec, rule: string): void {
  const lower = rule.toLowerCase();
  const commands = new Set(u.commands);
  const allow = (names: string[], on: boolean) => {
    for (const n of names) on ? commands.add(n) : commands.delete(n);
    if (!on) u.allCommands = false;
    u.commands = ALL_NAMES.filter((n) => commands.has(n));
  };
  if (lower === "on") u.enabled = true;
  else if (lower === "off") u.enabled = false;
  else if (lower === "nopass") {
    u.nopass = true;
    u.hashes = [];
  } else if (lower === "resetpass") {
    u.nopass = false;
    u.hashes = [];
  } else if (rule.startsWith(">") || rule.startsWith("<")) {
    const h = sha256Hex(rule.slice(1));
    u.hashes = u.hashes.filter((x) => x !== h);
    if (rule[0] === ">") {
      u.hashes.push(h);
      u.nopass = false;
    }
  } else if (rule.startsWith("#") || rule.startsWith("!")) {
    const h = rule.slice(1).toLowerCase();
    if (!isSha256Hex(h)) {
      throw new RangeError(`rule '${rule[0]}...' needs 64 hex digits (a SHA-256)`);
    }
    u.hashes = u.hashes.filter((x) => x !== h);
    if (rule[0] === "#") {
      u.hashes.push(h);
      u.nopass = false;
    }
  } else if (lower === "allkeys" || rule === "~*") {
    u.allKeys = true;
    u.patterns = [];
  } else if (lower === "resetkeys") {
    u.allKeys = false;
    u.patterns = [];
  } else if (rule.startsWith("~")) {
    if (rule.length === 1) throw new RangeError("rule '~' needs a pattern");
    if (!u.allKeys && !u.patterns.includes(rule.slice(1))) u.patterns.push(rule.slice(1));
  } else if (lower === "allcommands" || lower === "+@all") {
    allow(ALL_NAMES, true);
    u.allCommands = true;
  } else if (lower === "nocommands" || lower === "-@all") {
    allow(ALL_NAMES, false);
  } else if (lower.startsWith("+@") || lower.startsWith("-@")) {
    const cat = lower.slice(2);
    if (!(CATEGORIES as readonly string[]).includes(cat)) {
      throw new RangeError(`rule '${rule}': unknown category '${cat}'`);
    }
    allow(
      COMMAND_TABLE.filter((c) => c.categories.includes(cat)).map((c) => c.name),
      lower[0] === "+",
    );
  } else if (lower.startsWith("+") || lower.startsWith("-")) {
    const name = lower.slice(1);
    const names = ALL_NAMES.filter((n) => n === name || n.startsWith(`${name}|`));
    if (names.length === 0) throw new RangeError(`rule '${rule}': unknown command '${name}'`);
    allow(names, lower[0] === "+");
  } else if (lower === "reset") {
    Object.assign(u, blankUser(u.name));
  } else if (
    rule.startsWith("&") || lower === "allchannels" || lower === "resetchannels"
  ) {
    // No pub/sub here: channel rules change nothing.
  } else {
    // Never echo the rule itself: a password typed without its '>' would end up in a log.
    throw new RangeError("unknown rule (not in the supported subset; see the README)");
  }
}

/**
 * Parses an ACL file's text into users. Throws a RangeError that names the
 * file, the line and the problem.
 *
 * @example
 * ```ts
 * import { parseAclFile } from "./acl.ts";
 * const users = parseAclFile("user alice on >pw ~app:* +@read\n", "users.acl");
 * users.get("alice")!.patterns; // ["app:*"]
 * ```
 */
export function parseAclFile(text: string, source: string): Map<string, UserSpec> {
  const users = new Map<string, UserSpec>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const where = `Load ACL file ${source}, line ${i + 1}`;
    const words = line.split(/\s+/);
    if (words[0] !== "user" || words.length < 2) {
      throw new RangeError(`${where}: expected 'user NAME RULE...'`);
    }
    const name = words[1];
    if (!/^[\x21-\x7e]+$/.test(name)) throw new RangeError(`${where}: bad user name`);
    if (users.has(name)) throw new RangeError(`${where}: user '${name}' is defined twice`);
    const u = blankUser(name);
    words.slice(2).forEach((rule, r) => {
      try {
        applyRule(u, rule);
      } catch (e) {
        throw new RangeError(`${where}, rule ${r + 1}: ${(e as Error).message}`);
      }
    });
    users.set(name, u);
  });
  return users;
}

/**
 * The whole user configuration of a server, as IO workers receive it.
 *
 * @example
 * ```ts
 * import { type AuthConfig, buildAuthConfig } from "@evkv/evkv";
 * const c: AuthConfig = buildAuthConfig({ password: "pw" });
 * console.log(c.required); // true
 * ```
 */
export interface AuthConfig {
  /** Every user, `default` included. */
  users: UserSpec[];
  /** True when a connection must authenticate (the default user is not `on nopass`). */
  required: boolean;
  /** Failed authentications on one connection are slowed by this much each (ms). */
  failureDelayMs: number;
}

/**
 * Who may connect: options of {@link buildAuthConfig} and of `serve({ auth })`.
 *
 * @example
 * ```ts
 * import { serve } from "@evkv/evkv";
 * const server = await serve({ port: 0, auth: { acl: "user app on >pw ~app:* +@all" } });
 * await server.shutdown();
 * ```
 */
export interface AuthOptions {
  /** The default user's password (`--password-file`), as Redis's `requirepass`. */
  password?: string;
  /** Text of an ACL file. */
  acl?: string;
  /** Name of the ACL file, for messages. */
  aclSource?: string;
  /** Delay after each failed authentication, ms per failure so far (capped at 10). Default 100. */
  failureDelayMs?: number;
}

/**
 * Builds the users of a server from its password and ACL file. With
 * neither, the default user is open (`on nopass ~* +@all`) and nothing is
 * required.
 *
 * @example
 * ```ts
 * import { buildAuthConfig } from "./acl.ts";
 * buildAuthConfig({ password: "s3cret" }).required; // true
 * buildAuthConfig({}).required; // false
 * ```
 */
export function buildAuthConfig(o: AuthOptions = {}): AuthConfig {
  const users = o.acl === undefined
    ? new Map<string, UserSpec>()
    : parseAclFile(o.acl, o.aclSource ?? "(inline)");
  if (o.password !== undefined) {
    if (users.has(DEFAULT_USER)) {
      throw new RangeError(
        `Load ACL file ${o.aclSource ?? "(inline)"}: it defines user 'default' and a password ` +
          "was given too; set the default user's password in one place",
      );
    }
    if (o.password === "") throw new RangeError("Load password: the password is empty");
    const u = openDefaultUser();
    applyRule(u, `>${o.password}`);
    users.set(DEFAULT_USER, u);
  }
  if (!users.has(DEFAULT_USER)) users.set(DEFAULT_USER, openDefaultUser());
  const d = users.get(DEFAULT_USER)!;
  return {
    users: [...users.values()],
    required: !(d.enabled && d.nopass),
    failureDelayMs: o.failureDelayMs ?? 100,
  };
}

/**
 * A user as `ACL LIST` shows it: Redis's form, with passwords as their
 * `#sha256` (never the password).
 *
 * @example
 * ```ts
 * import { describeUser, openDefaultUser } from "./acl.ts";
 * describeUser(openDefaultUser()); // "user default on nopass ~* +@all"
 * ```
 */
export function describeUser(u: UserSpec): string {
  const parts = ["user", u.name, u.enabled ? "on" : "off"];
  if (u.nopass) parts.push("nopass");
  for (const h of u.hashes) parts.push(`#${h}`);
  if (u.allKeys) parts.push("~*");
  else for (const p of u.patterns) parts.push(`~${p}`);
  if (u.allCommands) parts.push("+@all");
  else {
    parts.push("-@all");
    for (const n of u.commands) parts.push(`+${n}`);
  }
  return parts.join(" ");
}
