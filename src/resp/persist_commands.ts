/**
 * RESP's persistence commands: SAVE, BGSAVE and LASTSAVE, and the
 * `# Persistence` section of INFO, on the KV service's internal
 * persistence methods. They report what is committed to the shards'
 * SQLite files, not what is in memory.
 *
 * @module
 */
import { type evkv, pb } from "../protocol/messages.ts";
import type { MessageType } from "../server/service.ts";
import { MODE_NAMES, PersistMethod } from "../persist/methods.ts";
import type { Command } from "./command_table.ts";
import { error, integer, OK, simple } from "./reply.ts";
import type { Call, Result } from "./session.ts";

const persistCall = (code: number): Call => ({
  code,
  body: pb.StatsRequest.encode({}).finish(),
  reply: pb.StatsReply as MessageType<unknown>,
});

/** The persistence call INFO makes next to its Stats call. */
export const persistInfoCall = (): Call => persistCall(PersistMethod.Info);

function figures(r: Result): Map<string, number> | Uint8Array {
  if (!r.ok) return error(`ERR ${r.message}`);
  const counters = (r.value as evkv.v1.IStatsReply).counters ?? [];
  return new Map(counters.map((c) => [c.name ?? "", Number(c.value ?? 0)]));
}

/**
 * INFO's `# Persistence` lines from the answer to {@link persistInfoCall}
 * (Redis's field names where they mean the same; `rdb_` stands for the
 * shard files).
 */
export function persistenceSection(r: Result): string[] {
  const f = figures(r);
  if (f instanceof Uint8Array) {
    return ["# Persistence", `evkv_persist_error:${r.ok ? "" : r.message}`];
  }
  const mode = MODE_NAMES[f.get("mode") ?? 0] ?? "off";
  const ok = (f.get("last_save_ok") ?? 1) === 1 ? "ok" : "err";
  return [
    "# Persistence",
    "loading:0",
    `evkv_persist:${mode}`,
    `rdb_changes_since_last_save:${f.get("changes_since_last_save") ?? 0}`,
    "rdb_bgsave_in_progress:0",
    `rdb_last_save_time:${f.get("last_save_time") ?? 0}`,
    `rdb_last_bgsave_status:${ok}`,
    "aof_enabled:0",
    `evkv_ring_full_waits:${f.get("ring_full_waits") ?? 0}`,
    `evkv_loaded_keys:${f.get("loaded_keys") ?? 0}`,
    `evkv_load_ms:${f.get("load_ms") ?? 0}`,
  ];
}

/** SAVE, BGSAVE and LASTSAVE, to spread into the command table. */
export const persistCommands: Record<string, Command> = {
  save: {
    arity: 1,
    run: (ctx) =>
      ctx.session.call(ctx.conn, ctx.dispatcher, [persistCall(PersistMethod.Save)], ([r]) => {
        const f = figures(r);
        return f instanceof Uint8Array ? f : OK;
      }),
  },
  bgsave: {
    arity: -1,
    run: (ctx) =>
      ctx.session.call(ctx.conn, ctx.dispatcher, [persistCall(PersistMethod.BgSave)], ([r]) => {
        const f = figures(r);
        return f instanceof Uint8Array ? f : simple("Background saving started");
      }),
  },
  lastsave: {
    arity: 1,
    run: (ctx) =>
      ctx.session.call(ctx.conn, ctx.dispatcher, [persistInfoCall()], ([r]) => {
        const f = figures(r);
        return f instanceof Uint8Array ? f : integer(f.get("last_save_time") ?? 0);
      }),
  },
};
