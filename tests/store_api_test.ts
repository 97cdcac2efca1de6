import assert from "node:assert/strict";
import { ShardStore, type StoreObserver, stringToKey } from "../src/kv/store.ts";

const dec = new TextDecoder();
const b = (s: string) => stringToKey(s);

function fakeClock(start = 1_000_000): { now: () => number; t: number } {
  const c = { t: start, now: () => c.t };
  return c;
}

/** An observer that writes each call down as one line. */
function recorder(): { log: string[]; observer: StoreObserver } {
  const log: string[] = [];
  return {
    log,
    observer: {
      stored: (k, v, at) => log.push(`stored ${dec.decode(k)}=${dec.decode(v)} @${at}`),
      removed: (k, reason) => log.push(`removed ${dec.decode(k)} ${reason}`),
      cleared: () => log.push("cleared"),
    },
  };
}

Deno.test("putUntil stores with an absolute expiry that expiryOf reports", () => {
  const c = fakeClock();
  const s = new ShardStore(c.now);
  assert.equal(s.putUntil(b("a"), b("1"), c.t + 500), false);
  assert.equal(s.expiryOf(b("a")), c.t + 500);
  assert.equal(s.putUntil(b("a"), b("2"), 0), true);
  assert.equal(s.expiryOf(b("a")), 0);
  assert.equal(s.keysWithTtl, 0);
  assert.equal(s.expiryOf(b("missing")), undefined);
  c.t += 10;
  assert.equal(s.putUntil(b("b"), b("x"), c.t + 5), false);
  c.t += 5;
  assert.equal(s.expiryOf(b("b")), undefined, "an expired key has no expiry");
  assert.equal(s.expiredKeys, 1);
});

Deno.test("putUntil with a time already past removes the key and stores nothing", () => {
  const c = fakeClock();
  const s = new ShardStore(c.now);
  s.put(b("a"), b("1"), 0);
  assert.equal(s.putUntil(b("a"), b("2"), c.t - 1), true);
  assert.equal(s.get(b("a")), undefined);
  assert.equal(s.putUntil(b("z"), b("2"), c.t), false);
  assert.equal(s.get(b("z")), undefined);
  assert.equal(s.size, 0);
});

Deno.test("setExpiry sets, clears and with a past time deletes a live key", () => {
  const c = fakeClock();
  const s = new ShardStore(c.now);
  assert.equal(s.setExpiry(b("a"), c.t + 100), false, "a missing key has no expiry to set");
  s.put(b("a"), b("1"), 0);
  assert.equal(s.setExpiry(b("a"), c.t + 100), true);
  assert.equal(s.keysWithTtl, 1);
  assert.equal(s.expiryOf(b("a")), c.t + 100);
  assert.equal(s.setExpiry(b("a"), 0), true);
  assert.equal(s.keysWithTtl, 0);
  c.t += 1000;
  assert.equal(dec.decode(s.get(b("a"))), "1", "a cleared expiry never fires");
  assert.equal(s.setExpiry(b("a"), c.t - 1), true);
  assert.equal(s.get(b("a")), undefined);
  assert.equal(s.size, 0);
});

Deno.test("randomKey returns a copy of a live key and undefined when empty", () => {
  const c = fakeClock();
  const s = new ShardStore(c.now);
  assert.equal(s.randomKey(), undefined);
  s.put(b("gone"), b("x"), 10);
  s.put(b("live"), b("y"), 0);
  c.t += 10;
  for (let i = 0; i < 20; i++) assert.equal(dec.decode(s.randomKey()), "live");
  const k = s.randomKey()!;
  k[0] = 0;
  assert.equal(dec.decode(s.get(b("live"))), "y", "the key returned is a copy");
  s.delete(b("live"));
  assert.equal(s.randomKey(), undefined);
});

Deno.test("randomKey reaches every key of a small store", () => {
  const s = new ShardStore();
  for (let i = 0; i < 5; i++) s.put(b(`k${i}`), b("v"), 0);
  const seen = new Set<string>();
  for (let i = 0; i < 2000 && seen.size < 5; i++) seen.add(dec.decode(s.randomKey()));
  assert.equal(seen.size, 5);
});

Deno.test("the observer hears every store, delete, expiry and clear", () => {
  const c = fakeClock(1000);
  const s = new ShardStore(c.now);
  const { log, observer } = recorder();
  s.observer = observer;
  s.put(b("a"), b("1"), 0);
  s.put(b("b"), b("2"), 50);
  s.putUntil(b("c"), b("3"), 2000);
  s.setExpiry(b("a"), 3000);
  s.delete(b("a"));
  c.t = 1050;
  assert.equal(s.get(b("b")), undefined);
  c.t = 2000;
  assert.equal(s.sweep(10), 1);
  s.put(b("d"), b("4"), 0);
  s.clear();
  assert.deepEqual(log, [
    "stored a=1 @0",
    "stored b=2 @1050",
    "stored c=3 @2000",
    "stored a=1 @3000",
    "removed a delete",
    "removed b expire",
    "removed c expire",
    "stored d=4 @0",
    "cleared",
  ]);
  assert.equal(s.expiredKeys, 2);
  assert.equal(s.evictedKeys, 0);
});

Deno.test("usedMemory grows with the data and keysWithTtl counts keys with a TTL", () => {
  const s = new ShardStore();
  const empty = s.usedMemory;
  assert.ok(empty > 0);
  for (let i = 0; i < 1000; i++) s.put(b(`key:${i}`), new Uint8Array(100), i % 2 ? 60_000 : 0);
  assert.ok(s.usedMemory >= empty + 1000 * 100, `${s.usedMemory} after 1000 x 100 B`);
  assert.equal(s.keysWithTtl, 500);
  assert.equal(s.size, 1000);
});
