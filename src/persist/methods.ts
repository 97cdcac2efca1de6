/**
 * The KV service's persistence methods, internal (reachable from RESP's
 * SAVE, BGSAVE, LASTSAVE and INFO, not from the wire v1 port), and the
 * check that refuses writes while a shard cannot be saved.
 *
 * @module
 */
import { Status } from "../protocol/constants.ts";
import { type evkv, pb } from "../protocol/messages.ts";
import { type HandlerContext, type Method, method, ServiceError } from "../server/service.ts";
import { shardJournal } from "./journal.ts";

/** Method codes of the persistence methods (internal: RESP only). */
export const PersistMethod = {
  /** Commits every shard's pending changes and waits (SAVE). */
  Save: 0x8101,
  /** Asks every shard's pending changes to be committed now (BGSAVE). */
  BgSave: 0x8102,
  /** Persistence figures, as counters (INFO persistence, LASTSAVE). */
  Info: 0x8103,
} as const;

/** Persistence modes as the `mode` counter gives them. */
export const MODE_NAMES = ["off", "everysec", "always"] as const;

/**
 * Throws the error a write gets while shard `shard`'s last commit failed
 * (a full disk, say): refusing it keeps memory from running ahead of the
 * disk, and reads go on.
 */
export function refuseWritesIfFailing(what: string, shard: number): void {
  const j = shardJournal(shard);
  if (j !== null && j.failing) {
    throw new ServiceError(
      Status.INTERNAL,
      `${what}: the server cannot save to its data dir (disk full?); writes are refused ` +
        `until a save succeeds, reads still work`,
    );
  }
}

type Rows = evkv.v1.ICounter[];

function infoRows(shard: number): Rows {
  const j = shardJournal(shard);
  if (j === null) {
    return [
      { name: "mode", value: 0 },
      { name: "changes_since_last_save", value: 0 },
      { name: "last_save_time", value: 0 },
      { name: "last_save_ok", value: 1 },
      { name: "ring_full_waits", value: 0 },
      { name: "loaded_keys", value: 0 },
      { name: "load_ms", value: 0 },
    ];
  }
  const f = j.figures();
  return [
    { name: "mode", value: j.mode === "always" ? 2 : 1 },
    { name: "changes_since_last_save", value: Math.max(0, (j.pushed() - j.committed()) | 0) },
    { name: "last_save_time", value: f.lastSave },
    { name: "last_save_ok", value: j.failing ? 0 : 1 },
    { name: "ring_full_waits", value: f.ringFullWaits },
    { name: "loaded_keys", value: f.loadedKeys },
    { name: "load_ms", value: f.loadMs },
  ];
}

/** Joins the shards' rows: sums, except times (the oldest save, the slowest load) and flags. */
function mergeRows(parts: evkv.v1.IStatsReply[]): evkv.v1.IStatsReply {
  const out = new Map<string, number>();
  for (const p of parts) {
    for (const c of p.counters ?? []) {
      const name = c.name ?? "";
      const v = Number(c.value ?? 0);
      const had = out.get(name);
      if (had === undefined) out.set(name, v);
      else if (name === "last_save_time" || name === "last_save_ok") {
        out.set(name, Math.min(had, v));
      } else if (name === "load_ms" || name === "mode") out.set(name, Math.max(had, v));
      else out.set(name, had + v);
    }
  }
  return { counters: [...out].map(([name, value]) => ({ name, value })) };
}

function save(wait: boolean, ctx: HandlerContext<unknown>): evkv.v1.IStatsReply {
  const j = shardJournal(ctx.shard);
  const what = wait ? "Save" : "Background save";
  if (j === null) {
    throw new ServiceError(Status.INTERNAL, `${what}: persistence is off (--persist off)`);
  }
  if (!j.save(wait)) {
    throw new ServiceError(
      Status.INTERNAL,
      `${what}: shard ${ctx.shard} could not commit to the data dir (see the server log)`,
    );
  }
  return { counters: infoRows(ctx.shard) };
}

/** The methods, to spread into the KV service's method table. */
export const persistMethods: Record<number, Method<unknown>> = {
  [PersistMethod.Save]: method<evkv.v1.IStatsRequest, evkv.v1.IStatsReply, unknown>({
    name: "Save",
    request: pb.StatsRequest,
    reply: pb.StatsReply,
    route: "all",
    internal: true,
    handler: (_req, ctx) => save(true, ctx),
    merge: mergeRows,
  }),
  [PersistMethod.BgSave]: method<evkv.v1.IStatsRequest, evkv.v1.IStatsReply, unknown>({
    name: "BgSave",
    request: pb.StatsRequest,
    reply: pb.StatsReply,
    route: "all",
    internal: true,
    handler: (_req, ctx) => save(false, ctx),
    merge: mergeRows,
  }),
  [PersistMethod.Info]: method<evkv.v1.IStatsRequest, evkv.v1.IStatsReply, unknown>({
    name: "PersistInfo",
    request: pb.StatsRequest,
    reply: pb.StatsReply,
    route: "all",
    internal: true,
    handler: (_req, ctx) => ({ counters: infoRows(ctx.shard) }),
    merge: mergeRows,
  }),
};
