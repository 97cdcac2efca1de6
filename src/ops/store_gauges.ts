/**
 * What the KV service publishes about each shard's store for `/metrics`.
 *
 * @module
 */
import type { ShardStore } from "../kv/store.ts";

/** Gauge names, in the order of {@link storeGauges}; `_total` marks counters. */
export const STORE_GAUGES: readonly string[] = [
  "keys",
  "keys_with_ttl",
  "memory_used_bytes",
  "memory_max_bytes",
  "evicted_keys_total",
  "expired_keys_total",
];

/**
 * One shard's numbers. The memory cap is read when the store has one
 * (`maxMemory`), else 0 (no cap).
 *
 * @example
 * ```ts
 * import { ShardStore } from "@evkv/evkv";
 * import { storeGauges } from "@evkv/evkv";
 * storeGauges(new ShardStore())[0]; // 0 keys
 * ```
 */
export function storeGauges(store: ShardStore): number[] {
  const cap = (store as unknown as { maxMemory?: number }).maxMemory;
  return [
    store.size,
    store.keysWithTtl,
    store.usedMemory,
    typeof cap === "number" && Number.isFinite(cap) ? cap : 0,
    store.evictedKeys,
    store.expiredKeys,
  ];
}
