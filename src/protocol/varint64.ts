/**
 * Exact 64-bit protobuf varints (`sint64` in zigzag form) as BigInt.
 * protobufjs without Long decodes 64-bit fields into doubles and loses
 * precision past 2^53, which a counter must not; the Incr request reader,
 * its reply writer and the client's Incr all go through these.
 *
 * @module
 */

const MASK64 = (1n << 64n) - 1n;

/** Where the last {@link readVarint64} ended; -1 when it failed. */
export let varint64End = 0;

/**
 * Reads an unsigned varint of up to 10 bytes at `b[i]` (before `end`), as
 * the low 64 bits like protobuf does; sets {@link varint64End} to the offset
 * after it, or -1 when it is truncated or longer than 10 bytes.
 *
 * @example
 * ```ts
 * import { readVarint64, varint64End } from "./varint64.ts";
 * readVarint64(new Uint8Array([0xac, 0x02]), 0, 2); // 300n, varint64End 2
 * ```
 */
export function readVarint64(b: Uint8Array, i: number, end: number): bigint {
  // Small values (the common case) stay in plain numbers.
  let lo = 0;
  for (let k = 0; k < 4 && i < end; k++) {
    const byte = b[i++];
    lo += (byte & 0x7f) * 2 ** (7 * k);
    if (byte < 0x80) {
      varint64End = i;
      return BigInt(lo);
    }
  }
  let n = BigInt(lo);
  for (let shift = 28n; shift < 70n && i < end; shift += 7n) {
    const byte = b[i++];
    n |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) {
      varint64End = i;
      return n & MASK64;
    }
  }
  varint64End = -1;
  return 0n;
}

/**
 * The signed value of a zigzag-encoded `sint64` read as unsigned.
 *
 * @example
 * ```ts
 * import { unzigzag64 } from "./varint64.ts";
 * unzigzag64(3n); // -2n
 * ```
 */
export function unzigzag64(z: bigint): bigint {
  return (z & 1n) === 0n ? z >> 1n : -(z >> 1n) - 1n;
}

/**
 * Zigzag form of a signed 64-bit value (in range), as an unsigned BigInt.
 *
 * @example
 * ```ts
 * import { zigzag64 } from "./varint64.ts";
 * zigzag64(-2n); // 3n
 * ```
 */
export function zigzag64(v: bigint): bigint {
  return v >= 0n ? v << 1n : ((-v) << 1n) - 1n;
}

/**
 * Bytes of `n` (0..2^64-1) as a varint.
 *
 * @example
 * ```ts
 * import { varint64Size } from "./varint64.ts";
 * varint64Size(300n); // 2
 * ```
 */
export function varint64Size(n: bigint): number {
  let size = 1;
  while (n >= 0x80n) {
    n >>= 7n;
    size++;
  }
  return size;
}

/**
 * Writes `n` (0..2^64-1) as a varint at `dst[off]`; returns the offset after it.
 *
 * @example
 * ```ts
 * import { writeVarint64 } from "./varint64.ts";
 * const out = new Uint8Array(2);
 * writeVarint64(out, 0, 300n); // 2; out is [0xac, 0x02]
 * ```
 */
export function writeVarint64(dst: Uint8Array, off: number, n: bigint): number {
  while (n >= 0x80n) {
    dst[off++] = Number(n & 0x7fn) | 0x80;
    n >>= 7n;
  }
  dst[off++] = Number(n);
  return off;
}
