/**
 * RESP2 reply encoding.
 *
 * @module
 */

const encoder = new TextEncoder();
const CRLF = "\r\n";

/** `+OK` style status reply. */
export function simple(text: string): Uint8Array {
  return encoder.encode(`+${text}${CRLF}`);
}

/** `-ERR ...` error reply; `text` includes the error kind (`ERR`, ...). */
export function error(text: string): Uint8Array {
  return encoder.encode(`-${text.replace(/[\r\n]+/g, " ")}${CRLF}`);
}

/** `:n` integer reply. */
export function integer(n: number): Uint8Array {
  return encoder.encode(`:${n}${CRLF}`);
}

/** `$-1`: the null bulk string (a missing key). */
export const NULL_BULK: Uint8Array = encoder.encode(`$-1${CRLF}`);
/** `+OK`. */
export const OK: Uint8Array = simple("OK");

/** `$n` bulk string of raw bytes (binary safe). */
export function bulk(bytes: Uint8Array | string): Uint8Array {
  const body = typeof bytes === "string" ? encoder.encode(bytes) : bytes;
  const head = encoder.encode(`$${body.length}${CRLF}`);
  const out = new Uint8Array(head.length + body.length + 2);
  out.set(head);
  out.set(body, head.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/** `*n` array of already encoded replies. */
export function array(items: Uint8Array[]): Uint8Array {
  const head = encoder.encode(`*${items.length}${CRLF}`);
  let size = head.length;
  for (const item of items) size += item.length;
  const out = new Uint8Array(size);
  out.set(head);
  let off = head.length;
  for (const item of items) {
    out.set(item, off);
    off += item.length;
  }
  return out;
}
