/**
 * A RESP reply under construction, in RESP2 or RESP3. A shard renders a
 * command's whole reply here (one reused buffer per thread), and the reply
 * frame's body is written from it straight into the reply ring or the
 * connection's output buffer: no protobuf, no object per reply.
 *
 * @module
 */

const CR = 13;
const LF = 10;

/**
 * A growable reply buffer with RESP writers. `tail` lets the last bulk
 * string of a reply stay a view of the stored value, so a GET copies its
 * value once (into the ring), not twice.
 *
 * @example
 * ```ts
 * import { RespOut } from "./out.ts";
 * const out = new RespOut();
 * out.reset(2);
 * out.arrayHead(2);
 * out.int(7);
 * out.nullBulk();
 * new TextDecoder().decode(out.bytes()); // "*2\r\n:7\r\n$-1\r\n"
 * ```
 */
export class RespOut {
  /** The bytes so far, in `buf[0, len)`. */
  buf: Uint8Array = new Uint8Array(4096);
  /** Bytes used in {@link buf}. */
  len = 0;
  /** 2 or 3: which protocol the reply is in. */
  proto = 2;
  /** A bulk string's body that follows {@link buf}, then CRLF; null when none. */
  tail: Uint8Array | null = null;

  /** Empties the buffer for a reply in protocol `proto`. */
  reset(proto: number): void {
    // One huge reply (up to the body limit) should not pin its buffer.
    if (this.buf.length > 1 << 20) this.buf = new Uint8Array(4096);
    this.len = 0;
    this.tail = null;
    this.proto = proto;
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.len + n;
    if (need <= this.buf.length) return;
    const next = new Uint8Array(Math.max(need, this.buf.length * 2));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Bytes of the whole reply. */
  size(): number {
    return this.tail === null ? this.len : this.len + this.tail.length + 2;
  }

  /** Writes the whole reply at `dst[off]`. */
  writeTo(dst: Uint8Array, off: number): void {
    const len = this.len;
    const buf = this.buf;
    // Most replies are a few bytes: a loop beats making a view to copy from.
    if (len <= 32) { for (let i = 0; i < len; i++) dst[off + i] = buf[i]; }
    else dst.set(buf.subarray(0, len), off);
    const tail = this.tail;
    if (tail !== null) {
      off += this.len;
      dst.set(tail, off);
      dst[off + tail.length] = CR;
      dst[off + tail.length + 1] = LF;
    }
  }

  /** The reply as a fresh array. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size());
    this.writeTo(out, 0);
    return out;
  }

  /** Appends ASCII text (no CRLF). */
  ascii(s: string): void {
    this.ensure(s.length);
    const b = this.buf;
    let at = this.len;
    for (let i = 0; i < s.length; i++) b[at++] = s.charCodeAt(i) & 0xff;
    this.len = at;
  }

  /** Appends raw bytes. */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** `<type><n>\r\n` with a non-negative integer, without making a string. */
  #head(type: number, n: number): void {
    this.ensure(24);
    const b = this.buf;
    let at = this.len;
    b[at++] = type;
    if (n < 0) {
      b[at++] = 0x2d;
      n = -n;
    }
    if (n < 10) b[at++] = 0x30 + n;
    else if (n < 1e15) {
      let digits = 1;
      for (let p = 10; p <= n; p *= 10) digits++;
      for (let i = digits - 1; i >= 0; i--) {
        b[at + i] = 0x30 + (n % 10);
        n = Math.floor(n / 10);
      }
      at += digits;
    } else {
      this.len = at;
      this.ascii(String(n));
      at = this.len;
    }
    b[at++] = CR;
    b[at++] = LF;
    this.len = at;
  }

  /** `+text` status reply. */
  simple(text: string): void {
    this.ensure(text.length + 3);
    this.buf[this.len++] = 0x2b;
    this.ascii(text);
    this.#crlf();
  }

  /** `-text` error reply; `text` starts with the error code (`ERR ...`). */
  error(text: string): void {
    this.ensure(text.length + 3);
    this.buf[this.len++] = 0x2d;
    this.ascii(text.replace(/[\r\n]+/g, " "));
    this.#crlf();
  }

  #crlf(): void {
    this.ensure(2);
    this.buf[this.len++] = CR;
    this.buf[this.len++] = LF;
  }

  /** `:n` integer reply (exact for BigInts). */
  int(n: number | bigint): void {
    if (typeof n === "number" && Number.isSafeInteger(n)) this.#head(0x3a, n);
    else {
      this.ensure(1);
      this.buf[this.len++] = 0x3a;
      this.ascii(String(n));
      this.#crlf();
    }
  }

  /** `$n` bulk string of `bytes[start, end)`. */
  bulk(bytes: Uint8Array, start = 0, end: number = bytes.length): void {
    const n = end - start;
    this.#head(0x24, n);
    this.ensure(n + 2);
    this.buf.set(bytes.subarray(start, end), this.len);
    this.len += n;
    this.#crlf();
  }

  /** A bulk string of ASCII text. */
  bulkText(s: string): void {
    this.#head(0x24, s.length);
    this.ascii(s);
    this.#crlf();
  }

  /**
   * A bulk string that ends the reply, kept as a view of `value` until the
   * reply is written (which happens before the store changes again).
   */
  bulkTail(value: Uint8Array): void {
    this.#head(0x24, value.length);
    this.tail = value;
  }

  /** A missing value: `$-1` in RESP2, `_` in RESP3. */
  nullBulk(): void {
    if (this.proto === 3) this.ascii("_\r\n");
    else this.ascii("$-1\r\n");
  }

  /** A missing array (EXEC aborted by WATCH): `*-1` in RESP2, `_` in RESP3. */
  nullArray(): void {
    if (this.proto === 3) this.ascii("_\r\n");
    else this.ascii("*-1\r\n");
  }

  /** `*n` array header. */
  arrayHead(n: number): void {
    this.#head(0x2a, n);
  }

  /** A map of `n` pairs: `%n` in RESP3, a flat `*2n` array in RESP2. */
  mapHead(n: number): void {
    if (this.proto === 3) this.#head(0x25, n);
    else this.#head(0x2a, 2 * n);
  }

  /** A set of `n` items: `~n` in RESP3, `*n` in RESP2. */
  setHead(n: number): void {
    this.#head(this.proto === 3 ? 0x7e : 0x2a, n);
  }

  /** A double: `,x` in RESP3, a bulk string in RESP2. */
  double(text: string): void {
    if (this.proto === 3) {
      this.ensure(1);
      this.buf[this.len++] = 0x2c;
      this.ascii(text);
      this.#crlf();
    } else this.bulkText(text);
  }

  /** Text as Redis sends INFO and CLIENT INFO: verbatim (`=`, `txt:`) in RESP3, bulk in RESP2. */
  verbatim(text: string): void {
    if (this.proto !== 3) return this.bulkText(text);
    this.#head(0x3d, text.length + 4);
    this.ascii("txt:");
    this.ascii(text);
    this.#crlf();
  }

  /** A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2. */
  bool(v: boolean): void {
    if (this.proto === 3) this.ascii(v ? "#t\r\n" : "#f\r\n");
    else this.ascii(v ? ":1\r\n" : ":0\r\n");
  }

  /** `+OK`. */
  ok(): void {
    this.ascii("+OK\r\n");
  }
}

/**
 * Bytes of a RESP2 error reply (for replies made outside a shard).
 *
 * @example
 * ```ts
 * import { errorBytes } from "./out.ts";
 * errorBytes("ERR syntax error"); // "-ERR syntax error\r\n"
 * ```
 */
export function errorBytes(text: string): Uint8Array {
  const out = new RespOut();
  out.reset(2);
  out.error(text);
  return out.bytes();
}
