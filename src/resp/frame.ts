/**
 * RESP2 request framing: multibulk (`*<n>\r\n$<len>\r\n<bytes>\r\n...`),
 * as clients send, and inline commands (a plain text line), as people type
 * into telnet. {@link checkCommand} finds where a command ends and records
 * where its arguments are, so the command is parsed once.
 *
 * @module
 */

/** Longest inline command, as Redis limits it. */
export const MAX_INLINE_BYTES = 64 * 1024;
/** Most arguments in one command, as Redis limits it. */
export const MAX_ARGS = 1024 * 1024;

/**
 * Argument offsets of the last command checked, relative to the command's
 * start, plus how far an unfinished command got: a command that arrives in
 * many reads is parsed once, each read resuming where the last stopped.
 */
export class ArgSpans {
  /** Start and end of each argument, interleaved, relative to the command. */
  spans: Int32Array = new Int32Array(64);
  /** Number of arguments recorded. */
  count = 0;
  /** Offset of the command these spans belong to, -1 when none. */
  at = -1;
  /** Inline commands are unquoted into fresh bytes instead of spans. */
  inline: Uint8Array[] | null = null;
  /** Arguments the unfinished command declared, -1 when none is unfinished. */
  declared = -1;
  /** Where the unfinished command's next argument starts, relative to it. */
  next = 0;
  /** Bytes of an unfinished inline command already searched for its newline. */
  inlineSeen = 0;

  push(start: number, end: number): void {
    if (this.count * 2 + 2 > this.spans.length) {
      const next = new Int32Array(this.spans.length * 2);
      next.set(this.spans);
      this.spans = next;
    }
    this.spans[this.count * 2] = start;
    this.spans[this.count * 2 + 1] = end;
    this.count++;
  }
}

/** A protocol error: the client is told, then the connection closes. */
export class RespProtocolError extends Error {}

/** Reads a decimal integer in `buf[from, to)`; NaN when not one. */
function parseInt10(buf: Uint8Array, from: number, to: number): number {
  if (from >= to || to - from > 12) return NaN;
  let i = from;
  let sign = 1;
  if (buf[i] === 0x2d) {
    sign = -1;
    i++;
    if (i === to) return NaN;
  }
  let n = 0;
  for (; i < to; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return sign * n;
}

/** Index of the `\r` of the next `\r\n` at or after `from`, or -1. */
function lineEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 1 < end; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10) return i;
  }
  return -1;
}

/**
 * Length of the whole command at `buf[start, end)`, or 0 when more bytes
 * are needed; records its arguments in `args` (relative to `start`) and
 * keeps its progress there, so the next call for the same command resumes.
 * A command whose total size would pass `maxCommand` is refused as soon as
 * its headers say so (Redis's client-query-buffer-limit). Throws
 * {@link RespProtocolError} for what Redis would refuse.
 */
export function checkCommand(
  buf: Uint8Array,
  start: number,
  end: number,
  maxCommand: number,
  args: ArgSpans,
): number {
  args.at = -1;
  if (start >= end) return 0;
  if (buf[start] !== 0x2a) {
    args.declared = -1;
    args.count = 0;
    return checkInline(buf, start, end, args);
  }
  args.inline = null;
  if (args.declared < 0) {
    const eol = lineEnd(buf, start + 1, end);
    if (eol < 0) {
      if (end - start > 32) throw new RespProtocolError("invalid multibulk length");
      return 0;
    }
    const n = parseInt10(buf, start + 1, eol);
    if (Number.isNaN(n) || n > MAX_ARGS) throw new RespProtocolError("invalid multibulk length");
    args.count = 0;
    args.declared = Math.max(0, n);
    args.next = eol + 2 - start;
  }
  const n = args.declared;
  while (args.count < n) {
    const at = start + args.next;
    if (at >= end) return 0;
    if (buf[at] !== 0x24) {
      throw new RespProtocolError(`expected '$', got '${String.fromCharCode(buf[at])}'`);
    }
    const eol = lineEnd(buf, at + 1, end);
    if (eol < 0) {
      if (end - at > 32) throw new RespProtocolError("invalid bulk length");
      return 0;
    }
    const len = parseInt10(buf, at + 1, eol);
    if (Number.isNaN(len) || len < 0 || len > maxCommand) {
      throw new RespProtocolError("invalid bulk length");
    }
    const from = eol + 2;
    if (from - start + len + 2 > maxCommand) {
      throw new RespProtocolError(`command larger than ${maxCommand} bytes`);
    }
    if (from + len + 2 > end) return 0;
    if (buf[from + len] !== 13 || buf[from + len + 1] !== 10) {
      throw new RespProtocolError("bulk string not followed by CRLF");
    }
    args.push(from - start, from - start + len);
    args.next = from + len + 2 - start;
  }
  args.declared = -1;
  args.at = start;
  return args.next;
}

function checkInline(buf: Uint8Array, start: number, end: number, args: ArgSpans): number {
  let nl = -1;
  for (let i = start + args.inlineSeen; i < end; i++) {
    if (buf[i] === 10) {
      nl = i;
      break;
    }
  }
  if (nl < 0) {
    args.inlineSeen = end - start;
    if (end - start > MAX_INLINE_BYTES) throw new RespProtocolError("too big inline request");
    return 0;
  }
  args.inlineSeen = 0;
  const lineStop = nl > start && buf[nl - 1] === 13 ? nl - 1 : nl;
  args.inline = splitInline(buf.subarray(start, lineStop));
  args.count = args.inline.length;
  args.at = start;
  return nl + 1 - start;
}

const HEX = /^[0-9a-fA-F]{2}$/;

/**
 * Splits an inline command like Redis's `sdssplitargs`: spaces separate
 * arguments; "double quotes" take \n \r \t \\ \" and \xHH escapes;
 * 'single quotes' take \' only.
 */
export function splitInline(line: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  const n = line.length;
  const isSpace = (c: number) => c === 32 || c === 9 || c === 11 || c === 12 || c === 13;
  while (i < n) {
    while (i < n && isSpace(line[i])) i++;
    if (i >= n) break;
    const bytes: number[] = [];
    const quote = line[i] === 34 || line[i] === 39 ? line[i++] : 0;
    let closed = quote === 0;
    while (i < n) {
      const c = line[i];
      if (quote === 0) {
        if (isSpace(c)) break;
        bytes.push(c);
        i++;
      } else if (c === 92 && i + 1 < n) {
        const e = line[i + 1];
        if (quote === 34 && e === 120 && i + 3 < n) {
          const hex = String.fromCharCode(line[i + 2], line[i + 3]);
          if (HEX.test(hex)) {
            bytes.push(parseInt(hex, 16));
            i += 4;
            continue;
          }
        }
        const map: Record<number, number> = quote === 34
          ? { 110: 10, 114: 13, 116: 9, 98: 8, 97: 7, 92: 92, 34: 34 }
          : { 39: 39 };
        if (e in map) {
          bytes.push(map[e]);
          i += 2;
        } else {
          bytes.push(c);
          i++;
        }
      } else if (c === quote) {
        closed = true;
        i++;
        if (i < n && !isSpace(line[i])) throw new RespProtocolError("unbalanced quotes in request");
        break;
      } else {
        bytes.push(c);
        i++;
      }
    }
    if (!closed) throw new RespProtocolError("unbalanced quotes in request");
    out.push(Uint8Array.from(bytes));
  }
  return out;
}
