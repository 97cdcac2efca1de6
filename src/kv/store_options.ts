/**
 * How the KV service turns server settings into each shard's store options,
 * and publishes each store's figures into the server's counters.
 *
 * @module
 */
import type { ServiceOptions } from "../server/service.ts";
import { Counter } from "../stats/resources.ts";
import {
  EVICTION_POLICIES,
  type EvictionPolicy,
  type ShardStore,
  type StoreOptions,
} from "./store.ts";

/**
 * One shard's store options from the server's `serviceOptions`:
 * `maxMemory` (bytes for the whole server, split evenly: each of `shards`
 * stores gets `floor(maxMemory / shards)`, since a key lives on exactly one
 * shard and shards share no memory) and `eviction`.
 *
 * @example
 * ```ts
 * storeOptions({ maxMemory: 1 << 20, eviction: "allkeys-lru" }, 4);
 * // { maxMemory: 262144, eviction: "allkeys-lru" }
 * ```
 */
export function storeOptions(options: ServiceOptions, shards: number): StoreOptions {
  const max = options.maxMemory ?? 0;
  if (typeof max !== "number" || !Number.isFinite(max) || max < 0) {
    throw new RangeError(`Make store: maxMemory must be a byte count >= 0, got ${max}`);
  }
  const eviction = options.eviction ?? "noeviction";
  if (!EVICTION_POLICIES.includes(eviction as EvictionPolicy)) {
    throw new RangeError(
      `Make store: eviction must be one of ${EVICTION_POLICIES.join(", ")}, got ${eviction}`,
    );
  }
  return {
    maxMemory: max === 0 ? 0 : Math.max(1, Math.floor(max / shards)),
    eviction: eviction as EvictionPolicy,
  };
}

/**
 * Writes a store's figures into a thread's counters (the KV service's
 * `gauges` hook): what RESP `INFO` and the Stats method show, summed over
 * shards.
 *
 * @example
 * ```ts
 * const counters = new Float64Array(64);
 * publishStoreGauges(new ShardStore(), counters);
 * ```
 */
export function publishStoreGauges(store: ShardStore, counters: Float64Array): void {
  counters[Counter.keys] = store.size;
  counters[Counter.keys_with_ttl] = store.keysWithTtl;
  counters[Counter.used_memory] = store.usedMemory;
  counters[Counter.maxmemory] = store.maxMemory;
  counters[Counter.store_pages_bytes] = store.reservedMemory;
  counters[Counter.evicted_keys] = store.evictedKeys;
  counters[Counter.expired_keys] = store.expiredKeys;
}
