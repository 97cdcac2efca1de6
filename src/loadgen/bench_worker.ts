/**
 * The load generator's engine and its worker entry. Each worker (or the
 * calling thread, with `threads: 0`) runs a share of the connections: it
 * opens them, fills its part of the keyspace with pipelined Puts, waits for
 * the go signal so that every share starts the timed phase together, then
 * keeps a window of `pipeline` requests in flight on each connection until
 * the deadline or its request quota. Latencies go into an HDR histogram,
 * which is handed back encoded so that the parent can merge the shares.
 *
 * Requests are raw wire-v1 frames built once per key before the run; during
 * the run a request costs one copy and a patched `request_id`. A reply is
 * matched on `request_id` alone, so an echo server's copy of the request
 * (no REPLY flag, status 0) counts as a successful reply.
 *
 * @module
 */
import * as hdr from "hdr-histogram-js";
import { Flags, HEADER_SIZE, KvMethod, statusName } from "../protocol/constants.ts";
import { crc32, crc32Combine, crc32Range } from "../protocol/crc32.ts";
import {
  BAD_PREAMBLE,
  BODY_TOO_LARGE,
  crcMatches,
  encodeFrame,
  HeaderOffset,
  readU32,
  writeU32,
} from "../protocol/frame.ts";
import { FrameReader } from "../protocol/frame_reader.ts";
import { pb } from "../protocol/messages.ts";

/** Latencies are recorded in microseconds, up to this many (60 s) before the histogram grows. */
export const HISTOGRAM_MAX_US = 60_000_000;
/** Significant decimal digits the histogram keeps (0.1% value resolution). */
export const HISTOGRAM_DIGITS = 3;
/** Requests in flight per connection while filling the keyspace. */
const FILL_WINDOW = 32;
/** Largest body a reply may carry; as the server's default limit. */
const MAX_REPLY_BODY = 4 * 1024 * 1024;
/** `request_id` = generation << 16 | slot, so a window holds at most this many slots. */
const MAX_WINDOW = 0xffff;

/** Error names the load generator itself counts, next to the spec's status names. */
export const CLIENT_ERRORS = {
  /** The reply's CRC trailer does not match its body. */
  badCrc: "REPLY_CRC_MISMATCH",
  /** A reply whose `request_id` matches no request in flight. */
  unexpected: "UNEXPECTED_REPLY",
  /** Requests in flight when their connection closed or broke. */
  closed: "CONNECTION_CLOSED",
  /** Requests still in flight when the stall timeout gave up on them. */
  timeout: "CLIENT_TIMEOUT",
} as const;

/** What one share of the load runs; plain data, so it can be posted to a worker. */
export interface ShareConfig {
  /** Server host. */
  host: string;
  /** Server port. */
  port: number;
  /** Connections this share opens. */
  connections: number;
  /** Requests in flight per connection. */
  pipeline: number;
  /** Timed phase length in ms; 0 when a request count ends the run. */
  durationMs: number;
  /** Requests this share sends in the timed phase; 0 when a duration ends the run. */
  requests: number;
  /** Fraction of requests that are Gets (the rest are Puts). */
  getFraction: number;
  /** Size of the keyspace (keys `bench:<n>`, n from 0). */
  keys: number;
  /** Bytes per value. */
  valueSize: number;
  /** Fill keys n with n % fillStride === fillOffset before the timed phase; 0 = no fill. */
  fillStride: number;
  /** This share's residue for the fill. */
  fillOffset: number;
  /** Give up on requests in flight after this many ms without any reply. */
  stallMs: number;
  /** Seed of this share's random choices. */
  seed: number;
  /** Speak TLS, trusting these CA certificates (PEM); absent: plain TCP. */
  tlsCaCerts?: string[];
}

/** What one share reports at the end. */
export interface ShareResult {
  /** OK replies in the timed phase. */
  ok: number;
  /** Error counts by status or client error name. */
  errors: Record<string, number>;
  /** Gets and Puts sent in the timed phase. */
  sent: { get: number; put: number };
  /** Bytes written and read in the timed phase. */
  txBytes: number;
  /** Bytes read in the timed phase. */
  rxBytes: number;
  /** Timed phase, from go until the last reply, in ms. */
  elapsedMs: number;
  /** Keys written by this share's fill. */
  filled: number;
  /** Errors of the fill phase, by name. */
  fillErrors: Record<string, number>;
  /** Fill phase length in ms. */
  fillMs: number;
  /** Latency histogram of OK replies (µs), as HdrHistogram compressed base64. */
  histogram: string;
}

/** Messages from the parent to a worker. */
export type ToWorker =
  | { type: "init"; config: ShareConfig; progress: SharedArrayBuffer; index: number }
  | { type: "go" };

/** Messages from a worker to the parent. */
export type FromWorker =
  | { type: "ready" }
  | { type: "done"; result: ShareResult }
  | { type: "error"; message: string };

/**
 * A histogram as HdrHistogram's compressed base64 (what a worker posts).
 *
 * @example
 * ```ts
 * import { decodeHistogram, encodeHistogram, newHistogram } from "./bench_worker.ts";
 * const h = newHistogram();
 * h.recordValue(250);
 * decodeHistogram(encodeHistogram(h)).totalCount; // 1
 * ```
 */
export function encodeHistogram(h: LatencyHistogram): string {
  return hdr.encodeIntoCompressedBase64(h as unknown as hdr.Histogram);
}

/**
 * The histogram that {@link encodeHistogram} encoded.
 *
 * @example
 * ```ts
 * import { decodeHistogram, encodeHistogram, newHistogram } from "./bench_worker.ts";
 * const copy = decodeHistogram(encodeHistogram(newHistogram()));
 * ```
 */
export function decodeHistogram(encoded: string): LatencyHistogram {
  return hdr.decodeFromCompressedBase64(encoded);
}

/** The part of an HDR histogram the load generator uses; values are µs. */
export interface LatencyHistogram {
  /** Values recorded. */
  readonly totalCount: number;
  /** Largest value recorded. */
  readonly maxValue: number;
  /** Smallest non-zero value recorded. */
  readonly minNonZeroValue: number;
  /** Mean of the values recorded. */
  readonly mean: number;
  /** Records one value. */
  recordValue(value: number): void;
  /** The value at `percentile` (0 to 100). */
  getValueAtPercentile(percentile: number): number;
  /** Adds every count of `other` to this one. */
  add(other: LatencyHistogram): void;
}

/**
 * Builds the histogram every share records into and the parent merges into.
 *
 * @example
 * ```ts
 * import { newHistogram } from "./bench_worker.ts";
 * const h = newHistogram();
 * h.recordValue(120); // 120 µs
 * ```
 */
export function newHistogram(): LatencyHistogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: HISTOGRAM_MAX_US,
    numberOfSignificantValueDigits: HISTOGRAM_DIGITS,
    autoResize: true,
  });
}

/** Keys are `bench:<n>` with n zero-padded to a fixed width. */
const KEY_PREFIX = "bench:";

/**
 * The requests of the keyspace. Every Get frame is the same but for the
 * key's digits and the CRC, and so is every Put frame (all Puts carry the
 * same value), so only one template of each and two CRCs per key are kept,
 * and a request is assembled when it is sent. Whole frames per key used to
 * be built up front: 1.8 MB per load generator thread at the default
 * 10,000 keys of 100 B, read at random, which on this 2-core VM competed
 * with the server's own store for the few MB of cache that both share.
 */
class Frames {
  readonly getLen: number;
  readonly putLen: number;
  readonly #get: Uint8Array;
  readonly #put: Uint8Array;
  /** Body CRCs per key. */
  readonly #getCrc: Uint32Array;
  readonly #putCrc: Uint32Array;
  /** Digits in a key, and where they start in either frame (the key is the first field). */
  readonly #width: number;
  readonly #digitsAt = HEADER_SIZE + 2 + KEY_PREFIX.length;

  constructor(keys: number, valueSize: number, seed: number) {
    this.#width = Math.max(1, String(keys - 1).length);
    const value = new Uint8Array(valueSize);
    // Random bytes so that nothing on the path can win by compressing them.
    let x = seed >>> 0 || 1;
    for (let i = 0; i < valueSize; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      value[i] = x;
    }
    const key = new TextEncoder().encode(KEY_PREFIX + "0".repeat(this.#width));
    const fields = { flags: 0, requestId: 0, status: 0, timeoutMs: 0 };
    this.#get = encodeFrame(
      { ...fields, code: KvMethod.Get },
      pb.GetRequest.encode({ key }).finish(),
    );
    this.#put = encodeFrame(
      { ...fields, code: KvMethod.Put },
      pb.PutRequest.encode({ key, value: valueSize > 0 ? value : undefined }).finish(),
    );
    this.getLen = this.#get.length;
    this.putLen = this.#put.length;
    // A Put body is the key field, then the value field that every Put shares:
    // its CRC is the key field's CRC combined with the value field's, once.
    const keyFieldEnd = HEADER_SIZE + 2 + key.length;
    const valueField = this.#put.subarray(keyFieldEnd, this.putLen - 4);
    const valueCrc = crc32(valueField);
    this.#getCrc = new Uint32Array(keys);
    this.#putCrc = new Uint32Array(keys);
    const scratch = this.#get.slice();
    for (let k = 0; k < keys; k++) {
      this.#digits(k, scratch, this.#digitsAt);
      this.#getCrc[k] = crc32Range(scratch, HEADER_SIZE, this.getLen - 4);
      const keyCrc = crc32Range(scratch, HEADER_SIZE, keyFieldEnd);
      this.#putCrc[k] = crc32Combine(keyCrc, valueCrc, valueField.length);
    }
  }

  /** Writes key `k`'s zero-padded digits at `dst[at]`. */
  #digits(k: number, dst: Uint8Array, at: number): void {
    for (let i = at + this.#width - 1; i >= at; i--) {
      dst[i] = 0x30 + (k % 10);
      k = Math.floor(k / 10);
    }
  }

  /** Writes the Get of key `k` at `dst[off]`; returns the offset past it. */
  writeGet(k: number, dst: Uint8Array, off: number): number {
    return this.#write(this.#get, this.#getCrc, k, dst, off);
  }

  /** Writes the Put of key `k` at `dst[off]`; returns the offset past it. */
  writePut(k: number, dst: Uint8Array, off: number): number {
    return this.#write(this.#put, this.#putCrc, k, dst, off);
  }

  /** `template` with key `k`'s digits and body CRC, at `dst[off]`. */
  #write(template: Uint8Array, crcs: Uint32Array, k: number, dst: Uint8Array, off: number): number {
    dst.set(template, off);
    this.#digits(k, dst, off + this.#digitsAt);
    const end = off + template.length;
    writeU32(dst, end - 4, crcs[k]);
    return end;
  }
}

/** Picks the next request of a phase; one per share, shared by its connections. */
interface Source {
  /** Largest frame this source produces. */
  readonly maxLen: number;
  /** Whether another request may be sent now. */
  more(now: number): boolean;
  /** Copies the next request into `dst` at `off`; returns the offset past it. */
  write(dst: Uint8Array, off: number): number;
}

/** Sequential Puts of this share's keys. */
class FillSource implements Source {
  readonly maxLen: number;
  #next: number;
  readonly #stride: number;
  readonly #keys: number;
  readonly #f: Frames;

  constructor(f: Frames, keys: number, stride: number, offset: number) {
    this.#f = f;
    this.maxLen = f.putLen;
    this.#keys = keys;
    this.#stride = stride;
    this.#next = offset;
  }

  more(): boolean {
    return this.#next < this.#keys;
  }

  write(dst: Uint8Array, off: number): number {
    const k = this.#next;
    this.#next += this.#stride;
    return this.#f.writePut(k, dst, off);
  }
}

/** Random Gets and Puts over the whole keyspace until the deadline or the quota. */
class MixSource implements Source {
  readonly maxLen: number;
  readonly sent = { get: 0, put: 0 };
  /** 0 = no deadline. */
  deadline = 0;
  #left: number;
  #x: number;
  readonly #getCut: number;
  readonly #keys: number;
  readonly #f: Frames;

  constructor(f: Frames, cfg: ShareConfig) {
    this.#f = f;
    this.maxLen = Math.max(f.getLen, f.putLen);
    this.#keys = cfg.keys;
    this.#left = cfg.requests > 0 ? cfg.requests : Infinity;
    this.#x = (cfg.seed * 2654435761) >>> 0 || 1;
    this.#getCut = Math.round(cfg.getFraction * 0x100000000);
  }

  more(now: number): boolean {
    return this.#left > 0 && (this.deadline === 0 || now < this.deadline);
  }

  #rand(): number {
    let x = this.#x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#x = x;
    return x >>> 0;
  }

  write(dst: Uint8Array, off: number): number {
    this.#left--;
    const key = this.#rand() % this.#keys;
    const f = this.#f;
    if (this.#rand() < this.#getCut) {
      this.sent.get++;
      return f.writeGet(key, dst, off);
    }
    this.sent.put++;
    return f.writePut(key, dst, off);
  }
}

/** What a phase gathers over every connection of the share. */
class Tally {
  ok = 0;
  tx = 0;
  rx = 0;
  /** performance.now() of the last reply, or of the last connection's end. */
  lastReplyAt = 0;
  readonly errors: Record<string, number> = {};
  constructor(readonly histogram: LatencyHistogram | null) {}

  error(name: string, n = 1): void {
    if (n > 0) this.errors[name] = (this.errors[name] ?? 0) + n;
  }
}

/**
 * One connection's window: slot `s` is free or holds the send time of the
 * request whose id is `gen[s] << 16 | s`, so ids never repeat within 65536
 * uses of a slot and a late or foreign reply cannot be taken for a live one.
 */
class BenchConn {
  readonly #conn: Deno.Conn;
  /** Replies as they arrive; one buffer for every phase of the run. */
  readonly #reader = new FrameReader({ initialBytes: 64 * 1024 });
  #sentAt = new Float64Array(0);
  #gen = new Uint16Array(0);
  #live = new Uint8Array(0);
  #free = new Int32Array(0);
  #freeTop = 0;
  inflight = 0;
  #broken = false;
  #writeChain: Promise<void> = Promise.resolve();

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Whether the connection was closed or broke; a broken one sends nothing more. */
  get broken(): boolean {
    return this.#broken;
  }

  close(): void {
    if (this.#broken) return;
    this.#broken = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed after an I/O error.
    }
  }

  /** Gives up on the requests in flight (stall timeout); the read loop then ends. */
  abandon(tally: Tally): void {
    tally.error(CLIENT_ERRORS.timeout, this.inflight);
    this.inflight = 0;
    this.close();
  }

  #setWindow(n: number): void {
    this.#sentAt = new Float64Array(n);
    this.#gen = new Uint16Array(n);
    this.#live = new Uint8Array(n);
    this.#free = new Int32Array(n);
    for (let i = 0; i < n; i++) this.#free[i] = n - 1 - i;
    this.#freeTop = n;
    this.inflight = 0;
  }

  /** Fills the free slots from `src` and writes them in one batch. */
  #send(src: Source, tally: Tally): void {
    if (this.#broken || this.#freeTop === 0) return;
    const now = performance.now();
    if (!src.more(now)) return;
    const out = new Uint8Array(this.#freeTop * src.maxLen);
    let off = 0;
    let n = 0;
    while (this.#freeTop > 0 && src.more(now)) {
      const slot = this.#free[--this.#freeTop];
      const at = off;
      off = src.write(out, off);
      const gen = (this.#gen[slot] + 1) & 0xffff;
      this.#gen[slot] = gen;
      writeU32(out, at + HeaderOffset.requestId, (gen << 16 | slot) >>> 0);
      this.#sentAt[slot] = now;
      this.#live[slot] = 1;
      n++;
    }
    this.inflight += n;
    tally.tx += off;
    const bytes = out.subarray(0, off);
    // Not awaited by the read loop: a connection must keep reading while a
    // big batch is written, or both sides could wait on full socket buffers.
    this.#writeChain = this.#writeChain.then(async () => {
      let done = 0;
      while (done < bytes.length && !this.#broken) {
        done += await this.#conn.write(bytes.subarray(done));
      }
    }).catch(() => this.close());
  }

  /** Runs one phase on this connection until `src` is exhausted and every reply is in. */
  async run(src: Source, window: number, tally: Tally): Promise<void> {
    this.#setWindow(window);
    this.#send(src, tally);
    const reader = this.#reader;
    const hist = tally.histogram;
    while (this.inflight > 0 && !this.#broken) {
      let n: number | null;
      try {
        // Read by hand (space, then filled): one promise per read, not two.
        n = await this.#conn.read(reader.space());
      } catch {
        n = null;
      }
      if (n === null || this.#broken) break;
      reader.filled(n);
      // One clock read per chunk: every frame in it arrived at this moment.
      const now = performance.now();
      tally.rx += n;
      const buf = reader.bytes;
      for (;;) {
        const start = reader.start;
        const len = reader.frame(MAX_REPLY_BODY);
        if (len === 0) break;
        if (len === BAD_PREAMBLE || len === BODY_TOO_LARGE) {
          tally.error(len === BAD_PREAMBLE ? "REPLY_BAD_PREAMBLE" : "REPLY_TOO_LARGE");
          reader.skipAll();
          this.close();
          break;
        }
        const id = readU32(buf, start + HeaderOffset.requestId);
        const slot = id & 0xffff;
        if (slot >= this.#live.length || !this.#live[slot] || this.#gen[slot] !== id >>> 16) {
          tally.error(CLIENT_ERRORS.unexpected);
        } else {
          this.#live[slot] = 0;
          this.#free[this.#freeTop++] = slot;
          this.inflight--;
          const flags = buf[start + HeaderOffset.flags];
          // An echoed request has no REPLY flag and status 0: a success.
          const status = flags & Flags.REPLY ? readU32(buf, start + HeaderOffset.status) : 0;
          if (!crcMatches(buf, start, len)) {
            tally.error(CLIENT_ERRORS.badCrc);
          } else if (status !== 0) {
            tally.error(statusName(status));
          } else {
            tally.ok++;
            if (hist) {
              const us = Math.round((now - this.#sentAt[slot]) * 1000);
              hist.recordValue(us < 1 ? 1 : us);
            }
          }
        }
        reader.consume(len);
      }
      tally.lastReplyAt = now;
      this.#send(src, tally);
    }
    if (this.inflight > 0) {
      tally.error(CLIENT_ERRORS.closed, this.inflight);
      this.inflight = 0;
    }
    await this.#writeChain;
  }
}

/**
 * One share of the load: connections opened and keyspace filled by
 * {@link prepareShare}, then {@link Share.run} for the timed phase.
 */
export class Share {
  readonly #cfg: ShareConfig;
  readonly #conns: BenchConn[];
  readonly #frames: Frames;
  readonly #fill: { filled: number; errors: Record<string, number>; ms: number };
  readonly #progress: Float64Array | null;
  readonly #index: number;

  /** Use {@link prepareShare}. */
  constructor(
    cfg: ShareConfig,
    conns: BenchConn[],
    frames: Frames,
    fill: { filled: number; errors: Record<string, number>; ms: number },
    progress: Float64Array | null,
    index: number,
  ) {
    this.#cfg = cfg;
    this.#conns = conns;
    this.#frames = frames;
    this.#fill = fill;
    this.#progress = progress;
    this.#index = index;
  }

  /** Errors of the fill phase, by name. */
  get fillErrors(): Record<string, number> {
    return this.#fill.errors;
  }

  /** Runs the timed phase, closes the connections, and reports. */
  async run(): Promise<ShareResult> {
    const cfg = this.#cfg;
    const hist = newHistogram();
    const tally = new Tally(hist);
    const src = new MixSource(this.#frames, cfg);
    const t0 = performance.now();
    if (cfg.durationMs > 0) src.deadline = t0 + cfg.durationMs;
    tally.lastReplyAt = t0;
    const watch = this.#watch(tally);
    try {
      await Promise.all(this.#conns.map((c) => c.run(src, cfg.pipeline, tally)));
    } finally {
      clearInterval(watch);
      for (const c of this.#conns) c.close();
    }
    if (this.#progress) this.#progress[this.#index] = tally.ok;
    const result: ShareResult = {
      ok: tally.ok,
      errors: tally.errors,
      sent: src.sent,
      txBytes: tally.tx,
      rxBytes: tally.rx,
      elapsedMs: Math.max(tally.lastReplyAt - t0, 1e-3),
      filled: this.#fill.filled,
      fillErrors: this.#fill.errors,
      fillMs: this.#fill.ms,
      histogram: encodeHistogram(hist),
    };
    return result;
  }

  /**
   * Publishes progress and gives up on a stalled server: with no reply for
   * `stallMs`, every request in flight is counted as a client timeout.
   */
  #watch(tally: Tally): ReturnType<typeof setInterval> {
    return setInterval(() => {
      if (this.#progress) this.#progress[this.#index] = tally.ok;
      if (performance.now() - tally.lastReplyAt > this.#cfg.stallMs) {
        for (const c of this.#conns) if (c.inflight > 0) c.abandon(tally);
      }
    }, 100);
  }

  /** Closes every connection without running (after a failed start elsewhere). */
  close(): void {
    for (const c of this.#conns) c.close();
  }
}

/**
 * Opens a share's connections and fills its part of the keyspace.
 * `progress[index]` (when given) is kept at the share's OK count during the
 * timed phase, for a live progress line.
 *
 * @example
 * ```ts ignore
 * import { prepareShare } from "./bench_worker.ts";
 * const share = await prepareShare(config, null, 0);
 * const result = await share.run();
 * ```
 */
export async function prepareShare(
  cfg: ShareConfig,
  progress: Float64Array | null,
  index: number,
): Promise<Share> {
  const window = Math.max(cfg.pipeline, FILL_WINDOW);
  if (window > MAX_WINDOW) throw new RangeError(`Pipeline depth must be at most ${MAX_WINDOW}`);
  const frames = new Frames(cfg.keys, cfg.valueSize, cfg.seed);
  const conns: BenchConn[] = [];
  try {
    for (let i = 0; i < cfg.connections; i++) {
      if (cfg.tlsCaCerts) {
        const tls = await Deno.connectTls({
          hostname: cfg.host,
          port: cfg.port,
          caCerts: cfg.tlsCaCerts.length > 0 ? cfg.tlsCaCerts : undefined,
        });
        await tls.handshake();
        conns.push(new BenchConn(tls));
        continue;
      }
      const conn = await Deno.connect({ hostname: cfg.host, port: cfg.port, transport: "tcp" });
      // Pipeline depth 1 is a latency test: Nagle would hold every request.
      conn.setNoDelay(true);
      conns.push(new BenchConn(conn));
    }
    const fill = { filled: 0, errors: {} as Record<string, number>, ms: 0 };
    if (cfg.fillStride > 0) {
      const t0 = performance.now();
      const tally = new Tally(null);
      const src = new FillSource(frames, cfg.keys, cfg.fillStride, cfg.fillOffset);
      tally.lastReplyAt = t0;
      const watch = setInterval(() => {
        if (performance.now() - tally.lastReplyAt > cfg.stallMs) {
          for (const c of conns) if (c.inflight > 0) c.abandon(tally);
        }
      }, 100);
      try {
        await Promise.all(conns.map((c) => c.run(src, window, tally)));
      } finally {
        clearInterval(watch);
      }
      fill.filled = tally.ok;
      Object.assign(fill.errors, tally.errors);
      fill.ms = performance.now() - t0;
      // Error replies leave a connection usable; a broken one would make
      // the timed phase measure nothing, so that is no run at all.
      if (conns.some((c) => c.broken)) {
        const what = Object.entries(tally.errors).map(([k, v]) => `${k} ${v}`).join(", ");
        throw new Error(
          `Fill the keyspace: connections broke or stalled (${what || "closed by the server"})`,
        );
      }
    }
    return new Share(cfg, conns, frames, fill, progress, index);
  } catch (e) {
    for (const c of conns) c.close();
    throw e;
  }
}

/** The worker global, typed here rather than through a lib directive. */
interface WorkerScope {
  postMessage(message: FromWorker): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
}

if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  const scope = globalThis as unknown as WorkerScope;
  let share: Share | null = null;
  scope.onmessage = async (e) => {
    const msg = e.data;
    try {
      if (msg.type === "init") {
        share = await prepareShare(msg.config, new Float64Array(msg.progress), msg.index);
        scope.postMessage({ type: "ready" });
      } else if (msg.type === "go" && share) {
        const result = await share.run();
        scope.postMessage({ type: "done", result });
      }
    } catch (err) {
      share?.close();
      scope.postMessage({
        type: "error",
        message: err instanceof Error ? err.message : String(err),
      });
    }
  };
}
