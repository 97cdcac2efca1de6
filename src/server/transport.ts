/**
 * The byte pipe under a connection. A `Deno.Conn` is one already; streams
 * handed over from the main thread (`--accept main`) are adapted here.
 *
 * @module
 */

/** Minimal reader/writer a connection needs. */
export interface Transport {
  /** Reads into `p`; resolves to the count, or null at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some prefix of `p`; resolves to how many bytes were taken. */
  write(p: Uint8Array): Promise<number>;
  /** Closes both directions; pending reads and writes reject or end. */
  close(): void;
}

/**
 * Adapts a transferred `readable`/`writable` pair to {@link Transport}.
 * A chunk larger than the caller's buffer is kept and served by the next
 * reads.
 */
export class StreamTransport implements Transport {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Unread rest of the last chunk. */
  #rest: Uint8Array | null = null;
  #closed = false;

  readonly #onClose: () => void;

  /** Takes ownership of both streams; `onClose` runs once, on close. */
  constructor(
    readable: ReadableStream<Uint8Array>,
    writable: WritableStream<Uint8Array>,
    onClose: () => void = () => {},
  ) {
    this.#reader = readable.getReader();
    this.#writer = writable.getWriter();
    this.#onClose = onClose;
  }

  /** See {@link Transport.read}. */
  async read(p: Uint8Array): Promise<number | null> {
    let chunk = this.#rest;
    this.#rest = null;
    if (!chunk) {
      const r = await this.#reader.read();
      if (r.done) return null;
      chunk = r.value;
    }
    if (chunk.length > p.length) {
      p.set(chunk.subarray(0, p.length));
      this.#rest = chunk.subarray(p.length);
      return p.length;
    }
    p.set(chunk);
    return chunk.length;
  }

  /** See {@link Transport.write}. */
  async write(p: Uint8Array): Promise<number> {
    // The stream may keep the chunk after the promise settles; the caller
    // reuses its buffer, so hand over a copy.
    await this.#writer.write(p.slice());
    return p.length;
  }

  /** See {@link Transport.close}. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reader.cancel().catch(() => {});
    this.#writer.abort().catch(() => {});
    this.#onClose();
  }
}
