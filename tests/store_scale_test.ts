import assert from "node:assert/strict";
import { type EvictionPolicy, ShardStore, StoreFullError } from "../src/kv/store.ts";
import { Status } from "../src/protocol/constants.ts";
import { seededRandom } from "./support.ts";

const EMPTY = new Uint8Array(0);
const enc = new TextEncoder();
const dec = new TextDecoder();

function fakeClock(start = 1_700_000_000_000): { now: () => number; t: number } {
  const c = { t: start, now: () => c.t };
  return c;
}

/** Binary string of bytes (one char per byte), whose JS order is byte order. */
const str = (b: Uint8Array) => String.fromCharCode(...b);
const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** Pages through every key with `prefix`, `limit` at a time, as a client would. */
function pageAll(store: ShardStore, prefix: Uint8Array, limit: number): [string, string][] {
  const out: [string, string][] = [];
  let after: Uint8Array = EMPTY;
  for (let pages = 0; pages < 10_000; pages++) {
    const r = store.scan({ prefix, startAfter: after, limit, maxBytes: 1 << 30 });
    for (const e of r.entries) out.push([str(e.key), str(e.value)]);
    assert.ok(r.entries.length <= limit);
    if (!r.more) return out;
    assert.equal(r.entries.length, limit, "a page short of the limit says it is the last");
    after = r.entries[r.entries.length - 1].key;
  }
  throw new Error("Page through the store: too many pages");
}

Deno.test("random puts, deletes and expiries match a reference model, with scans paged in order", () => {
  for (const seed of [1, 2]) {
    const rand = seededRandom(seed);
    const clock = fakeClock();
    const store = new ShardStore(clock.now);
    /** key -> [value, expiresAt (0 = none)] */
    const model = new Map<string, [string, number]>();
    const live = (k: string) => {
      const e = model.get(k);
      return e !== undefined && (e[1] === 0 || e[1] > clock.t);
    };
    // Few distinct bytes, so keys share prefixes and collide in order.
    const alphabet = [0x00, 0x01, 0x61, 0x62, 0x7f, 0x80, 0xff];
    const randomKey = () => {
      const n = 1 + Math.floor(rand() * 6);
      return Uint8Array.from({ length: n }, () => alphabet[Math.floor(rand() * alphabet.length)]);
    };
    for (let step = 0; step < 4000; step++) {
      const r = rand();
      const key = randomKey();
      const k = str(key);
      if (r < 0.5) {
        // Values cross size classes, and now and then the large-record path.
        const len = rand() < 0.01 ? 17_000 : Math.floor(rand() * 300);
        const value = new Uint8Array(len).fill(step & 0xff);
        const ttl = rand() < 0.3 ? 1 + Math.floor(rand() * 50) : 0;
        const replaced = store.put(key, value, ttl);
        assert.equal(replaced, live(k), `put ${JSON.stringify(k)} reports what it replaced`);
        model.set(k, [str(value), ttl === 0 ? 0 : clock.t + ttl]);
      } else if (r < 0.7) {
        assert.equal(store.delete(key), live(k));
        model.delete(k);
      } else if (r < 0.8) {
        const got = store.get(key);
        assert.equal(
          got === undefined ? undefined : str(got),
          live(k) ? model.get(k)![0] : undefined,
        );
      } else if (r < 0.9) {
        clock.t += Math.floor(rand() * 10);
        if (rand() < 0.5) store.sweep(Math.floor(rand() * 20));
      } else {
        const prefix = rand() < 0.3 ? EMPTY : key.subarray(0, 1 + Math.floor(rand() * 2));
        const p = str(prefix);
        const want = [...model.keys()].filter((x) => x.startsWith(p) && live(x)).sort()
          .map((x) => [x, model.get(x)![0]]);
        assert.deepEqual(pageAll(store, prefix, 1 + Math.floor(rand() * 7)), want);
      }
    }
    for (const k of [...model.keys()]) if (!live(k)) model.delete(k);
    store.sweep(1_000_000);
    assert.equal(store.size, model.size, "after a full sweep only live keys are counted");
    assert.deepEqual(pageAll(store, EMPTY, 100).map(([k]) => k), [...model.keys()].sort());
  }
});

Deno.test("scan honours an exclusive startAfter that is not a stored key, and a prefix past it", () => {
  const store = new ShardStore();
  for (const k of ["a", "ab", "abc", "abd", "b", "ba"]) store.put(bytes(k), bytes("v"), 0);
  const keys = (prefix: string, after: string, limit = 10) =>
    store.scan({ prefix: bytes(prefix), startAfter: bytes(after), limit, maxBytes: 1e9 })
      .entries.map((e) => str(e.key));
  assert.deepEqual(keys("", "aa"), ["ab", "abc", "abd", "b", "ba"]);
  assert.deepEqual(keys("ab", "a"), ["ab", "abc", "abd"]);
  assert.deepEqual(keys("ab", "abc"), ["abd"]);
  assert.deepEqual(keys("ab", "abz"), []);
  assert.deepEqual(keys("b", "ab"), ["b", "ba"]);
  const r = store.scan({ prefix: bytes("ab"), startAfter: EMPTY, limit: 2, maxBytes: 1e9 });
  assert.equal(r.more, true);
  const last = store.scan({
    prefix: bytes("ab"),
    startAfter: bytes("abc"),
    limit: 1,
    maxBytes: 1e9,
  });
  assert.equal(last.more, false, "no key with the prefix follows abd");
});

/** A store with a cap of `cap` bytes under `policy`, filled until it first evicts or refuses. */
function fullStore(policy: EvictionPolicy, cap = 2 << 20) {
  const clock = fakeClock();
  const store = new ShardStore(clock.now, { maxMemory: cap, eviction: policy });
  return { clock, store };
}

const key = (i: number) => enc.encode(`key:${String(i).padStart(8, "0")}`);
const VALUE = new Uint8Array(100).fill(7);

Deno.test("under noeviction a write past the cap throws NO_MEMORY and changes nothing", () => {
  const { store } = fullStore("noeviction");
  let stored = 0;
  let error: unknown;
  for (let i = 0; i < 100_000; i++) {
    try {
      store.put(key(i), VALUE, 0);
      stored++;
    } catch (e) {
      error = e;
      break;
    }
  }
  assert.ok(error instanceof StoreFullError, `refused after ${stored} keys`);
  assert.equal(error.status, Status.NO_MEMORY);
  assert.ok(stored > 1000, `${stored} keys fit in 2 MiB`);
  assert.ok(store.usedMemory <= store.maxMemory);
  const used = store.usedMemory;
  assert.throws(() => store.put(key(stored), VALUE, 0), StoreFullError);
  assert.equal(store.get(key(stored)), undefined, "the refused key was not written");
  assert.equal(store.size, stored);
  assert.equal(store.usedMemory, used);
  // A bigger value for an existing key needs a bigger chunk: refused, old value kept.
  assert.throws(() => store.put(key(0), new Uint8Array(5000), 0), StoreFullError);
  assert.deepEqual(store.get(key(0)), VALUE);
  // Reads, same-size overwrites and deletes keep working; a delete makes room.
  assert.equal(store.put(key(1), new Uint8Array(100).fill(9), 0), true);
  assert.equal(store.delete(key(2)), true);
  assert.equal(store.put(key(stored), VALUE, 0), false);
  assert.equal(store.evictedKeys, 0);
});

Deno.test("allkeys-lru evicts keys not read recently and keeps the ones read", () => {
  const { clock, store } = fullStore("allkeys-lru");
  const hot = 200;
  let i = 0;
  for (; i < hot; i++) store.put(key(i), VALUE, 0);
  clock.t += 60_000;
  store.sweep(0); // advances the LRU clock
  for (let h = 0; h < hot; h++) store.get(key(h));
  // Fill to the cap with keys never read.
  for (; store.evictedKeys === 0; i++) store.put(key(i), VALUE, 0);
  const filled = i;
  for (let round = 0; round < 5; round++) {
    clock.t += 10_000;
    store.sweep(0); // advances the LRU clock
    for (let h = 0; h < hot; h++) store.get(key(h)); // the hot keys are read often
    for (let n = 0; n < 2000; n++, i++) store.put(key(i), VALUE, 0);
  }
  assert.ok(store.usedMemory <= store.maxMemory);
  let hotLeft = 0;
  for (let h = 0; h < hot; h++) if (store.get(key(h)) !== undefined) hotLeft++;
  let coldLeft = 0;
  for (let c = hot; c < filled; c++) if (store.get(key(c)) !== undefined) coldLeft++;
  assert.ok(store.evictedKeys >= 10_000, `${store.evictedKeys} evicted`);
  assert.ok(hotLeft >= hot * 0.9, `${hotLeft} of ${hot} hot keys kept`);
  assert.ok(coldLeft < (filled - hot) * 0.5, `${coldLeft} of ${filled - hot} cold keys kept`);
});

Deno.test("volatile-lru evicts only keys with a TTL and refuses when none is left", () => {
  const { store } = fullStore("volatile-lru", 1 << 20);
  for (let i = 0; i < 2000; i++) store.put(key(i), VALUE, 0);
  let i = 2000;
  for (; i < 100_000 && store.evictedKeys < 3000; i++) store.put(key(i), VALUE, 3_600_000);
  assert.ok(store.evictedKeys >= 3000);
  for (let p = 0; p < 2000; p++) assert.ok(store.get(key(p)) !== undefined, "persistent keys stay");
  // Only persistent keys can be left: with no TTL keys to evict, a write is refused.
  let refused = false;
  for (let n = 0; n < 100_000 && !refused; n++, i++) {
    try {
      store.put(key(i), VALUE, 0);
    } catch (e) {
      assert.ok(e instanceof StoreFullError);
      refused = true;
    }
  }
  assert.ok(refused, "a write was refused once no key with a TTL was left");
  assert.equal(store.keysWithTtl, 0);
});

Deno.test("allkeys-random evicts until the write fits and never the key being written", () => {
  const { store } = fullStore("allkeys-random", 1 << 20);
  for (let i = 0; i < 30_000; i++) store.put(key(i), VALUE, 0);
  assert.ok(store.evictedKeys > 10_000);
  assert.ok(store.usedMemory <= store.maxMemory);
  assert.deepEqual(store.get(key(29_999)), VALUE, "the last key written is there");
  // Growing one key evicts others and keeps it.
  const big = new Uint8Array(8000).fill(1);
  store.put(key(29_999), big, 0);
  assert.deepEqual(store.get(key(29_999)), big);
});

Deno.test("eviction tells the observer and counts evicted keys", () => {
  const { store } = fullStore("allkeys-random", 1 << 20);
  let evicted = 0;
  store.observer = {
    stored() {},
    removed: (_k, reason) => {
      if (reason === "evict") evicted++;
    },
    cleared() {},
  };
  for (let i = 0; i < 20_000; i++) store.put(key(i), VALUE, 0);
  assert.ok(evicted > 0);
  assert.equal(store.evictedKeys, evicted);
  assert.equal(store.size, 20_000 - evicted);
});

Deno.test("memory comes back after a churn of deletes and keys of other sizes", () => {
  const store = new ShardStore();
  const baseline = store.usedMemory;
  const small = new Uint8Array(100);
  for (let i = 0; i < 50_000; i++) store.put(key(i), small, 0);
  const peakPages = store.reservedMemory;
  for (let i = 0; i < 50_000; i++) store.delete(key(i));
  assert.equal(store.size, 0);
  // Every page emptied: the records' memory is back but for a few spare pages.
  assert.ok(store.reservedMemory <= 4 << 20, `${store.reservedMemory} bytes of pages kept`);
  // Refill with another size: the pages are taken again, not added to.
  const other = new Uint8Array(300);
  for (let i = 0; i < 18_000; i++) store.put(key(i), other, 0);
  assert.ok(store.reservedMemory <= peakPages, `${store.reservedMemory} > ${peakPages}`);
  for (let i = 0; i < 18_000; i++) store.delete(key(i));
  // What stays is the table at its largest and the index arrays, not records.
  const left = store.usedMemory - baseline;
  assert.ok(left < 2 << 20, `${left} bytes still used by an empty store`);
  assert.equal(store.bytes, 0);
});

Deno.test("a store of 200,000 keys costs under 200 bytes a key for 16-byte keys and 100-byte values", () => {
  const store = new ShardStore();
  const k = new Uint8Array(16);
  const view = new DataView(k.buffer);
  for (let i = 0; i < 200_000; i++) {
    view.setUint32(12, i * 2654435761);
    view.setUint32(8, i);
    store.put(k, VALUE, 0);
  }
  assert.equal(store.size, 200_000);
  const perKey = store.usedMemory / store.size;
  assert.ok(perKey < 200, `${perKey.toFixed(1)} B/key used`);
  assert.ok(store.reservedMemory / store.size < 200);
});

Deno.test("expired keys are swept without reads and counted", () => {
  const clock = fakeClock();
  const store = new ShardStore(clock.now);
  for (let i = 0; i < 1000; i++) store.put(key(i), VALUE, i < 600 ? 100 : 0);
  assert.equal(store.keysWithTtl, 600);
  clock.t += 100;
  let swept = 0;
  for (let tick = 0; tick < 10 && store.size > 400; tick++) swept += store.sweep(200);
  assert.equal(swept, 600);
  assert.equal(store.size, 400);
  assert.equal(store.keysWithTtl, 0);
  assert.equal(store.expiredKeys, 600);
  assert.equal(store.nextExpiryIn(), Infinity);
});

Deno.test("writes sweep a few expired keys as they go, so expiry keeps up under load", () => {
  const clock = fakeClock();
  const store = new ShardStore(clock.now);
  for (let i = 0; i < 500; i++) store.put(key(i), VALUE, 10);
  clock.t += 10;
  // Only writes of other keys: no read, no explicit sweep.
  for (let i = 0; i < 64 * 40; i++) store.put(key(100_000 + (i % 100)), VALUE, 0);
  assert.equal(store.expiredKeys, 500);
  assert.equal(store.size, 100);
});

Deno.test("reads of other keys sweep expired keys as they go, so expiry keeps up under reads", () => {
  const clock = fakeClock();
  const store = new ShardStore(clock.now);
  for (let i = 0; i < 300; i++) store.put(key(i), VALUE, 10);
  store.put(key(100_000), VALUE, 0);
  clock.t += 10;
  for (let i = 0; i < 1024 * 20; i++) assert.ok(store.get(key(100_000)) !== undefined);
  assert.equal(store.expiredKeys, 300);
  assert.equal(store.size, 1);
});

Deno.test("setExpiry moves a record between header sizes and keeps its value", () => {
  const clock = fakeClock();
  const store = new ShardStore(clock.now);
  const v = enc.encode("x".repeat(108)); // 12 + 8 + 108 = 128: a TTL needs the next chunk
  store.put(key(1), v, 0);
  assert.equal(store.setExpiry(key(1), clock.t + 50), true);
  assert.equal(dec.decode(store.get(key(1))), dec.decode(v));
  assert.equal(store.expiryOf(key(1)), clock.t + 50);
  assert.equal(store.setExpiry(key(1), 0), true);
  assert.equal(dec.decode(store.get(key(1))), dec.decode(v));
  assert.equal(
    store.scan({ prefix: EMPTY, startAfter: EMPTY, limit: 5, maxBytes: 1e9 })
      .entries.length,
    1,
  );
});
