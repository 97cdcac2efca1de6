/**
 * CRC-32 of frame bodies: the JS slice-by-16 table against node:zlib's
 * native crc32 at several sizes, to check where ZLIB_CRC_THRESHOLD sits.
 *
 * Run: `deno bench bench/micro/crc_bench.ts`
 *
 * @module
 */
import { crc32 as zlibCrc32 } from "node:zlib";
import { crc32, crc32Js, ZLIB_CRC_THRESHOLD } from "../../src/protocol/crc32.ts";

const SIZES = [16, 64, 256, 1024, 4096, 65536];

let sink = 0;

for (const size of SIZES) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 0xff;
  if (crc32Js(bytes) !== zlibCrc32(bytes) >>> 0) throw new Error(`CRC differs at ${size} B`);
  const group = `crc32 ${size} B`;
  Deno.bench({
    name: `crc32Js (slice-by-16) ${size} B`,
    group,
    baseline: true,
    fn() {
      sink ^= crc32Js(bytes);
    },
  });
  Deno.bench({
    name: `node:zlib crc32 ${size} B`,
    group,
    fn() {
      sink ^= zlibCrc32(bytes);
    },
  });
  Deno.bench({
    name: `crc32 (JS below ${ZLIB_CRC_THRESHOLD} B, else zlib) ${size} B`,
    group,
    fn() {
      sink ^= crc32(bytes);
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
