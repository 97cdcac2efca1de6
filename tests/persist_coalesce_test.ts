/** The persistence worker's pending-change table against a plain Map model. */
import assert from "node:assert/strict";
import { Coalescer } from "../src/persist/coalesce.ts";
import { seededRandom } from "./support.ts";

Deno.test("the pending-change table keeps exactly the last change of each key", () => {
  const rand = seededRandom(16);
  const table = new Coalescer();
  const model = new Map<string, { value: string | null; expiresAt: number }>();
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  // Enough keys to grow the table past its first size, values of changing lengths.
  for (let i = 0; i < 30_000; i++) {
    const k = `k${Math.floor(rand() * 6000)}`;
    const del = rand() < 0.2;
    const v = del ? null : "v".repeat(Math.floor(rand() * 300)) + i;
    const rec = enc.encode(k + (v ?? ""));
    const exp = rand() < 0.5 ? 0 : 1e12 + i;
    table.set(rec, 0, k.length, k.length, v === null ? -1 : rec.length - k.length, exp);
    model.set(k, { value: v, expiresAt: exp });
  }
  const seen = new Map<string, { value: string | null; expiresAt: number }>();
  table.forEach((key, value, expiresAt) => {
    const k = dec.decode(key);
    assert.equal(seen.has(k), false, `${k} twice`);
    seen.set(k, { value: value === null ? null : dec.decode(value), expiresAt });
  });
  assert.deepEqual(seen, model);
  table.clear();
  let n = 0;
  table.forEach(() => n++);
  assert.equal(n, 0);
  assert.equal(table.bytes, 0);
});
