/**
 * CRC-32 (IEEE 802.3, as zlib computes it) of frame bodies.
 *
 * Native zlib wins for large bodies, but each call crosses into native code,
 * which costs more than the whole sum for small bodies (and about 3x more
 * inside a worker), so bodies under {@link NATIVE_CRC_THRESHOLD} bytes use a
 * slice-by-8 table in JS. Both give identical results; a test checks that.
 *
 * @module
 */
import { crc32 as zlibCrc32 } from "node:zlib";

/** Body length from which native zlib is used instead of the JS table. */
export const NATIVE_CRC_THRESHOLD = 256;

const TABLES = buildTables();

function buildTables(): Uint32Array {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
}

/**
 * CRC-32 of `bytes` in pure JS (slice-by-8).
 *
 * @example
 * ```ts
 * import { crc32Js } from "@evkv/evkv";
 * crc32Js(new TextEncoder().encode("123456789")) === 0xcbf43926; // true
 * ```
 */
export function crc32Js(bytes: Uint8Array): number {
  const t = TABLES;
  let crc = 0xffffffff;
  let i = 0;
  const n = bytes.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    const a = crc ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    crc = t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^
      t[1280 + ((a >>> 16) & 0xff)] ^ t[1024 + (a >>> 24)] ^
      t[768 + bytes[i + 4]] ^ t[512 + bytes[i + 5]] ^ t[256 + bytes[i + 6]] ^ t[bytes[i + 7]];
    i += 8;
  }
  while (i < n) crc = t[(crc ^ bytes[i++]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * CRC-32 of a frame body, as the trailer carries it. An empty body has crc 0.
 *
 * @example
 * ```ts
 * import { crc32 } from "@evkv/evkv";
 * crc32(new TextEncoder().encode("123456789")) === 0xcbf43926; // true
 * ```
 */
export function crc32(bytes: Uint8Array): number {
  return bytes.length < NATIVE_CRC_THRESHOLD ? crc32Js(bytes) : zlibCrc32(bytes) >>> 0;
}
