/**
 * The KV service (package `evkv.v1`): one {@link ShardStore} per shard,
 * requests routed by a hash of the key, Scan fanned out to every shard and
 * merged in key order. The server has no special case for it: it is a
 * service module like any other.
 *
 * @module
 */
import { KvInternalMethod, KvMethod, Status } from "../protocol/constants.ts";
import { pb } from "../protocol/messages.ts";
import type { evkv } from "../protocol/messages.ts";
import { defineService, method, ServiceError } from "../server/service.ts";
import { statsRows } from "../stats/report.ts";
import { keyShard } from "./route.ts";
import { boolReplyWriter, getReplyWriter, type StoredGetReply } from "./reply_writers.ts";
import { keyRequestReader, prefetchKeys, putRequestReader } from "./request_readers.ts";
import { keyToString, type ScanEntry, ShardStore } from "./store.ts";
import { publishStoreGauges, storeOptions } from "./store_options.ts";

/** Longest key the spec allows. */
export const MAX_KEY_BYTES = 1024;
/** Scan's limit when the request says 0, and its ceiling. */
export const MAX_SCAN_LIMIT = 1000;
/** Keys with a TTL examined per idle sweep: bounds the time one sweep takes. */
const SWEEP_BATCH = 200;

function checkKey(what: string, key: Uint8Array): void {
  if (key.length === 0 || key.length > MAX_KEY_BYTES) {
    throw new ServiceError(
      Status.BAD_REQUEST,
      `${what} needs a key of 1 to ${MAX_KEY_BYTES} bytes, got ${key.length}`,
    );
  }
}

type Ctx = { state: ShardStore; maxBody: number };

/**
 * Joins the shards' Scan replies. A shard that reported `more` is only
 * complete up to its last key, so nothing past the smallest such key may be
 * returned, or the next page (which starts after our last key) would skip
 * that shard's keys in between.
 */
export function mergeScan(
  parts: evkv.v1.IScanReply[],
  request: evkv.v1.IScanRequest,
  maxBytes: number,
): evkv.v1.IScanReply {
  const limit = clampLimit(request.limit ?? 0);
  let cutoff: string | null = null;
  const all: { k: string; e: evkv.v1.IEntry }[] = [];
  let more = false;
  for (const part of parts) {
    const entries = part.entries ?? [];
    for (const e of entries) all.push({ k: keyToString(e.key!), e });
    if (part.more) {
      more = true;
      const last = keyToString(entries[entries.length - 1].key!);
      if (cutoff === null || last < cutoff) cutoff = last;
    }
  }
  all.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  const out: evkv.v1.IEntry[] = [];
  let bytes = 0;
  for (const { k, e } of all) {
    if (cutoff !== null && k > cutoff) break;
    const size = e.key!.length + (e.value?.length ?? 0) + 8;
    if (out.length === limit || (out.length > 0 && bytes + size > maxBytes)) {
      more = true;
      break;
    }
    out.push(e);
    bytes += size;
  }
  return { entries: out, more };
}

function clampLimit(limit: number): number {
  return limit === 0 || limit > MAX_SCAN_LIMIT ? MAX_SCAN_LIMIT : limit;
}

/** Bytes left for entries in one reply: the body limit less framing slack. */
const scanBudget = (maxBody: number) => Math.max(1024, maxBody - 64 * 1024);

/**
 * The KV service definition, the default export of this module.
 *
 * @example
 * ```ts
 * import { KV_SERVICE_URL, serve } from "@evkv/evkv";
 * const server = await serve({ service: KV_SERVICE_URL, port: 0 });
 * await server.shutdown();
 * ```
 */
const kvService = defineService<ShardStore>({
  name: "kv",
  createState: (_shard, shards, options) => new ShardStore(Date.now, storeOptions(options, shards)),
  idle(store) {
    store.sweep(SWEEP_BATCH);
    return store.nextExpiryIn();
  },
  gauges: publishStoreGauges,
  prefetch: prefetchKeys,
  methods: {
    [KvMethod.Ping]: method<evkv.v1.IPingRequest, evkv.v1.IPingReply, ShardStore>({
      name: "Ping",
      request: pb.PingRequest,
      reply: pb.PingReply,
      handler: (req) => ({ payload: req.payload }),
    }),
    [KvMethod.Get]: method<evkv.v1.IGetRequest, StoredGetReply, ShardStore>({
      name: "Get",
      request: pb.GetRequest,
      reply: pb.GetReply,
      requestReader: keyRequestReader,
      replyWriter: getReplyWriter,
      route: keyShard,
      handler(req, ctx: Ctx) {
        const key = req.key ?? new Uint8Array(0);
        checkKey("Get", key);
        const hit = ctx.state.lookup(key);
        return hit === undefined
          ? { found: false }
          : { found: true, value: hit.value, valueCrc: hit.crc };
      },
    }),
    [KvMethod.Put]: method<evkv.v1.IPutRequest, evkv.v1.IPutReply, ShardStore>({
      name: "Put",
      request: pb.PutRequest,
      reply: pb.PutReply,
      requestReader: putRequestReader,
      replyWriter: boolReplyWriter("replaced"),
      route: keyShard,
      handler(req, ctx: Ctx) {
        const key = req.key ?? new Uint8Array(0);
        checkKey("Put", key);
        const replaced = ctx.state.put(key, req.value ?? new Uint8Array(0), req.ttlMs ?? 0);
        return { replaced };
      },
    }),
    [KvMethod.Delete]: method<evkv.v1.IDeleteRequest, evkv.v1.IDeleteReply, ShardStore>({
      name: "Delete",
      request: pb.DeleteRequest,
      reply: pb.DeleteReply,
      requestReader: keyRequestReader,
      replyWriter: boolReplyWriter("deleted"),
      route: keyShard,
      handler(req, ctx: Ctx) {
        const key = req.key ?? new Uint8Array(0);
        checkKey("Delete", key);
        return { deleted: ctx.state.delete(key) };
      },
    }),
    [KvMethod.Scan]: method<evkv.v1.IScanRequest, evkv.v1.IScanReply, ShardStore>({
      name: "Scan",
      request: pb.ScanRequest,
      reply: pb.ScanReply,
      route: "all",
      handler(req, ctx: Ctx) {
        const r = ctx.state.scan({
          prefix: req.prefix ?? new Uint8Array(0),
          startAfter: req.startAfter ?? new Uint8Array(0),
          limit: clampLimit(req.limit ?? 0),
          maxBytes: scanBudget(ctx.maxBody),
        });
        return { entries: r.entries as ScanEntry[], more: r.more };
      },
      merge: (parts, req, maxBody) => mergeScan(parts, req, scanBudget(maxBody)),
    }),
    [KvInternalMethod.PutIf]: method<evkv.v1.IPutIfRequest, evkv.v1.IPutIfReply, ShardStore>({
      name: "PutIf",
      request: pb.PutIfRequest,
      reply: pb.PutIfReply,
      route: keyShard,
      internal: true,
      handler(req, ctx: Ctx) {
        const key = req.key ?? new Uint8Array(0);
        checkKey("PutIf", key);
        const present = ctx.state.get(key) !== undefined;
        if ((req.onlyIfAbsent && present) || (req.onlyIfPresent && !present)) {
          return { written: false, replaced: false };
        }
        const replaced = ctx.state.put(key, req.value ?? new Uint8Array(0), req.ttlMs ?? 0);
        return { written: true, replaced };
      },
    }),
    [KvInternalMethod.Count]: method<evkv.v1.ICountRequest, evkv.v1.ICountReply, ShardStore>({
      name: "Count",
      request: pb.CountRequest,
      reply: pb.CountReply,
      route: "all",
      internal: true,
      handler: (_req, ctx: Ctx) => ({ keys: ctx.state.size }),
      merge: (parts) => ({ keys: parts.reduce((n, p) => n + Number(p.keys ?? 0), 0) }),
    }),
    [KvMethod.Stats]: method<evkv.v1.IStatsRequest, evkv.v1.IStatsReply, ShardStore>({
      name: "Stats",
      request: pb.StatsRequest,
      reply: pb.StatsReply,
      handler: (_req, ctx) => ({ counters: statsRows(ctx.stats(), ctx.uptimeMs()) }),
    }),
  },
});

export default kvService;
