/**
 * Test support for the RESP door: the conformance script, a raw RESP
 * client that returns each reply's exact bytes, and redis-cli helpers.
 */
import { splitInline } from "../src/resp/frame.ts";

/** True when a command is on the PATH: the RESP tests skip without redis-cli. */
export { have } from "../bench/resp.ts";

const latin1 = new TextDecoder("latin1");

/** One line of the conformance script. */
export interface ScriptLine {
  /** The line as written (without a leading "~ "). */
  line: string;
  /** The arguments. */
  args: Uint8Array[];
  /** Compare the reply's type only. */
  typeOnly: boolean;
  /** Compare as an array in any order. */
  unordered: boolean;
}

/** The script's command lines, comments and blank lines left out. */
export function readScript(path: URL): ScriptLine[] {
  const lines: ScriptLine[] = [];
  for (const raw of Deno.readTextFileSync(path).split("\n")) {
    if (raw.trim() === "" || raw.startsWith("#")) continue;
    const typeOnly = raw.startsWith("~ ");
    const unordered = raw.startsWith("% ");
    const line = typeOnly || unordered ? raw.slice(2) : raw;
    lines.push({ line, args: splitInline(new TextEncoder().encode(line)), typeOnly, unordered });
  }
  return lines;
}

/** A command as multibulk bytes. */
export function multibulk(args: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [new TextEncoder().encode(`*${args.length}\r\n`)];
  for (const a of args) {
    parts.push(new TextEncoder().encode(`$${a.length}\r\n`), a, new TextEncoder().encode("\r\n"));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** End of the whole RESP2/RESP3 reply at `b[i]` before `end`, or -1 when incomplete. */
export function replyEnd(b: Uint8Array, i: number, end: number): number {
  if (i >= end) return -1;
  let eol = i;
  while (eol + 1 < end && !(b[eol] === 13 && b[eol + 1] === 10)) eol++;
  if (eol + 1 >= end) return -1;
  const type = b[i];
  const n = Number(latin1.decode(b.subarray(i + 1, eol)));
  let at = eol + 2;
  if (type === 0x24 || type === 0x3d || type === 0x21) {
    if (n < 0) return at;
    return at + n + 2 <= end ? at + n + 2 : -1;
  }
  if (type === 0x2a || type === 0x7e || type === 0x3e || type === 0x25 || type === 0x7c) {
    const items = type === 0x25 || type === 0x7c ? 2 * Math.max(n, 0) : Math.max(n, 0);
    for (let k = 0; k < items; k++) {
      at = replyEnd(b, at, end);
      if (at < 0) return -1;
    }
    // An attribute comes before the reply it describes.
    if (type === 0x7c) return replyEnd(b, at, end);
  }
  return at;
}

/** A connection that sends commands and returns each reply's exact bytes. */
export class RespConn implements Disposable {
  readonly #conn: Deno.TcpConn;
  #buf = new Uint8Array(1 << 16);
  #end = 0;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to a RESP port on loopback. */
  static async open(port: number): Promise<RespConn> {
    return new RespConn(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends raw bytes. */
  async send(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** The next reply's bytes; null when the server closed first. */
  async reply(): Promise<Uint8Array | null> {
    for (;;) {
      const end = replyEnd(this.#buf, 0, this.#end);
      if (end > 0) {
        const r = this.#buf.slice(0, end);
        this.#buf.copyWithin(0, end, this.#end);
        this.#end -= end;
        return r;
      }
      if (this.#end === this.#buf.length) {
        const next = new Uint8Array(this.#buf.length * 2);
        next.set(this.#buf);
        this.#buf = next;
      }
      const n = await this.#conn.read(this.#buf.subarray(this.#end));
      if (n === null) return null;
      this.#end += n;
    }
  }

  /** Sends one command and returns its reply. */
  async command(...args: (string | Uint8Array)[]): Promise<string> {
    await this.send(
      multibulk(args.map((a) => typeof a === "string" ? new TextEncoder().encode(a) : a)),
    );
    const r = await this.reply();
    return r === null ? "<closed>" : latin1.decode(r);
  }

  [Symbol.dispose](): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed by the server.
    }
  }
}

/** Runs the script on `port`; the reply of each line as text (bytes as latin1). */
export async function runScript(port: number, script: ScriptLine[]): Promise<string[]> {
  using c = await RespConn.open(port);
  const replies: string[] = [];
  for (const l of script) {
    await c.send(multibulk(l.args));
    const r = await c.reply();
    replies.push(r === null ? "<closed>" : latin1.decode(r));
  }
  return replies;
}

/** Runs a program to its end; its stdout (asserting success unless told not to). */
export async function run(
  cmd: string,
  args: string[],
  stdin?: Uint8Array,
  check = true,
): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  if (check && !out.success) {
    throw new Error(`${cmd} ${args.slice(0, 6).join(" ")} failed: ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

/** The script's deterministic lines as redis-cli input (one command per line). */
export function cliInput(script: ScriptLine[]): Uint8Array {
  return new TextEncoder().encode(
    script.filter((l) => !l.typeOnly && !l.unordered).map((l) => l.line).join("\n") + "\n",
  );
}

/** The items of an array reply, sorted, for replies whose order is unspecified. */
export function sortedItems(reply: string): string[] {
  const b = new Uint8Array([...reply].map((c) => c.charCodeAt(0)));
  let at = reply.indexOf("\r\n") + 2;
  const items: string[] = [];
  while (at < b.length) {
    const end = replyEnd(b, at, b.length);
    items.push(reply.slice(at, end));
    at = end;
  }
  return items.sort();
}

/** Whether `got` matches the oracle's reply for `line`. */
export function matches(line: ScriptLine, want: string, got: string): boolean {
  if (line.typeOnly) return want[0] === got[0];
  if (line.unordered) {
    return want[0] === got[0] &&
      JSON.stringify(sortedItems(want)) === JSON.stringify(sortedItems(got));
  }
  return want === got;
}
