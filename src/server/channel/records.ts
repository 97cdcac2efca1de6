/**
 * Layouts of the records that cross rings. Both are 8-aligned payloads in
 * a {@link Ring}; offsets below are bytes from the payload start, and word
 * indexes are `(payload >>> 2) + field`.
 *
 * A request record carries what the executor needs (the frame's header
 * fields, the deadline and the body); its CRC was checked by the IO worker.
 * A reply record carries a whole encoded reply frame, so the IO worker only
 * copies it into the connection's output.
 *
 * @module
 */

/** Request record: u32 words, then an f64 deadline, then the body. */
export const Req = {
  /** Word: IO-worker-local connection id. */
  conn: 0,
  /** Word: the frame's request_id. */
  requestId: 1,
  /** Word: code (low 16 bits) | flags << 16. */
  codeFlags: 2,
  /** Word: body length. */
  bodyLen: 3,
  /** f64 at byte 16: Date.now() deadline, 0 for none. */
  deadlineByte: 16,
  /** Word: fan-out id (0 when the request runs on one shard). */
  fanout: 6,
  /** Word: the connection's receive buffer size, for {@link CallerFootprint}. */
  receiveBytes: 7,
  /** Word: the sending IO worker's generation, echoed in the reply. */
  generation: 8,
} as const;
/** Bytes before the body of a request record (8-aligned). */
export const REQUEST_HEADER = 40;

/** Reply record: u32 words, then the frame. */
export const Rep = {
  /** Word: IO-worker-local connection id. */
  conn: 0,
  /** Word: fan-out id, 0 for a final reply. */
  fanout: 1,
  /** Word: frame length. */
  frameLen: 2,
  /**
   * Word: the generation of the IO worker that sent the request. A
   * restarted IO worker drops replies meant for the one before it.
   */
  generation: 3,
} as const;
/** Bytes before the frame of a reply record. */
export const REPLY_HEADER = 16;
