// The one receive loop (src/protocol/frame_reader.ts) that the client, the
// load generator and the server's connections share: frames cut whatever the
// reads look like, the buffer grown by what arrived rather than by what a
// header claims, shrunk back after a big frame, every size change reported.
import assert from "node:assert/strict";
import { FRAME_OVERHEAD, HEADER_SIZE } from "../src/protocol/constants.ts";
import {
  BAD_PREAMBLE,
  BODY_TOO_LARGE,
  encodeFrame,
  NEED_MORE,
  writeHeader,
} from "../src/protocol/frame.ts";
import { type ByteSource, FrameReader } from "../src/protocol/frame_reader.ts";
import { receiveBytesFor } from "../src/server/limits.ts";
import { concat } from "./support.ts";

const MAX_BODY = 4 << 20;

/** A wire v1 frame with `bodyLen` bytes of body, numbered `id`. */
function frameOf(id: number, bodyLen: number): Uint8Array {
  const body = new Uint8Array(bodyLen).map((_, i) => (i * 7 + id) & 0xff);
  return encodeFrame({ flags: 0, code: 1, requestId: id, status: 0, timeoutMs: 0 }, body);
}

/**
 * Hands out `chunks` one per read (a chunk larger than the space offered
 * takes several reads), then the end of the stream. Records what it was
 * offered.
 */
class Chunks implements ByteSource {
  readonly #chunks: Uint8Array[];
  #at = 0;
  /** Reads that returned bytes. */
  reads = 0;
  /** Largest space a read offered. */
  largestOffer = 0;
  /** The arrays reads were offered. */
  readonly offered: Uint8Array[] = [];

  constructor(chunks: Uint8Array[]) {
    this.#chunks = chunks.filter((c) => c.length > 0);
  }

  read(p: Uint8Array): Promise<number | null> {
    this.offered.push(p);
    this.largestOffer = Math.max(this.largestOffer, p.length);
    const chunk = this.#chunks[0];
    if (chunk === undefined) return Promise.resolve(null);
    const n = Math.min(p.length, chunk.length - this.#at);
    p.set(chunk.subarray(this.#at, this.#at + n));
    this.#at += n;
    if (this.#at === chunk.length) {
      this.#chunks.shift();
      this.#at = 0;
    }
    this.reads++;
    return Promise.resolve(n);
  }
}

/** Reads `source` to its end; the whole frames, copied, and the status that ended it. */
async function drain(
  reader: FrameReader,
  source: ByteSource,
  maxBody = MAX_BODY,
): Promise<{ frames: Uint8Array[]; ended: number }> {
  const frames: Uint8Array[] = [];
  while ((await reader.read(source)) !== null) {
    for (;;) {
      const len = reader.frame(maxBody);
      if (len < 0) return { frames, ended: len };
      if (len === NEED_MORE) break;
      frames.push(reader.bytes.slice(reader.start, reader.start + len));
      reader.consume(len);
    }
  }
  return { frames, ended: NEED_MORE };
}

Deno.test("frames split across two reads at every byte boundary come out whole", async () => {
  const sent = [frameOf(1, 0), frameOf(2, 5), frameOf(3, 40)];
  const stream = concat(...sent);
  for (let cut = 1; cut < stream.length; cut++) {
    const reader = new FrameReader({ initialBytes: 64 });
    const source = new Chunks([stream.subarray(0, cut), stream.subarray(cut)]);
    const { frames, ended } = await drain(reader, source);
    assert.equal(ended, NEED_MORE, `cut at ${cut}`);
    assert.deepEqual(frames, sent, `cut at ${cut}`);
    assert.equal(reader.pending, 0);
  }
});

Deno.test("frames sent one byte per read come out whole", async () => {
  const sent = [frameOf(1, 3), frameOf(2, 0), frameOf(3, 100)];
  const stream = concat(...sent);
  const bytes = [...stream].map((b) => new Uint8Array([b]));
  const { frames } = await drain(new FrameReader({ initialBytes: 64 }), new Chunks(bytes));
  assert.deepEqual(frames, sent);
});

Deno.test("several frames in one read are all cut from that read", async () => {
  const sent = [1, 2, 3, 4, 5].map((id) => frameOf(id, id * 10));
  const source = new Chunks([concat(...sent)]);
  const reader = new FrameReader();
  assert.equal(await reader.read(source), concat(...sent).length);
  const frames: Uint8Array[] = [];
  for (let len; (len = reader.frame(MAX_BODY)) > 0;) {
    frames.push(reader.bytes.slice(reader.start, reader.start + len));
    reader.consume(len);
  }
  assert.deepEqual(frames, sent);
  assert.equal(source.reads, 1);
  assert.equal(reader.start, 0, "an emptied buffer starts over at 0");
  assert.equal(reader.end, 0);
});

Deno.test("an empty buffer is read into as it is, with no view made", async () => {
  const source = new Chunks([frameOf(1, 4), frameOf(2, 4)]);
  const reader = new FrameReader();
  await drain(reader, source);
  assert.ok(source.offered.every((p) => p === reader.bytes));
});

Deno.test("a header that claims 4 MiB followed by 10 bytes does not allocate 4 MiB", async () => {
  const head = new Uint8Array(HEADER_SIZE + 10);
  writeHeader(head, 0, 0, 1, 1, 0, MAX_BODY, 0);
  let largest = 0;
  const reader = new FrameReader({
    initialBytes: 1024,
    resized: (_from, to) => largest = Math.max(largest, to),
  });
  const source = new Chunks([head]);
  const { frames, ended } = await drain(reader, source);
  assert.equal(ended, NEED_MORE);
  assert.equal(frames.length, 0);
  assert.equal(largest, 0, "no growth at all");
  assert.equal(reader.capacity, 1024);
  assert.equal(source.largestOffer, 1024);
});

Deno.test("a big frame grows the buffer with the bytes that arrived, not the claim", async () => {
  const big = frameOf(1, 1 << 20);
  const arrived = 100 * 1024;
  const sizes: number[] = [];
  const reader = new FrameReader({ initialBytes: 1024, resized: (_f, to) => sizes.push(to) });
  // The first 100 KiB of the frame, 4 KiB a read, then the peer goes quiet.
  const chunks = [];
  for (let at = 0; at < arrived; at += 4096) chunks.push(big.subarray(at, at + 4096));
  const { frames } = await drain(reader, new Chunks(chunks));
  assert.equal(frames.length, 0);
  assert.equal(reader.pending, arrived);
  assert.ok(sizes.length > 0);
  for (const size of sizes) assert.ok(size <= 2 * arrived, `grew to ${size}`);
  assert.ok(reader.capacity < big.length / 4);
  assert.deepEqual(reader.bytes.subarray(reader.start, reader.end), big.subarray(0, arrived));
  // Once half of it is in, the buffer is sized to the whole frame.
  assert.equal(receiveBytesFor(big.length, big.length / 2), big.length);
});

Deno.test("a big frame is read whole, and the buffer shrinks back after it", async () => {
  const big = frameOf(1, 1 << 20);
  const small = frameOf(2, 8);
  const chunks = [];
  for (let at = 0; at < big.length; at += 64 * 1024) chunks.push(big.subarray(at, at + 65536));
  chunks.push(small);
  const reader = new FrameReader({ initialBytes: 1024, keepBytes: 4096 });
  const { frames } = await drain(reader, new Chunks(chunks));
  assert.deepEqual(frames, [big, small]);
  assert.equal(reader.capacity, 1024);
});

Deno.test("a buffer grown up to keepBytes stays grown", async () => {
  const mid = frameOf(1, 10 * 1024);
  const reader = new FrameReader({ initialBytes: 1024, keepBytes: 64 * 1024 });
  const { frames } = await drain(reader, new Chunks([mid, frameOf(2, 1)]));
  assert.equal(frames.length, 2);
  assert.ok(reader.capacity >= mid.length, `capacity ${reader.capacity}`);
});

Deno.test("resized reports every capacity change, so a counter of it returns to zero", async () => {
  let held = 0;
  let changes = 0;
  const reader = new FrameReader({
    initialBytes: 1024,
    keepBytes: 2048,
    resized: (from, to) => {
      assert.equal(from, held, "from is the size last reported");
      assert.equal(to, reader.capacity);
      held += to - from;
      changes++;
    },
  });
  held += reader.capacity; // the owner counts the first buffer
  const chunks = [];
  for (const id of [1, 2, 3]) {
    const f = frameOf(id, id * 30_000);
    for (let at = 0; at < f.length; at += 5000) chunks.push(f.subarray(at, at + 5000));
    chunks.push(frameOf(10 + id, 1)); // a small one after each: shrink back
  }
  const { frames } = await drain(reader, new Chunks(chunks));
  assert.equal(frames.length, 6);
  assert.ok(changes >= 6, `${changes} changes`);
  assert.equal(held, reader.capacity);
  held -= reader.capacity; // and the last one when it drops the reader
  assert.equal(held, 0);
});

Deno.test("a partial frame with room after it stays where it is", async () => {
  const first = frameOf(1, 100);
  const second = frameOf(2, 100);
  const reader = new FrameReader({ initialBytes: 4096 });
  const source = new Chunks([concat(first, second.subarray(0, 50)), second.subarray(50)]);
  await reader.read(source);
  reader.consume(reader.frame(MAX_BODY));
  await reader.read(source);
  assert.equal(reader.start, first.length, "not moved");
  assert.deepEqual(reader.bytes.subarray(reader.start, reader.end), second);
});

Deno.test("a partial frame near the end is moved to the front of the same buffer", async () => {
  const first = frameOf(1, 600 - FRAME_OVERHEAD);
  const second = frameOf(2, 600 - FRAME_OVERHEAD);
  const reader = new FrameReader({ initialBytes: 1024 });
  const source = new Chunks([concat(first, second.subarray(0, 300)), second.subarray(300)]);
  await reader.read(source);
  const buffer = reader.bytes;
  assert.equal(reader.frame(MAX_BODY), 600);
  reader.consume(600);
  assert.equal(reader.frame(MAX_BODY), NEED_MORE);
  await reader.read(source);
  assert.equal(reader.bytes, buffer, "compacted in place");
  assert.equal(reader.start, 0);
  assert.equal(reader.frame(MAX_BODY), 600);
  assert.deepEqual(reader.bytes.subarray(0, 600), second);
});

Deno.test("a caller's hint sizes the buffer; hint 0 (length unknown) doubles it", async () => {
  // Not wire v1 at all (the RESP door): the caller knows the length, or not.
  const text = new TextEncoder().encode("x".repeat(3000));
  const hinted = new FrameReader({ initialBytes: 1024 });
  const source = new Chunks([text.subarray(0, 1024), text.subarray(1024)]);
  await hinted.read(source, 5000);
  assert.equal(hinted.capacity, 1024, "nothing arrived yet: the initial size");
  await hinted.read(source, 5000);
  assert.equal(hinted.capacity, 2048, "twice what arrived, while under half the hint");
  await hinted.read(source, 5000);
  assert.equal(hinted.capacity, 4096);
  assert.equal(await hinted.read(source, 5000), null);
  assert.equal(hinted.capacity, 5000, "over half arrived: the whole frame");
  assert.deepEqual(hinted.bytes.subarray(hinted.start, hinted.end), text);

  const unknown = new FrameReader({ initialBytes: 1024 });
  const more = new Chunks([text]);
  while (unknown.pending < text.length) await unknown.read(more, 0);
  assert.equal(unknown.capacity, 4096);
  assert.deepEqual(unknown.bytes.subarray(unknown.start, unknown.end), text);
});

Deno.test("frame() says BAD_PREAMBLE and BODY_TOO_LARGE, and skipAll drops the rest", async () => {
  const garbage = new FrameReader();
  await garbage.read(new Chunks([new TextEncoder().encode("GET / HTTP/1.1\r\n")]));
  assert.equal(garbage.frame(MAX_BODY), BAD_PREAMBLE);
  garbage.skipAll();
  assert.equal(garbage.pending, 0);

  const wrongFirstByte = new FrameReader();
  await wrongFirstByte.read(new Chunks([new Uint8Array([0x41])]));
  assert.equal(wrongFirstByte.frame(MAX_BODY), BAD_PREAMBLE, "caught on the first byte");

  const tooLarge = new FrameReader();
  const { frames, ended } = await drain(tooLarge, new Chunks([frameOf(1, 2000)]), 1000);
  assert.equal(frames.length, 0);
  assert.equal(ended, BODY_TOO_LARGE);
});
