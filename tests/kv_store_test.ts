import assert from "node:assert/strict";
import {
  keyToString,
  type ScanEntry,
  type ScanOptions,
  type ScanResult,
  ShardStore,
  stringToKey,
} from "../src/kv/store.ts";
import { crc32 } from "../src/protocol/crc32.ts";
import { seededRandom } from "./support.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const EMPTY = new Uint8Array(0);

function b(s: string): Uint8Array {
  return stringToKey(s);
}

function txt(v: Uint8Array | undefined): string | undefined {
  return v === undefined ? undefined : dec.decode(v);
}

function fakeClock(start = 1_000_000): { now: () => number; t: number } {
  const c = { t: start, now: () => c.t };
  return c;
}

function scanAll(store: ShardStore, prefix = EMPTY): string[] {
  const r = store.scan({ prefix, startAfter: EMPTY, limit: 1000, maxBytes: 1e9 });
  return r.entries.map((e) => keyToString(e.key));
}

Deno.test("keyToString and stringToKey round-trip every byte value", () => {
  const all = new Uint8Array(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  const s = keyToString(all);
  assert.equal(s.length, 256);
  assert.equal(s.charCodeAt(0x80), 0x80);
  assert.deepEqual(stringToKey(s), all);

  const big = new Uint8Array(20000).map((_, i) => (i * 31) & 0xff);
  assert.deepEqual(stringToKey(keyToString(big)), big);
  assert.equal(keyToString(EMPTY), "");
});

Deno.test("put, get, replace and delete behave like a map", () => {
  const s = new ShardStore();
  assert.equal(s.get(enc.encode("a")), undefined);
  assert.equal(s.put(enc.encode("a"), enc.encode("1"), 0), false);
  assert.equal(txt(s.get(enc.encode("a"))), "1");
  assert.equal(s.put(enc.encode("a"), enc.encode("22"), 0), true);
  assert.equal(txt(s.get(enc.encode("a"))), "22");
  assert.equal(s.size, 1);
  assert.equal(s.bytes, 3);
  assert.equal(s.put(enc.encode("bb"), enc.encode(""), 0), false);
  assert.equal(s.size, 2);
  assert.equal(s.bytes, 5);
  assert.deepEqual(s.get(enc.encode("bb")), new Uint8Array(0));
  assert.equal(s.delete(enc.encode("a")), true);
  assert.equal(s.delete(enc.encode("a")), false);
  assert.equal(s.get(enc.encode("a")), undefined);
  assert.equal(s.size, 1);
  assert.equal(s.bytes, 2);
  s.clear();
  assert.equal(s.size, 0);
  assert.equal(s.bytes, 0);
  assert.deepEqual(scanAll(s), []);
});

Deno.test("binary keys are ordered by unsigned byte value, shorter prefix first", () => {
  const s = new ShardStore();
  const keys = [
    [0xff],
    [0x80],
    [0x9f],
    [0x00],
    [0x7f],
    [0x01],
    [0x00, 0x00],
    [0x61, 0x62],
    [0x61, 0x00],
    [0x61],
    [0x90, 0xff],
  ];
  for (const k of keys) s.put(new Uint8Array(k), new Uint8Array(k), 0);
  const r = s.scan({ prefix: EMPTY, startAfter: EMPTY, limit: 0, maxBytes: 1e9 });
  assert.deepEqual(
    r.entries.map((e) => Array.from(e.key)),
    [
      [0x00],
      [0x00, 0x00],
      [0x01],
      [0x61],
      [0x61, 0x00],
      [0x61, 0x62],
      [0x7f],
      [0x80],
      [0x90, 0xff],
      [0x9f],
      [0xff],
    ],
  );
  for (const e of r.entries) assert.deepEqual(e.value, e.key);
  assert.equal(r.more, false);
  assert.deepEqual(s.get(new Uint8Array([0x90, 0xff])), new Uint8Array([0x90, 0xff]));
});

Deno.test("put copies the value and the key so later mutation of the source is harmless", () => {
  const s = new ShardStore();
  const ring = new Uint8Array([1, 2, 3, 4, 5, 6]);
  s.put(ring.subarray(0, 2), ring.subarray(2, 5), 0);
  ring.fill(0xee);
  assert.deepEqual(s.get(new Uint8Array([1, 2])), new Uint8Array([3, 4, 5]));
  assert.equal(s.get(ring.subarray(0, 2)), undefined);
  const r = s.scan({ prefix: EMPTY, startAfter: EMPTY, limit: 10, maxBytes: 100 });
  assert.deepEqual(r.entries[0].key, new Uint8Array([1, 2]));
  assert.deepEqual(r.entries[0].value, new Uint8Array([3, 4, 5]));
});

Deno.test("expired keys are treated as missing by get, put, delete and scan", () => {
  const c = fakeClock();
  const s = new ShardStore(c.now);
  assert.equal(s.put(b("a"), b("1"), 100), false);
  assert.equal(s.put(b("b"), b("2"), 100), false);
  assert.equal(s.put(b("c"), b("3"), 100), false);
  assert.equal(s.put(b("d"), b("4"), 0), false);
  c.t += 99;
  assert.equal(txt(s.get(b("a"))), "1");
  assert.deepEqual(scanAll(s), ["a", "b", "c", "d"]);
  c.t += 1; // exactly at expiry: gone
  assert.equal(s.get(b("a")), undefined);
  assert.equal(s.put(b("b"), b("x"), 0), false, "replacing an expired key is not a replace");
  assert.equal(txt(s.get(b("b"))), "x");
  assert.equal(s.size, 3, "c is expired but not swept yet");
  assert.equal(s.delete(b("c")), false);
  assert.equal(s.size, 2);
  assert.deepEqual(scanAll(s), ["b", "d"]);
  assert.equal(s.bytes, 4);
});

Deno.test("scan skips expired keys in the middle and keeps the more flag exact", () => {
  const c = fakeClock();
  const s = new ShardStore(c.now);
  s.put(b("k1"), b("v"), 0);
  s.put(b("k2"), b("v"), 10);
  s.put(b("k3"), b("v"), 0);
  s.put(b("k4"), b("v"), 10);
  s.put(b("z"), b("v"), 0);
  c.t += 10;
  const opts: ScanOptions = { prefix: b("k"), startAfter: EMPTY, limit: 1, maxBytes: 1e9 };
  let r = s.scan(opts);
  assert.deepEqual(r.entries.map((e) => keyToString(e.key)), ["k1"]);
  assert.equal(r.more, true);
  r = s.scan({ ...opts, startAfter: b("k1") });
  assert.deepEqual(r.entries.map((e) => keyToString(e.key)), ["k3"]);
  assert.equal(r.more, false, "only an expired k4 follows");
  assert.equal(s.size, 3, "scan deleted the expired keys it met");
});

Deno.test("a put without ttl clears an earlier ttl and a put with ttl sets a new one", () => {
  const c = fakeClock();
  const s = new ShardStore(c.now);
  s.put(b("a"), b("1"), 50);
  assert.equal(s.put(b("a"), b("2"), 0), true);
  c.t += 1000;
  assert.equal(txt(s.get(b("a"))), "2");
  assert.equal(s.sweep(100), 0);
  assert.equal(s.nextExpiryIn(), Infinity);
  assert.equal(s.put(b("a"), b("3"), 50), true);
  assert.equal(s.nextExpiryIn(), 50);
  c.t += 50;
  assert.equal(s.get(b("a")), undefined);
});

Deno.test("sweep deletes only expired keys and respects maxChecks", () => {
  const c = fakeClock();
  const s = new ShardStore(c.now);
  for (let i = 0; i < 10; i++) s.put(b(`t${i}`), b("v"), 10 + i);
  for (let i = 0; i < 5; i++) s.put(b(`p${i}`), b("v"), 0);
  assert.equal(s.sweep(100), 0);
  c.t += 14; // t0..t4 due
  assert.equal(s.sweep(2), 2);
  assert.equal(s.size, 13);
  assert.equal(s.sweep(100), 3);
  assert.equal(s.size, 10);
  assert.equal(s.sweep(0), 0);
  c.t += 1000;
  assert.equal(s.sweep(1000), 5);
  assert.equal(s.size, 5);
  assert.deepEqual(scanAll(s), ["p0", "p1", "p2", "p3", "p4"]);
  assert.equal(s.bytes, 15);
});

Deno.test("nextExpiryIn reports the earliest live expiry and skips stale heap items", () => {
  const c = fakeClock();
  const s = new ShardStore(c.now);
  assert.equal(s.nextExpiryIn(), Infinity);
  s.put(b("a"), b("v"), 500);
  s.put(b("b"), b("v"), 300);
  s.put(b("c"), b("v"), 400);
  assert.equal(s.nextExpiryIn(), 300);
  s.delete(b("b"));
  assert.equal(s.nextExpiryIn(), 400);
  s.put(b("c"), b("v"), 1000); // re-put makes the old item for c stale
  assert.equal(s.nextExpiryIn(), 500);
  s.put(b("a"), b("v"), 0);
  assert.equal(s.nextExpiryIn(), 1000);
  c.t += 600;
  assert.equal(s.nextExpiryIn(), 400);
  c.t += 400;
  assert.equal(s.nextExpiryIn(), 0, "due but unswept");
  assert.equal(s.sweep(10), 1);
  assert.equal(s.nextExpiryIn(), Infinity);
  s.put(b("d"), b("v"), 5);
  s.clear();
  assert.equal(s.nextExpiryIn(), Infinity);
});

Deno.test("repeated re-puts with ttl keep the expiry heap bounded and correct", () => {
  const c = fakeClock();
  const s = new ShardStore(c.now);
  for (let i = 0; i < 5000; i++) {
    c.t += 1;
    s.put(b(`k${i % 3}`), b("v"), 100);
  }
  assert.equal(s.nextExpiryIn(), 98);
  c.t += 98;
  assert.equal(s.sweep(1_000_000), 1);
  assert.equal(s.size, 2);
  c.t += 2;
  assert.equal(s.sweep(1_000_000), 2);
  assert.equal(s.size, 0);
  assert.equal(s.nextExpiryIn(), Infinity);
});

Deno.test("scan honours prefix, exclusive startAfter and limit", () => {
  const s = new ShardStore();
  for (const k of ["a", "ab", "abc", "abd", "ac", "b", "ba", "a\x00", "a\xff"]) {
    s.put(b(k), b("v"), 0);
  }
  const keys = (r: ScanResult) => r.entries.map((e: ScanEntry) => keyToString(e.key));
  const base = { prefix: EMPTY, startAfter: EMPTY, limit: 1000, maxBytes: 1e9 };

  let r = s.scan({ ...base, prefix: b("ab") });
  assert.deepEqual(keys(r), ["ab", "abc", "abd"]);
  assert.equal(r.more, false);

  r = s.scan({ ...base, prefix: b("a") });
  assert.deepEqual(keys(r), ["a", "a\x00", "ab", "abc", "abd", "ac", "a\xff"]);

  r = s.scan({ ...base, prefix: b("a"), startAfter: b("abc") });
  assert.deepEqual(keys(r), ["abd", "ac", "a\xff"]);

  // startAfter before the prefix range, and one that is not itself a key.
  r = s.scan({ ...base, prefix: b("b"), startAfter: b("a") });
  assert.deepEqual(keys(r), ["b", "ba"]);
  r = s.scan({ ...base, startAfter: b("abca") });
  assert.deepEqual(keys(r), ["abd", "ac", "a\xff", "b", "ba"]);

  // startAfter beyond the prefix range.
  r = s.scan({ ...base, prefix: b("a"), startAfter: b("b") });
  assert.deepEqual(keys(r), []);
  assert.equal(r.more, false);

  r = s.scan({ ...base, prefix: b("zz") });
  assert.deepEqual(keys(r), []);
  assert.equal(r.more, false);

  r = s.scan({ ...base, prefix: b("a"), limit: 2 });
  assert.deepEqual(keys(r), ["a", "a\x00"]);
  assert.equal(r.more, true);

  r = s.scan({ ...base, prefix: b("ab"), limit: 3 });
  assert.deepEqual(keys(r), ["ab", "abc", "abd"]);
  assert.equal(r.more, false, "exactly limit entries and nothing after");
});

Deno.test("scan maxBytes cuts the page but always returns at least one entry", () => {
  const s = new ShardStore();
  s.put(b("a"), new Uint8Array(9), 0); // 10 bytes
  s.put(b("b"), new Uint8Array(9), 0); // 10 bytes
  s.put(b("c"), new Uint8Array(99), 0); // 100 bytes
  const base = { prefix: EMPTY, startAfter: EMPTY, limit: 1000 };
  const keys = (r: ScanResult) => r.entries.map((e) => keyToString(e.key));

  let r = s.scan({ ...base, maxBytes: 20 });
  assert.deepEqual(keys(r), ["a", "b"]);
  assert.equal(r.more, true);
  r = s.scan({ ...base, maxBytes: 19 });
  assert.deepEqual(keys(r), ["a"]);
  assert.equal(r.more, true);
  r = s.scan({ ...base, maxBytes: 0 });
  assert.deepEqual(keys(r), ["a"]);
  r = s.scan({ ...base, startAfter: b("b"), maxBytes: 5 });
  assert.deepEqual(keys(r), ["c"]);
  assert.equal(r.more, false);
  r = s.scan({ ...base, maxBytes: 120 });
  assert.deepEqual(keys(r), ["a", "b", "c"]);
  assert.equal(r.more, false);
});

Deno.test("paging through 2500 keys returns each exactly once in order", () => {
  const rnd = seededRandom(7);
  const s = new ShardStore();
  const all: string[] = [];
  for (let i = 0; i < 2500; i++) {
    all.push(String.fromCharCode(0x70, i >> 8, i & 0xff, (i * 37) & 0xff));
  }
  const shuffled = all.slice();
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  for (const k of shuffled) s.put(b(k), b(k), 0);
  s.put(b("o"), b("x"), 0); // outside the prefix on both sides
  s.put(b("q"), b("x"), 0);

  for (const pageSize of [1000, 7]) {
    const got: string[] = [];
    let startAfter: Uint8Array = EMPTY;
    let pages = 0;
    for (;;) {
      const r = s.scan({ prefix: b("p"), startAfter, limit: pageSize, maxBytes: 1e9 });
      pages++;
      for (const e of r.entries) {
        got.push(keyToString(e.key));
        assert.deepEqual(e.value, e.key);
      }
      if (!r.more) break;
      assert.equal(r.entries.length, pageSize);
      startAfter = r.entries[r.entries.length - 1].key;
    }
    assert.deepEqual(got, all);
    assert.equal(pages, Math.ceil(2500 / pageSize));
  }

  // 2100 = 300 * 7: the last full page must still report more=false.
  const s2 = new ShardStore();
  const exact = all.slice(0, 2100);
  for (const k of exact) s2.put(b(k), b("v"), 0);
  let startAfter: Uint8Array = EMPTY;
  let count = 0;
  for (;;) {
    const r = s2.scan({ prefix: EMPTY, startAfter, limit: 7, maxBytes: 1e9 });
    count += r.entries.length;
    assert.equal(r.entries.length, 7);
    if (!r.more) break;
    startAfter = r.entries[6].key;
  }
  assert.equal(count, 2100);
});

Deno.test("randomized operations match a naive sorted model", () => {
  const rnd = seededRandom(12345);
  const c = fakeClock();
  const s = new ShardStore(c.now);
  const model = new Map<string, { value: Uint8Array; exp: number }>();
  const alphabet = [0x00, 0x01, 0x61, 0x62, 0x7f, 0x80, 0x9f, 0xff];
  const randKey = (maxLen: number, minLen = 1): Uint8Array => {
    const len = minLen + Math.floor(rnd() * (maxLen - minLen + 1));
    const k = new Uint8Array(len);
    for (let i = 0; i < len; i++) k[i] = alphabet[Math.floor(rnd() * alphabet.length)];
    return k;
  };
  const live = (k: string): boolean => {
    const e = model.get(k);
    return e !== undefined && (e.exp === 0 || e.exp > c.t);
  };
  const liveSorted = (): string[] => [...model.keys()].filter(live).sort();

  for (let op = 0; op < 2000; op++) {
    const r = rnd();
    if (r < 0.35) {
      const key = randKey(3);
      const value = randKey(6, 0);
      const ttl = rnd() < 0.4 ? 1 + Math.floor(rnd() * 50) : 0;
      const k = keyToString(key);
      const want = live(k);
      assert.equal(s.put(key, value, ttl), want, `put #${op}`);
      model.set(k, { value: value.slice(), exp: ttl ? c.t + ttl : 0 });
      value.fill(0x42);
    } else if (r < 0.5) {
      const key = randKey(3);
      const k = keyToString(key);
      const want = live(k) ? model.get(k)?.value : undefined;
      assert.deepEqual(s.get(key), want, `get #${op}`);
    } else if (r < 0.6) {
      const key = randKey(3);
      const k = keyToString(key);
      assert.equal(s.delete(key), live(k), `delete #${op}`);
      model.delete(k);
    } else if (r < 0.8) {
      const prefix = rnd() < 0.3 ? EMPTY : randKey(2);
      const startAfter = rnd() < 0.4 ? EMPTY : randKey(3);
      const limit = rnd() < 0.1 ? 0 : 1 + Math.floor(rnd() * 10);
      const maxBytes = Math.floor(rnd() * 40);
      const p = keyToString(prefix);
      const sa = keyToString(startAfter);
      const cand = liveSorted().filter((k) => k.startsWith(p) && k > sa);
      const want: string[] = [];
      let total = 0;
      const lim = limit > 0 ? limit : 1000;
      for (const k of cand) {
        const size = k.length + (model.get(k)?.value.length ?? 0);
        if (want.length >= lim || (want.length > 0 && total + size > maxBytes)) break;
        want.push(k);
        total += size;
      }
      const got = s.scan({ prefix, startAfter, limit, maxBytes });
      assert.deepEqual(got.entries.map((e) => keyToString(e.key)), want, `scan #${op}`);
      for (const e of got.entries) {
        assert.deepEqual(e.value, model.get(keyToString(e.key))?.value);
      }
      assert.equal(got.more, want.length < cand.length, `scan more #${op}`);
    } else if (r < 0.9) {
      c.t += Math.floor(rnd() * 20);
    } else if (r < 0.95) {
      s.sweep(1 + Math.floor(rnd() * 5));
    } else {
      const keys = liveSorted();
      let earliest = Infinity;
      for (const k of keys) {
        const e = model.get(k);
        if (e !== undefined && e.exp !== 0) earliest = Math.min(earliest, e.exp - c.t);
      }
      const got = s.nextExpiryIn();
      assert.ok(got >= 0 && got <= earliest, `nextExpiryIn #${op}: ${got} vs ${earliest}`);
      s.sweep(1_000_000);
      assert.equal(s.nextExpiryIn(), earliest, `nextExpiryIn after sweep #${op}`);
      assert.equal(s.size, keys.length, `size #${op}`);
      let bytes = 0;
      for (const k of keys) bytes += k.length + (model.get(k)?.value.length ?? 0);
      assert.equal(s.bytes, bytes, `bytes #${op}`);
      assert.deepEqual(scanAll(s), keys.slice(0, 1000));
    }
  }
});

Deno.test("thousands of keys whose values change size class survive table growth and deletes", () => {
  const rnd = seededRandom(777);
  const s = new ShardStore();
  const model = new Map<string, Uint8Array>();
  const valueOf = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
  // Mostly small values, some across slab classes, a few over the slab limit.
  const size = (): number => {
    const r = rnd();
    if (r < 0.6) return Math.floor(rnd() * 120);
    if (r < 0.97) return Math.floor(rnd() * 5000);
    return 16 * 1024 + Math.floor(rnd() * 20_000);
  };
  for (let op = 0; op < 20_000; op++) {
    const key = enc.encode(`k${Math.floor(rnd() * 6000)}`);
    const k = keyToString(key);
    const r = rnd();
    if (r < 0.5) {
      const v = valueOf(size(), op & 0xff);
      assert.equal(s.put(key, v, 0), model.has(k), `put #${op}`);
      model.set(k, v);
    } else if (r < 0.7) {
      assert.equal(s.delete(key), model.delete(k), `delete #${op}`);
    } else {
      assert.deepEqual(s.get(key), model.get(k), `get #${op}`);
    }
  }
  assert.equal(s.size, model.size);
  let bytes = 0;
  for (const [k, v] of model) {
    bytes += k.length + v.length;
    assert.deepEqual(s.get(stringToKey(k)), v, `final get ${k}`);
  }
  assert.equal(s.bytes, bytes);
  const all = s.scan({ prefix: EMPTY, startAfter: EMPTY, limit: 1000, maxBytes: 1e12 });
  assert.deepEqual(
    all.entries.map((e) => keyToString(e.key)),
    [...model.keys()].sort().slice(0, 1000),
  );
  for (const k of [...model.keys()]) assert.equal(s.delete(stringToKey(k)), true);
  assert.equal(s.size, 0);
  assert.equal(s.bytes, 0);
  assert.equal(s.get(enc.encode("k1")), undefined);
});

Deno.test("a value read from the store can be put back even when the put adds record memory", () => {
  const store = new ShardStore();
  // 8 KiB values: a 1 MiB page holds ~100 of them, so the loop adds pages
  // while the value being stored is a view of the store's own memory.
  const first = new Uint8Array(8000).map((_, i) => i % 251);
  store.put(b("k0"), first, 0);
  for (let i = 1; i < 400; i++) {
    const prev = store.get(b(`k${i - 1}`))!;
    store.put(b(`k${i}`), prev, 0);
    // The key may be such a view too.
    store.put(store.get(b("k0"))!.subarray(0, 3), b("x"), 0);
  }
  for (let i = 0; i < 400; i++) assert.deepEqual(store.get(b(`k${i}`)), first, `k${i}`);
  assert.equal(txt(store.get(first.subarray(0, 3))), "x");
});

Deno.test("lookup gives each value with the CRC-32 of the bytes stored, through every kind of put", () => {
  const c = fakeClock();
  const store = new ShardStore(c.now);
  const check = (key: string, want: Uint8Array, what: string) => {
    const hit = store.lookup(b(key));
    assert.ok(hit, what);
    assert.deepEqual(hit.value, want, what);
    assert.equal(hit.crc, crc32(want), what);
    assert.deepEqual(store.get(b(key)), want, what);
  };
  const v = (n: number, fill: number) => new Uint8Array(n).map((_, i) => (i * 7 + fill) & 0xff);
  store.put(b("k"), v(100, 1), 0);
  check("k", v(100, 1), "new record");
  store.put(b("k"), v(101, 2), 0);
  check("k", v(101, 2), "replaced in the same chunk");
  store.put(b("k"), v(3000, 3), 0);
  check("k", v(3000, 3), "moved to a bigger chunk");
  store.put(b("k"), v(20_000, 4), 0);
  check("k", v(20_000, 4), "moved to its own buffer");
  store.put(b("k"), v(20_000, 5), 0);
  check("k", v(20_000, 5), "replaced in its own buffer");
  store.put(b("k"), EMPTY, 0);
  check("k", EMPTY, "empty value");
  // A neighbour's record in the same page is not disturbed.
  store.put(b("a"), v(90, 6), 0);
  store.put(b("k"), v(90, 7), 0);
  check("a", v(90, 6), "neighbour");
  check("k", v(90, 7), "after neighbour");
  store.put(b("t"), v(10, 8), 5);
  c.t += 5;
  assert.equal(store.lookup(b("t")), undefined, "an expired key is missing");
  assert.equal(store.lookup(b("none")), undefined, "a missing key is missing");
});
