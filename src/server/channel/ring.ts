/**
 * A single-producer, single-consumer ring of variable-length records in a
 * SharedArrayBuffer: the hand-off between an IO worker and a shard's
 * executor, one ring per direction per pair, so no locks and no CAS.
 *
 * Positions are free-running u32 byte counts; a record never wraps: when it
 * does not fit before the end, the producer writes a pad marker and starts
 * at offset 0. A capacity of at least twice the largest record therefore
 * always accepts that record once the ring is empty.
 *
 * @module
 */

const CTRL_BYTES = 128; // write index and read index on separate cache lines
const WRITE = 0;
const READ = 16;
const PAD = 0x80000000;
/**
 * Bytes written and not yet released by the consumer, read from any thread
 * (the watchdog asks whether a shard has work).
 */
export function ringBacklog(memory: SharedArrayBuffer): number {
  const ctrl = new Int32Array(memory, 0, CTRL_BYTES / 4);
  return (Atomics.load(ctrl, WRITE) - Atomics.load(ctrl, READ)) >>> 0;
}

/** Bytes of the ring's own record header (length word + alignment). */
export const RECORD_HEADER = 8;

/** The power of two >= `n`. */
export function ringCapacityFor(n: number): number {
  let c = 1024;
  while (c < n) c *= 2;
  return c;
}

/**
 * Shared memory for a ring whose data area is `capacity` bytes (a power of
 * two).
 */
export function createRingMemory(capacity: number): SharedArrayBuffer {
  if (capacity & (capacity - 1)) throw new RangeError("Ring capacity must be a power of two");
  return new SharedArrayBuffer(CTRL_BYTES + capacity);
}

/**
 * One end of a ring. The producer calls {@link reserve}, writes the payload
 * through the typed views, then {@link commit}; the consumer calls
 * {@link next} until it returns -1, reads each payload, then
 * {@link release} to hand the space back.
 */
export class Ring {
  /** Data area as bytes; payload offsets index into this. */
  readonly u8: Uint8Array;
  /** Data area as u32 words (offsets / 4); records are 8-aligned. */
  readonly u32: Uint32Array;
  /** Data area as f64 (offsets / 8). */
  readonly f64: Float64Array;
  /** Data area size in bytes. */
  readonly capacity: number;
  /** The shared memory, to pass to the other thread. */
  readonly memory: SharedArrayBuffer;
  readonly #ctrl: Int32Array;
  readonly #mask: number;
  /** Producer: next write position (also published in ctrl). */
  #w: number;
  /** Producer: offset and size of the reserved, not yet committed record. */
  #resOff = 0;
  #resLen = 0;
  /** Consumer: position past the last record handed out by next(). */
  #r: number;
  /** Consumer: last write position seen, to avoid an atomic load per record. */
  #wSeen: number;
  /** Length of the payload returned by the last next(). */
  payloadLength = 0;

  /** Opens the ring in `memory` (from {@link createRingMemory}). */
  constructor(memory: SharedArrayBuffer) {
    this.memory = memory;
    this.capacity = memory.byteLength - CTRL_BYTES;
    this.#mask = this.capacity - 1;
    this.#ctrl = new Int32Array(memory, 0, CTRL_BYTES / 4);
    this.u8 = new Uint8Array(memory, CTRL_BYTES, this.capacity);
    this.u32 = new Uint32Array(memory, CTRL_BYTES, this.capacity / 4);
    this.f64 = new Float64Array(memory, CTRL_BYTES, this.capacity / 8);
    this.#w = Atomics.load(this.#ctrl, WRITE) >>> 0;
    this.#r = Atomics.load(this.#ctrl, READ) >>> 0;
    this.#wSeen = this.#r;
  }

  /** Bytes a record with a `payload`-byte payload takes in the ring. */
  static recordSize(payload: number): number {
    return (payload + RECORD_HEADER + 7) & ~7;
  }

  /**
   * Producer: reserves room for `payload` bytes and returns the payload's
   * byte offset in {@link u8} (8-aligned), or -1 when the ring is full.
   */
  reserve(payload: number): number {
    const need = Ring.recordSize(payload);
    const r = Atomics.load(this.#ctrl, READ) >>> 0;
    const free = this.capacity - ((this.#w - r) >>> 0);
    let off = this.#w & this.#mask;
    const tail = this.capacity - off;
    const skip = tail < need ? tail : 0;
    if (free < need + skip) return -1;
    if (skip) {
      this.u32[off >>> 2] = (PAD | skip) >>> 0;
      this.#w = (this.#w + skip) >>> 0;
      off = 0;
    }
    this.#resOff = off;
    this.#resLen = need;
    return off + RECORD_HEADER;
  }

  /** Producer: publishes the record reserved last. */
  commit(): void {
    this.u32[this.#resOff >>> 2] = this.#resLen;
    this.#w = (this.#w + this.#resLen) >>> 0;
    Atomics.store(this.#ctrl, WRITE, this.#w | 0);
  }

  /**
   * Consumer: the payload offset of the next record, or -1 when none has
   * been published. Its length is in {@link payloadLength}; the record stays
   * valid until {@link release}.
   */
  next(): number {
    for (;;) {
      if (this.#r === this.#wSeen) {
        this.#wSeen = Atomics.load(this.#ctrl, WRITE) >>> 0;
        if (this.#r === this.#wSeen) return -1;
      }
      const off = this.#r & this.#mask;
      const word = this.u32[off >>> 2];
      if (word & PAD) {
        this.#r = (this.#r + (word & ~PAD)) >>> 0;
        continue;
      }
      this.#r = (this.#r + word) >>> 0;
      this.payloadLength = word - RECORD_HEADER;
      return off + RECORD_HEADER;
    }
  }

  /** Consumer: hands back the space of every record returned by next(). */
  release(): void {
    Atomics.store(this.#ctrl, READ, this.#r | 0);
  }

  /**
   * Producer, once the consumer thread is dead: drops every record it had
   * not released, so that its replacement starts on an empty ring. Returns
   * how many records and bytes were dropped.
   */
  discardUnconsumed(): { records: number; bytes: number } {
    let r = Atomics.load(this.#ctrl, READ) >>> 0;
    const w = this.#w;
    let records = 0;
    let bytes = 0;
    while (r !== w) {
      const word = this.u32[(r & this.#mask) >>> 2];
      const size = word & ~PAD;
      if (!(word & PAD)) {
        records++;
        bytes += size;
      }
      r = (r + size) >>> 0;
    }
    Atomics.store(this.#ctrl, READ, w | 0);
    return { records, bytes };
  }
}
