/**
 * The server's log: one line per event an operator cares about (start,
 * stop, a worker restart, a burst of refused connections, eviction
 * starting, a configuration problem), never one per request. Lines go to
 * stderr for `error` and `warn`, stdout otherwise, as text or as one JSON
 * object per line (`--log-format json`) for log shippers.
 *
 * @module
 */

/** Severity, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
/** One severity. */
export type LogLevel = typeof LOG_LEVELS[number];
/** Output shapes. */
export const LOG_FORMATS = ["text", "json"] as const;
/** One output shape. */
export type LogFormat = typeof LOG_FORMATS[number];

/** Extra fields of a line; values must be JSON-friendly. */
export type LogFields = Record<string, string | number | boolean | null>;

/** Where lines go: tests capture them, the server writes them to stdout and stderr. */
export type LogSink = (level: LogLevel, line: string) => void;

const consoleSink: LogSink = (level, line) => {
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
};

/**
 * A leveled logger. Text lines read `evkv: <message> key=value ...` (the
 * prefix the server has always used, so existing scripts still match);
 * JSON lines are `{"ts":...,"level":...,"msg":...,...fields}`.
 *
 * @example
 * ```ts
 * import { Logger } from "@evkv/evkv";
 * const lines: string[] = [];
 * const log = new Logger("info", "json", (_level, line) => lines.push(line));
 * log.info("listening", { port: 7379 });
 * log.debug("not shown at info");
 * JSON.parse(lines[0]).port; // 7379
 * ```
 */
export class Logger {
  /** Least severe level written. */
  readonly level: LogLevel;
  /** Output shape. */
  readonly format: LogFormat;
  readonly #rank: number;
  readonly #sink: LogSink;

  /** A logger writing `level` and above, shaped as `format`, to `sink` (default: the console). */
  constructor(level: LogLevel = "info", format: LogFormat = "text", sink: LogSink = consoleSink) {
    this.level = level;
    this.format = format;
    this.#rank = LOG_LEVELS.indexOf(level);
    this.#sink = sink;
  }

  /** True when lines of `level` are written. */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) <= this.#rank;
  }

  /**
   * Writes one line at `level`, if enabled. `text`, when given, is the
   * whole text-format line (for lines whose shape scripts already match).
   */
  log(level: LogLevel, msg: string, fields: LogFields = {}, text?: string): void {
    if (!this.enabled(level)) return;
    this.#sink(
      level,
      this.format === "json" ? jsonLine(level, msg, fields) : text ?? textLine(msg, fields),
    );
  }

  /** An error line: something failed. */
  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }

  /** A warning line: something needs a look. */
  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }

  /** An info line: a normal life-cycle event. */
  info(msg: string, fields?: LogFields, text?: string): void {
    this.log("info", msg, fields, text);
  }

  /** A debug line. */
  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }

  /**
   * Writes a multi-line block (the resource table) as it is in text form,
   * or as one JSON line with the block in `text`.
   */
  block(level: LogLevel, msg: string, text: string): void {
    if (!this.enabled(level)) return;
    this.#sink(level, this.format === "json" ? jsonLine(level, msg, { text }) : text);
  }
}

function textLine(msg: string, fields: LogFields): string {
  let line = `evkv: ${msg}`;
  for (const [k, v] of Object.entries(fields)) {
    const s = String(v);
    line += ` ${k}=${/[\s"=]/.test(s) || s === "" ? JSON.stringify(s) : s}`;
  }
  return line;
}

function jsonLine(level: LogLevel, msg: string, fields: LogFields): string {
  return JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields });
}

/**
 * Counts events and logs at most one line per `windowMs` about them, so a
 * flood (refused connections) costs one line a window, not one per event.
 *
 * @example
 * ```ts
 * import { BurstLog, Logger } from "@evkv/evkv";
 * const lines: string[] = [];
 * const burst = new BurstLog(new Logger("info", "text", (_l, s) => lines.push(s)), 1000);
 * burst.observe(5, "connections refused", 0);
 * burst.observe(9, "connections refused", 500); // same window: no line
 * lines.length; // 1
 * ```
 */
export class BurstLog {
  readonly #log: Logger;
  readonly #windowMs: number;
  #last = 0;
  #loggedAt = -Infinity;

  /** Logs through `log`, at most once per `windowMs`. */
  constructor(log: Logger, windowMs: number) {
    this.#log = log;
    this.#windowMs = windowMs;
  }

  /**
   * Given a monotonic `total` now, logs a warning when it grew since the
   * last line and the window has passed. Returns true when it logged.
   */
  observe(total: number, what: string, now: number = Date.now()): boolean {
    if (total <= this.#last || now - this.#loggedAt < this.#windowMs) return false;
    const delta = total - this.#last;
    this.#last = total;
    this.#loggedAt = now;
    this.#log.warn(`${what}: ${delta} since the last report`, { total });
    return true;
  }
}
