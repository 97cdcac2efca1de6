/**
 * Request metrics and the slow log, kept in shared memory so that the main
 * thread's `/metrics` endpoint and any IO worker's `SLOWLOG` can read them
 * without asking anyone.
 *
 * Each IO worker owns one block and writes it with plain adds, like the
 * resource counters ({@link StatsBlock}): requests by wire v1 method and
 * status, RESP commands by outcome, and one latency histogram per
 * protocol. A request's latency runs from the read that brought its frame
 * (`Connection.arrivedAt`) to the end of the batch that hands its reply to
 * the socket (taken just before the batch's writes); the clock is read once
 * per read and once per batch, not per request. Requests slower than the
 * threshold also go to the worker's slow log ring.
 *
 * Bounds: `BLOCK_SLOTS * 8` bytes (about 10 KiB) per IO worker for the
 * counters, `64 + ioThreads * maxLen * SLOW_ENTRY_BYTES` for the slow log.
 *
 * @module
 */

/** Protocol index in the histograms and the slow log. */
export const Protocol = { wire: 0, resp: 1 } as const;
/** Protocol label values, by index. */
export const PROTOCOL_NAMES = ["wire", "resp"] as const;

/** Method codes counted one by one; higher codes share the last slot. */
export const METHOD_SLOTS = 64;
/** Statuses counted one by one; higher ones share the last slot. */
export const STATUS_SLOTS = 16;
/** RESP commands counted one by one (index 0: unknown); the rest share the last. */
export const COMMAND_SLOTS = 128;

/**
 * Upper bounds of the latency buckets, in seconds (Prometheus `le`); a
 * last bucket takes the rest (`+Inf`).
 */
export const LATENCY_BOUNDS_S: readonly number[] = [
  0.00001,
  0.000025,
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
];
const BOUNDS_MS = new Float64Array(LATENCY_BOUNDS_S.map((s) => s * 1000));
const MID = 5; // the 0.5 ms bound
/** Buckets per histogram, `+Inf` included. */
export const BUCKETS = LATENCY_BOUNDS_S.length + 1;

/** Slot offsets in a block. */
export const Layout = {
  wire: 0,
  resp: METHOD_SLOTS * STATUS_SLOTS,
  hist: METHOD_SLOTS * STATUS_SLOTS + COMMAND_SLOTS * 2,
  /** Per histogram: BUCKETS counts, then the sum (seconds); the count is their sum. */
  histSlots: BUCKETS + 1,
} as const;
/** Float64 slots of one IO worker's block. */
export const BLOCK_SLOTS = Layout.hist + PROTOCOL_NAMES.length * Layout.histSlots;

/** Bytes of one slow log entry: 6 numbers and the client address. */
export const SLOW_ENTRY_BYTES = 128;
const SLOW_TEXT_AT = 48;
const SLOW_TEXT_MAX = SLOW_ENTRY_BYTES - SLOW_TEXT_AT;

/** Control words of the slow log (Int32, shared by every worker). */
const Ctl = { nextId: 0, resetBelow: 1, maxLen: 2, thresholdUs: 3 } as const;

/** Shared memory for request metrics and the slow log, made once by the main thread. */
export interface OpsMemory {
  /** One block of {@link BLOCK_SLOTS} per IO worker. */
  blocks: SharedArrayBuffer;
  /** Control words, then `maxLen` entries per IO worker. */
  slowlog: SharedArrayBuffer;
  /** IO workers. */
  ioThreads: number;
}

/** Slow log settings. */
export interface SlowlogOptions {
  /** Requests at least this slow are logged; negative turns the log off. Default 10000 µs. */
  thresholdUs?: number;
  /** Entries kept per IO worker, the newest. Default 128. */
  maxLen?: number;
}

/**
 * Allocates the memory for `ioThreads` IO workers.
 *
 * @example
 * ```ts
 * import { createOpsMemory } from "@evkv/evkv";
 * const mem = createOpsMemory(2, { thresholdUs: 500, maxLen: 64 });
 * ```
 */
export function createOpsMemory(ioThreads: number, slow: SlowlogOptions = {}): OpsMemory {
  const maxLen = Math.max(1, slow.maxLen ?? 128);
  const slowlog = new SharedArrayBuffer(64 + ioThreads * maxLen * SLOW_ENTRY_BYTES);
  const ctl = new Int32Array(slowlog, 0, 16);
  ctl[Ctl.nextId] = 1;
  ctl[Ctl.resetBelow] = 1;
  ctl[Ctl.maxLen] = maxLen;
  ctl[Ctl.thresholdUs] = Math.min(slow.thresholdUs ?? 10_000, 0x7fffffff);
  return {
    blocks: new SharedArrayBuffer(ioThreads * BLOCK_SLOTS * 8),
    slowlog,
    ioThreads,
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Pending replies held before a batch ends; more end the batch's timing early. */
const PENDING_MAX = 4096;

/**
 * One IO worker's writer. Unbound (no memory given) it counts into private
 * memory, so that code paths need no null checks.
 */
export class Recorder {
  #slots: Float64Array = new Float64Array(BLOCK_SLOTS);
  #ctl: Int32Array = new Int32Array(16);
  #slow: Float64Array | null = null;
  #slowBytes: Uint8Array | null = null;
  #slowBase = 0;
  #slowNext = 0;
  #thresholdMs = Infinity;
  #mem: OpsMemory | null = null;
  /** Replies of this batch: arrival (ms), then protocol * 65536 + code. */
  readonly #pending = new Float64Array(PENDING_MAX * 2);
  readonly #remotes: string[] = new Array(PENDING_MAX);
  #n = 0;

  /** Binds to IO worker `index`'s block of `mem`. */
  bind(mem: OpsMemory, index: number): void {
    this.#mem = mem;
    this.#slots = new Float64Array(mem.blocks, index * BLOCK_SLOTS * 8, BLOCK_SLOTS);
    this.#ctl = new Int32Array(mem.slowlog, 0, 16);
    const maxLen = this.#ctl[Ctl.maxLen];
    this.#slow = new Float64Array(mem.slowlog);
    this.#slowBytes = new Uint8Array(mem.slowlog);
    this.#slowBase = 64 + index * maxLen * SLOW_ENTRY_BYTES;
    this.#slowNext = 0;
    const t = this.#ctl[Ctl.thresholdUs];
    this.#thresholdMs = t < 0 ? Infinity : t / 1000;
  }

  /** The bound memory, or null before {@link bind} (for SLOWLOG). */
  get memory(): OpsMemory | null {
    return this.#mem;
  }

  /** A wire v1 reply with `status` to method `code`, for a frame read at `at`. */
  wire(code: number, status: number, at: number, remote: string): void {
    const m = code < METHOD_SLOTS ? code : METHOD_SLOTS - 1;
    const s = status < STATUS_SLOTS ? status : STATUS_SLOTS - 1;
    this.#slots[Layout.wire + m * STATUS_SLOTS + s]++;
    this.#timed(at, m, remote);
  }

  /** A RESP reply to command number `command`, an error or not, for a frame read at `at`. */
  resp(command: number, failed: boolean, at: number, remote: string): void {
    const c = command < COMMAND_SLOTS ? command : COMMAND_SLOTS - 1;
    this.#slots[Layout.resp + c * 2 + (failed ? 1 : 0)]++;
    this.#timed(at, 65536 + c, remote);
  }

  #timed(at: number, what: number, remote: string): void {
    let n = this.#n;
    if (n === PENDING_MAX) {
      this.endOfBatch();
      n = 0;
    }
    this.#pending[2 * n] = at;
    this.#pending[2 * n + 1] = what;
    this.#remotes[n] = remote;
    this.#n = n + 1;
  }

  /** The batch's replies are about to be handed to their sockets: time them. */
  endOfBatch(): void {
    const n = this.#n;
    if (n === 0) return;
    this.#n = 0;
    const now = performance.now();
    const s = this.#slots;
    const p = this.#pending;
    const threshold = this.#thresholdMs;
    for (let i = 0; i < n; i++) {
      const ms = now - p[2 * i];
      const what = p[2 * i + 1];
      const proto = what >= 65536 ? 1 : 0;
      const h = Layout.hist + proto * Layout.histSlots;
      // Most requests take 0.1-5 ms: start the search in the middle.
      let b = ms > BOUNDS_MS[MID] ? MID + 1 : 0;
      while (b < BOUNDS_MS.length && ms > BOUNDS_MS[b]) b++;
      s[h + b]++;
      s[h + BUCKETS] += ms / 1000;
      if (ms >= threshold) this.#slowEntry(ms, proto, what - proto * 65536, this.#remotes[i]);
    }
    // #remotes keeps its stale references until overwritten: clearing them
    // would cost a store per reply to free a few shared strings.
  }

  #slowEntry(ms: number, proto: number, code: number, remote: string): void {
    const f = this.#slow;
    if (f === null) return;
    const id = Atomics.add(this.#ctl, Ctl.nextId, 1);
    const at = this.#slowBase + this.#slowNext * SLOW_ENTRY_BYTES;
    this.#slowNext = (this.#slowNext + 1) % this.#ctl[Ctl.maxLen];
    const w = at >>> 3;
    f[w] = 0; // invalid while being written
    f[w + 1] = Date.now();
    f[w + 2] = Math.round(ms * 1000);
    f[w + 3] = proto;
    f[w + 4] = code;
    const r = encoder.encodeInto(
      remote,
      this.#slowBytes!.subarray(at + SLOW_TEXT_AT, at + SLOW_ENTRY_BYTES),
    );
    f[w + 5] = r.written;
    f[w] = id;
  }
}

/** The recorder of this thread (each IO worker binds its own). */
export const recorder: Recorder = new Recorder();

/** One slow log entry. */
export interface SlowEntry {
  /** Unique, increasing id. */
  id: number;
  /** When it was logged, ms since the epoch. */
  unixMs: number;
  /** From arrival to write, µs. */
  durationUs: number;
  /** `wire` or `resp`. */
  protocol: typeof PROTOCOL_NAMES[number];
  /** The wire v1 method code, or the RESP command's index in the sorted command list. */
  code: number;
  /** The client's `host:port`. */
  client: string;
}

/**
 * Reads the slow log: live entries across every IO worker, newest first.
 *
 * @example
 * ```ts
 * import { createOpsMemory, readSlowlog } from "@evkv/evkv";
 * readSlowlog(createOpsMemory(1)); // []
 * ```
 */
export function readSlowlog(mem: { slowlog: SharedArrayBuffer; ioThreads: number }): SlowEntry[] {
  const ctl = new Int32Array(mem.slowlog, 0, 16);
  const maxLen = ctl[Ctl.maxLen];
  const below = Atomics.load(ctl, Ctl.resetBelow);
  const f = new Float64Array(mem.slowlog);
  const bytes = new Uint8Array(mem.slowlog);
  const out: SlowEntry[] = [];
  for (let io = 0; io < mem.ioThreads; io++) {
    for (let i = 0; i < maxLen; i++) {
      const at = 64 + (io * maxLen + i) * SLOW_ENTRY_BYTES;
      const w = at >>> 3;
      const id = f[w];
      if (id < below || id === 0) continue;
      const len = Math.min(f[w + 5], SLOW_TEXT_MAX);
      const entry: SlowEntry = {
        id,
        unixMs: f[w + 1],
        durationUs: f[w + 2],
        protocol: PROTOCOL_NAMES[f[w + 3]] ?? "wire",
        code: f[w + 4],
        client: decoder.decode(bytes.slice(at + SLOW_TEXT_AT, at + SLOW_TEXT_AT + len)),
      };
      if (f[w] === id) out.push(entry); // not rewritten while read
    }
  }
  out.sort((a, b) => b.id - a.id);
  return out.slice(0, maxLen);
}

/**
 * Empties the slow log for every reader (entries are hidden, not erased).
 *
 * @example
 * ```ts
 * import { createOpsMemory, resetSlowlog } from "@evkv/evkv";
 * resetSlowlog(createOpsMemory(1).slowlog);
 * ```
 */
export function resetSlowlog(slowlog: SharedArrayBuffer): void {
  const ctl = new Int32Array(slowlog, 0, 16);
  Atomics.store(ctl, Ctl.resetBelow, Atomics.load(ctl, Ctl.nextId));
}

/** Per-protocol latency histogram, cumulative like Prometheus's. */
export interface Histogram {
  /** Cumulative counts per bound of {@link LATENCY_BOUNDS_S}, then `+Inf`. */
  cumulative: number[];
  /** Sum of latencies, seconds. */
  sum: number;
  /** Observations. */
  count: number;
}

/** Sums of every IO worker's block. */
export interface RequestTotals {
  /** wire[code][status]: wire v1 replies. */
  wire: Float64Array;
  /** resp[command * 2 + failed]: RESP replies. */
  resp: Float64Array;
  /** Latency per protocol, by {@link PROTOCOL_NAMES} index. */
  latency: Histogram[];
}

/**
 * Sums every IO worker's block now; safe from any thread.
 *
 * @example
 * ```ts
 * import { createOpsMemory, readRequestTotals } from "@evkv/evkv";
 * readRequestTotals(createOpsMemory(2)).latency[0].count; // 0
 * ```
 */
export function readRequestTotals(mem: OpsMemory): RequestTotals {
  const all = new Float64Array(mem.blocks);
  const sum = new Float64Array(BLOCK_SLOTS);
  for (let b = 0; b < mem.ioThreads; b++) {
    const base = b * BLOCK_SLOTS;
    for (let i = 0; i < BLOCK_SLOTS; i++) sum[i] += all[base + i];
  }
  const latency = PROTOCOL_NAMES.map((_, p) => {
    const h = Layout.hist + p * Layout.histSlots;
    const cumulative: number[] = [];
    let run = 0;
    for (let b = 0; b < BUCKETS; b++) cumulative.push(run += sum[h + b]);
    // The count is the +Inf bucket's, not the count slot: a read that races
    // a worker's update could see one without the other, and Prometheus
    // wants _count equal to the +Inf bucket.
    return { cumulative, sum: sum[h + BUCKETS], count: run };
  });
  return {
    wire: sum.subarray(Layout.wire, Layout.resp),
    resp: sum.subarray(Layout.resp, Layout.hist),
    latency,
  };
}
