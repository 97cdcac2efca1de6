/**
 * Builds the host of one shard: its executor (the service's state for that
 * shard), its ends of the rings, persistence and wake-ups. Both worker
 * kinds host shards (a task worker its one shard in pool mode, an IO worker
 * its own in inline mode) and both build them here.
 *
 * @module
 */
import { bindPersistence, durabilityGate } from "../../persist/journal.ts";
import { snapshot, type StatsBlock } from "../../stats/resources.ts";
import { Executor } from "./executor.ts";
import type { Service, ServiceOptions } from "../service.ts";
import { ShardHost } from "./shard_host.ts";
import { type FullPolicy, ReplySender } from "../channel/replies.ts";
import { openRing, shardCount, type SharedPlan, threadIndex, wake } from "../topology.ts";

/** Longest wait between runs of the service's idle hook, so housekeeping and stop flags are seen. */
const MAX_IDLE_MS = 1000;

/**
 * Shard `shard`'s host, reading requests from every IO worker's ring and
 * replying into theirs, waking IO workers through the plan's control words.
 * `policy` says what a full reply ring does: `block` (a task worker, which
 * may wait) or `queue` (an IO worker, which must not).
 *
 * @example
 * ```ts ignore
 * const host = hostShard(plan, 0, service, 4 << 20, {}, stats, "block");
 * await host.drain();
 * ```
 */
export function hostShard(
  plan: SharedPlan,
  shard: number,
  service: Service<unknown>,
  maxBody: number,
  serviceOptions: ServiceOptions | undefined,
  stats: StatsBlock,
  policy: FullPolicy,
): ShardHost<unknown> {
  const layout = plan.layout;
  // Before the state exists: the KV store loads its shard from disk as it is made.
  bindPersistence(plan.persist);
  const exec = new Executor(
    service,
    shard,
    shardCount(layout),
    maxBody,
    () => snapshot(plan.stats),
    plan.startedAt,
    serviceOptions,
  );
  const replies = new ReplySender(stats, plan.replyRings[shard].map(openRing), policy);
  const control = new Int32Array(plan.control);
  replies.wakes.notify = (io) => wake(control, threadIndex(layout, "io", io));
  replies.durability = durabilityGate(shard);
  return new ShardHost(exec, stats, plan.requestRings.map((row) => openRing(row[shard])), replies);
}

/**
 * When the hosting thread should next run the service's idle hook, given
 * when it was due (`idleAt`, a Date.now() value) and the time now: runs the
 * hook when due and returns the next due time, at most {@link MAX_IDLE_MS}
 * away. Both worker kinds pace their sleep with it.
 *
 * @example
 * ```ts ignore
 * idleAt = nextIdle(host, idleAt, Date.now());
 * ```
 */
export function nextIdle(host: ShardHost<unknown>, idleAt: number, now: number): number {
  if (now < idleAt) return idleAt;
  return now + Math.min(host.executor.idle(), MAX_IDLE_MS);
}
