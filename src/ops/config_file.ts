/**
 * `--config FILE`: server settings in a file, Redis style, one `name value`
 * per line, with the names of the command-line flags (without `--`):
 *
 * ```
 * # /etc/evkv/evkv.conf
 * port 7379
 * resp-port 6379
 * max-connections 20000
 * metrics-port 9121
 * strict-leaks yes
 * ```
 *
 * `--config -` reads the file from standard input. Blank lines and lines
 * starting with `#` are skipped; a value may be
 * wrapped in double quotes. A flag without a value (`strict-leaks`) takes
 * `yes` or `no`. Each line is checked on its own with the same parser as
 * the command line, so an unknown name or a bad value is refused at start
 * with the file, the line and the reason. Flags given on the command line
 * win over the file.
 *
 * @module
 */
import { parseServeFlags } from "../kvserver/config.ts";

/** A problem in a configuration file, with where it is. */
export class ConfigFileError extends Error {
  /** The file. */
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
  /** What is wrong, without the location. */
  readonly reason: string;

  /** `reason` at `file:line`. */
  constructor(file: string, line: number, reason: string) {
    super(`Read config ${file}:${line}: ${reason}`);
    this.name = "ConfigFileError";
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

/** Names that make no sense in a file. */
const NOT_IN_FILE = new Set(["config", "help", "test-leak"]);

const YES = new Set(["yes", "true", "on", "1"]);
const NO = new Set(["no", "false", "off", "0"]);

function reasonOf(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // node:util's messages name the option as a flag; the file has no dashes.
  return msg.replace(/^Parse --[\w-]+: /, "");
}

function unknownOption(e: unknown): boolean {
  return e instanceof TypeError &&
    (e as TypeError & { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION";
}

function missingValue(e: unknown): boolean {
  return e instanceof TypeError &&
    (e as TypeError & { code?: string }).code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE";
}

/**
 * Turns the text of a configuration file into command-line arguments,
 * checking every line. Throws {@link ConfigFileError} at the first problem.
 *
 * @example
 * ```ts
 * import { configFileArgs } from "@evkv/evkv";
 * configFileArgs("evkv.conf", "port 7000\n# a comment\nstrict-leaks yes\n");
 * // ["--port=7000", "--strict-leaks"]
 * ```
 */
export function configFileArgs(file: string, text: string): string[] {
  const args: string[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const at = i + 1;
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z][\w-]*)(?:\s+(.*))?$/.exec(line);
    if (!m) throw new ConfigFileError(file, at, `"${line}" is not a "name value" line`);
    const name = m[1].toLowerCase();
    let value = (m[2] ?? "").trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1);
    }
    if (NOT_IN_FILE.has(name)) {
      throw new ConfigFileError(file, at, `"${name}" is not allowed in a config file`);
    }
    const before = seen.get(name);
    if (before !== undefined) {
      throw new ConfigFileError(file, at, `"${name}" is already set on line ${before}`);
    }
    seen.set(name, at);
    args.push(...lineArgs(file, at, name, value));
  }
  return args;
}

/** One line's arguments, checked with the command-line parser. */
function lineArgs(file: string, at: number, name: string, value: string): string[] {
  const flag = `--${name}`;
  // Asked alone, a switch parses and a flag that takes a value says so.
  let takesValue = false;
  try {
    parseServeFlags([flag]);
  } catch (e) {
    if (unknownOption(e)) throw new ConfigFileError(file, at, `unknown name "${name}"`);
    if (!missingValue(e)) throw new ConfigFileError(file, at, `${name}: ${reasonOf(e)}`);
    takesValue = true;
  }
  if (!takesValue) {
    const v = value.toLowerCase();
    if (YES.has(v)) return [flag];
    if (NO.has(v)) return [];
    if (value === "") throw new ConfigFileError(file, at, `"${name}" needs "yes" or "no"`);
    throw new ConfigFileError(file, at, `${name}: "${value}" is not yes or no`);
  }
  if (value === "") throw new ConfigFileError(file, at, `"${name}" needs a value`);
  // `--name=value`, so that a value starting with "-" is not taken for a flag.
  const arg = `${flag}=${value}`;
  try {
    parseServeFlags([arg]);
  } catch (e) {
    throw new ConfigFileError(file, at, `${name}: ${reasonOf(e)}`);
  }
  return [arg];
}

/**
 * Splits `--config FILE` (or `--config=FILE`) out of `args`. Returns the
 * file, or null, and the other arguments.
 *
 * @example
 * ```ts
 * import { splitConfigFlag } from "@evkv/evkv";
 * splitConfigFlag(["--config", "a.conf", "--port", "1"]);
 * // { file: "a.conf", rest: ["--port", "1"] }
 * ```
 */
export function splitConfigFlag(args: string[]): { file: string | null; rest: string[] } {
  const rest: string[] = [];
  let file: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      rest.push(...args.slice(i));
      break;
    }
    if (a === "--config" || a.startsWith("--config=")) {
      if (file !== null) throw new RangeError("Parse --config: given more than once");
      const v = a === "--config" ? args[++i] : a.slice("--config=".length);
      if (v === undefined || v === "") throw new RangeError("Parse --config: needs a file");
      file = v;
      continue;
    }
    rest.push(a);
  }
  return { file, rest };
}

/**
 * The arguments to parse for `args`: the config file's (when `--config` is
 * given; `-` reads standard input), then the command line's, so that the
 * command line wins.
 *
 * @example
 * ```ts
 * import { argsWithConfig } from "@evkv/evkv";
 * const args = await argsWithConfig(["--port", "0"]); // no --config: unchanged
 * ```
 */
export async function argsWithConfig(args: string[]): Promise<string[]> {
  const { file, rest } = splitConfigFlag(args);
  if (file === null) return rest;
  let text: string;
  try {
    // "-" is standard input, as for redis-server.
    text = file === "-"
      ? await new Response(Deno.stdin.readable).text()
      : await Deno.readTextFile(file);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new RangeError(`Read config ${file}: ${why}`);
  }
  return [...configFileArgs(file, text), ...rest];
}
