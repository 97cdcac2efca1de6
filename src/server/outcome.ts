/**
 * A call's outcome (status and reply body, encoded or still to be written)
 * and the wire v1 reply frame around it. Shards make outcomes, the channel
 * carries their frames, and the IO side writes them to sockets; none of
 * them needs the executor for that.
 *
 * @module
 */
import { Flags, FRAME_OVERHEAD, HEADER_SIZE, Status, STATUS_NAMES } from "../protocol/constants.ts";
import { crc32Of } from "../protocol/crc32.ts";
import { writeHeader, writeU32 } from "../protocol/frame.ts";
import { encodeError } from "../protocol/messages.ts";
import { Counter, type StatsBlock } from "../stats/resources.ts";
import type { BodyWriter } from "./service.ts";

/**
 * What protobufjs's Writer is inside: a list of write operations whose total
 * length is known before any byte is written. `finish()` allocates a buffer
 * and runs them; {@link Outcome} runs them straight into the reply's
 * destination instead (the connection's output buffer or a reply ring), so
 * a reply body is neither allocated on its own nor copied. Pinned to
 * protobufjs 7.5.4; a test checks that both ways give the same bytes.
 */
interface EncodedOps {
  len: number;
  head: { next: EncodedOp | undefined };
}
interface EncodedOp {
  fn(val: unknown, buf: Uint8Array, pos: number): void;
  val: unknown;
  len: number;
  /** undefined on the last operation. */
  next: EncodedOp | undefined;
}

/** Runs a protobufjs Writer's operations into the destination. */
const opsWriter: BodyWriter<EncodedOps> = {
  size: (ops) => ops.len,
  write(ops, dst, off) {
    let pos = off;
    for (let op = ops.head.next; op !== undefined; op = op.next) {
      op.fn(op.val, dst, pos);
      pos += op.len;
    }
  },
};

/** A reply's status and encoded body. */
export class Outcome {
  /** Wire status; 0 is OK. */
  readonly status: number;
  #size: number;
  #bytes: Uint8Array | null;
  /** With {@link #message}: a body still to be written, or null. */
  #writer: BodyWriter<unknown> | null;
  #message: unknown;

  /** An outcome whose body is these bytes. */
  constructor(status: number, body: Uint8Array) {
    this.status = status;
    this.#size = body.length;
    this.#bytes = body;
    this.#writer = null;
    this.#message = null;
  }

  /**
   * An outcome whose body `writer` will write from `message`, which must
   * stay unchanged until then.
   */
  static written(status: number, writer: BodyWriter<unknown>, message: unknown): Outcome {
    const o = new Outcome(status, EMPTY);
    o.#size = writer.size(message);
    o.#bytes = null;
    o.#writer = writer;
    o.#message = message;
    return o;
  }

  /**
   * An outcome whose body is still a protobufjs Writer's operations. The
   * values it references must stay unchanged until the body is written.
   */
  static encoded(status: number, writer: { finish(): Uint8Array }): Outcome {
    return Outcome.written(status, opsWriter as BodyWriter<unknown>, writer);
  }

  /** Body length in bytes. */
  get size(): number {
    return this.#size;
  }

  /** The body as bytes (made on first use when still encoded). */
  get body(): Uint8Array {
    if (this.#bytes === null) {
      const out = new Uint8Array(this.size);
      this.writeBody(out, 0);
      this.#bytes = out;
    }
    return this.#bytes;
  }

  /**
   * The body's CRC-32 if its writer knows it without the bytes (see
   * {@link BodyWriter.crc}), else -1. Ask before {@link writeBody}.
   */
  knownCrc(): number {
    const writer = this.#writer;
    if (writer === null || writer.crc === undefined) return -1;
    const crc = writer.crc(this.#message);
    return crc >= 0 ? crc : -1;
  }

  /**
   * Writes the body into `dst` at `off`. A body still to be written can be
   * written once: protobufjs's operations may consume their values (64-bit
   * varints do), and a BodyWriter's message may view memory that changes
   * later, so a second write throws rather than send wrong bytes.
   */
  writeBody(dst: Uint8Array, off: number): void {
    const writer = this.#writer;
    if (writer === null) {
      if (this.#bytes === null) throw new Error("Write reply body: it was already written");
      dst.set(this.#bytes, off);
      return;
    }
    this.#writer = null;
    writer.write(this.#message, dst, off);
    this.#message = null;
  }
}

const EMPTY = new Uint8Array(0);

/** Builds the error outcome for `status`. */
export function errorOutcome(status: number, message: string): Outcome {
  return new Outcome(status, encodeError(status, message));
}

/** Bytes of the reply frame for `outcome`. */
export function replyFrameSize(outcome: Outcome): number {
  return outcome.size + FRAME_OVERHEAD;
}

/** Writes the reply frame for `outcome` into `dst` at `off`. */
export function writeReplyFrame(
  dst: Uint8Array,
  off: number,
  code: number,
  requestId: number,
  outcome: Outcome,
): void {
  const size = outcome.size;
  const flags = outcome.status === 0 ? Flags.REPLY : Flags.REPLY | Flags.ERROR;
  const at = off + HEADER_SIZE;
  writeHeader(dst, off, flags, code, requestId, outcome.status, size, 0);
  const known = outcome.knownCrc();
  outcome.writeBody(dst, at);
  const crc = size === 0 ? 0 : known >= 0 ? known : crc32Of(dst, at, at + size);
  writeU32(dst, at + size, crc);
}

const ERROR_COUNTER_BASE = Counter["errors.BAD_REQUEST"];

/**
 * Counts a reply with `status` in `errors.<STATUS>`; statuses a service
 * invents beyond the spec's table count as `errors.INTERNAL`.
 */
export function countError(stats: StatsBlock, status: number): void {
  if (status === 0) return;
  const known = status < STATUS_NAMES.length ? status : Status.INTERNAL;
  stats.count(ERROR_COUNTER_BASE + known - 1);
}
