/**
 * One RESP connection's state: its protocol version and name, its replies
 * in request order, its transaction, its WATCHed keys and its SCAN cursors.
 *
 * Every command gets a sequence number, sent as the request id of its
 * call. Shards finish out of order; a reply is written once every reply
 * before it is out. A reply that arrives in turn (the usual case) goes
 * straight from the ring or the shard to the output buffer with no copy
 * and no object of its own; only one that arrives early is kept, copied.
 *
 * @module
 */
import { HEADER_SIZE, Status } from "../protocol/constants.ts";
import { HeaderOffset, readU32 } from "../protocol/frame.ts";
import { pb } from "../protocol/messages.ts";
import type { Dispatcher, ReplySink } from "../server/io/connection.ts";
import type { Connection } from "../server/io/connection.ts";
import type { Outcome } from "../server/outcome.ts";
import type { MessageType } from "../server/service.ts";
import { ArgSpans } from "./frame.ts";
import { errorBytes } from "./out.ts";
import { RespTrack } from "../ops/resp_track.ts";

/** The answer to one call of a legacy command. */
export type Result =
  | { ok: true; value: unknown }
  | { ok: false; status: number; message: string };

/** One protobuf call a legacy command makes: method, encoded request, reply type. */
export interface Call {
  /** Method code. */
  code: number;
  /** Encoded request body. */
  body: Uint8Array;
  /** How to decode the reply. */
  reply: MessageType<unknown>;
}

/** The RESP error for a reply frame or outcome that failed. */
function failure(status: number, body: Uint8Array): Uint8Array {
  let message = `status ${status}`;
  try {
    message = pb.Error.decode(body.slice()).message || message;
  } catch {
    // Keep the status alone.
  }
  return errorBytes(
    status === Status.NO_MEMORY
      ? "OOM command not allowed when used memory > 'maxmemory'."
      : `ERR ${message}`,
  );
}

/**
 * Collects the parts of one command that made several calls (a split MGET,
 * a fan-out, a legacy command), then hands the joined reply to the session.
 */
export class Gather implements ReplySink {
  readonly #session: Session;
  readonly #seq: number;
  readonly #parts: Uint8Array[];
  readonly #statuses: number[];
  #remaining: number;
  readonly #join: (parts: Uint8Array[], statuses: number[]) => Uint8Array | null;

  /**
   * A gather of `n` parts for the command with sequence number `seq`; `join`
   * returns the reply, or null when it made further calls that will.
   */
  constructor(
    session: Session,
    seq: number,
    n: number,
    join: (parts: Uint8Array[], statuses: number[]) => Uint8Array | null,
  ) {
    this.#session = session;
    this.#seq = seq;
    this.#parts = new Array(n);
    this.#statuses = new Array(n).fill(0);
    this.#remaining = n;
    this.#join = join;
  }

  frame(conn: Connection, frame: Uint8Array): boolean {
    if (!conn.output.admit(frame.length)) return false;
    const part = readU32(frame, HeaderOffset.requestId);
    const status = readU32(frame, HeaderOffset.status);
    this.#settle(conn, part, status, frame.slice(HEADER_SIZE, frame.length - 4));
    return true;
  }

  outcome(conn: Connection, _code: number, requestId: number, outcome: Outcome): void {
    this.#settle(conn, requestId, outcome.status, outcome.body.slice());
  }

  #settle(conn: Connection, part: number, status: number, body: Uint8Array): void {
    this.#parts[part] = body;
    this.#statuses[part] = status;
    if (--this.#remaining === 0) {
      let bytes: Uint8Array | null;
      const failed = this.#statuses.findIndex((s) => s !== 0);
      if (failed >= 0) bytes = failure(this.#statuses[failed], this.#parts[failed]);
      else {
        try {
          bytes = this.#join(this.#parts, this.#statuses);
        } catch (e) {
          bytes = errorBytes(`ERR ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      // null: the join goes on with more calls and answers `seq` itself.
      if (bytes !== null) this.#session.done(conn, this.#seq, bytes);
    }
  }
}

/** Cursors kept per connection, like a small LRU: enough for `redis-cli --scan`. */
const MAX_CURSORS = 64;

/** Where a SCAN cursor stands: a shard, and the last key it returned there. */
export interface ScanCursor {
  /** Shard being scanned. */
  shard: number;
  /** Last key examined on it (empty = from its start). */
  after: Uint8Array;
}

/** A watched key and the fingerprint of its state when WATCH ran. */
export interface Watched {
  /** The key (a copy). */
  key: Uint8Array;
  /** See `fingerprint` in shard_commands.ts. */
  fp: number;
}

/** A command queued by MULTI: its bytes (a copy) and its name. */
export interface Queued {
  /** The whole command as multibulk bytes. */
  bytes: Uint8Array;
  /** Lower-case name. */
  name: string;
}

let nextClientId = 1;

/** Per-connection RESP state; also the sink for single-call replies. */
export class Session implements ReplySink {
  /** Argument spans of the command last checked. */
  readonly args: ArgSpans = new ArgSpans();
  /** 2 or 3 (after HELLO 3). */
  proto = 2;
  /** CLIENT SETNAME / HELLO SETNAME; empty = none. */
  name = "";
  /** CLIENT SETINFO LIB-NAME / LIB-VER. */
  libName = "";
  /** See {@link libName}. */
  libVer = "";
  /** CLIENT ID: unique within the process (the IO worker's index is mixed in). */
  readonly id: number;
  /** The server's body limit: the most a command, or a whole transaction, may take. */
  maxBody = 4 * 1024 * 1024;
  /** After QUIT: nothing more is read. */
  quitting = false;
  /** Commands awaiting replies, for the metrics (src/ops). */
  readonly track: RespTrack = new RespTrack();
  /** Inside MULTI: commands are queued. */
  multi = false;
  /** A command failed while queuing: EXEC answers EXECABORT. */
  dirty = false;
  /** Commands queued since MULTI. */
  queued: Queued[] = [];
  /** Their total size, at most {@link maxBody}. */
  queuedBytes = 0;
  /** Keys watched, with their state at WATCH. */
  watched: Watched[] = [];
  /** Sequence number of the next command. */
  #seq = 0;
  /** Sequence number of the next reply to write. */
  #head = 0;
  /** Replies that finished before their turn, by sequence number. */
  readonly #early = new Map<number, Uint8Array>();
  /** SCAN cursor id -> where it stands. */
  readonly #cursors = new Map<number, ScanCursor>();
  #nextCursor = 1;

  /** A session for a connection of IO worker `ioWorker`. */
  constructor(ioWorker = 0) {
    this.id = nextClientId++ * 64 + ioWorker;
  }

  /** Takes the next sequence number (the request id of the command's call). */
  nextSeq(): number {
    const s = this.#seq;
    this.#seq = (s + 1) >>> 0;
    return s;
  }

  /** The reply of command `seq` is `bytes` (kept as is if early: pass a copy). */
  done(conn: Connection, seq: number, bytes: Uint8Array): void {
    if (seq !== this.#head) {
      this.#early.set(seq, bytes);
      return;
    }
    this.#write(conn, bytes);
    this.#advance(conn);
  }

  /** Where every reply made of bytes goes out: the one place to observe them. */
  #write(conn: Connection, bytes: Uint8Array): void {
    if (conn.closed) return;
    conn.output.queueBytes(bytes);
    this.track.written(bytes[0] === 0x2d, conn.info.remote, conn.arrivedAt);
  }

  #advance(conn: Connection): void {
    this.#head = (this.#head + 1) >>> 0;
    const early = this.#early;
    if (early.size === 0) return;
    for (let b = early.get(this.#head); b !== undefined; b = early.get(this.#head)) {
      early.delete(this.#head);
      this.#write(conn, b);
      this.#head = (this.#head + 1) >>> 0;
    }
  }

  // --- ReplySink for single-call commands: the request id is the sequence number.

  frame(conn: Connection, frame: Uint8Array): boolean {
    if (!conn.output.admit(frame.length)) return false;
    const seq = readU32(frame, HeaderOffset.requestId);
    const status = readU32(frame, HeaderOffset.status);
    const body = frame.subarray(HEADER_SIZE, frame.length - 4);
    if (status !== 0) this.done(conn, seq, failure(status, body));
    else if (seq === this.#head) this.done(conn, seq, body);
    else this.done(conn, seq, body.slice());
    return true;
  }

  outcome(conn: Connection, _code: number, requestId: number, outcome: Outcome): void {
    if (outcome.status !== 0) {
      this.done(conn, requestId, failure(outcome.status, outcome.body));
    } else if (requestId === this.#head) {
      // A reply rendered by a shard in this thread goes straight to the
      // output buffer (the other place replies go out).
      if (!conn.closed) {
        // The body is written once, into the output buffer: its first byte says `-ERR`.
        const first = conn.output.queueBody(outcome);
        this.track.written(first === 0x2d, conn.info.remote, conn.arrivedAt);
      }
      this.#advance(conn);
    } else this.done(conn, requestId, outcome.body.slice());
  }

  // --- The API commands use.

  /** Queues a reply that needs no call (in order behind earlier ones). */
  reply(conn: Connection, bytes: Uint8Array): void {
    this.done(conn, this.nextSeq(), bytes);
  }

  /**
   * Makes protobuf `calls` (in parallel, on whatever shards they route to)
   * and queues the reply that `render` makes of their answers. For commands
   * off the hot path; the string commands take the direct path instead.
   */
  call(
    conn: Connection,
    dispatcher: Dispatcher,
    calls: Call[],
    render: (results: Result[]) => Uint8Array,
  ): void {
    const gather = new Gather(
      this,
      this.nextSeq(),
      calls.length,
      (parts, statuses) =>
        render(parts.map((bytes, i): Result => {
          if (statuses[i] === 0) return { ok: true, value: calls[i].reply.decode(bytes) };
          return { ok: false, status: statuses[i], message: `status ${statuses[i]}` };
        })),
    );
    calls.forEach((c, part) =>
      dispatcher.call(conn, gather, c.code, part, 0, c.body, 0, c.body.length, 0, true)
    );
  }

  /** Remembers where a SCAN stopped; returns the cursor to give out. */
  saveCursor(cursor: ScanCursor): number {
    const id = this.#nextCursor++;
    this.#cursors.set(id, cursor);
    if (this.#cursors.size > MAX_CURSORS) {
      this.#cursors.delete(this.#cursors.keys().next().value!);
    }
    return id;
  }

  /** Where a cursor stands; null for an unknown cursor. */
  cursor(id: number): ScanCursor | null {
    return this.#cursors.get(id) ?? null;
  }

  /** Ends a transaction: nothing queued, nothing watched. */
  resetTransaction(): void {
    this.multi = false;
    this.dirty = false;
    this.queued = [];
    this.queuedBytes = 0;
    this.watched = [];
  }
}
