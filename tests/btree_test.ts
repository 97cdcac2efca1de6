import assert from "node:assert/strict";
import { BTree } from "../src/kv/btree.ts";
import { seededRandom } from "./support.ts";

/** Keys by reference; a tree over them compares by the numbers they hold. */
function numberTree(): { tree: BTree; keys: Map<number, number> } {
  const keys = new Map<number, number>();
  const tree = new BTree({
    compare: (key, ref) => new DataView(key.buffer).getUint32(0) - keys.get(ref)!,
  });
  return { tree, keys };
}

function k(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** Every reference in cursor order from the first key >= from (> from when exclusive). */
function walk(tree: BTree, from: number, exclusive: boolean, max = Infinity): number[] {
  const out: number[] = [];
  for (tree.seek(k(from), exclusive); tree.ref !== -1 && out.length < max; tree.next()) {
    out.push(tree.ref);
  }
  return out;
}

Deno.test("the tree keeps random inserts and deletes in order, matching a sorted model", () => {
  const rand = seededRandom(7);
  const { tree, keys } = numberTree();
  const model = new Set<number>();
  let nextRef = 0;
  const refOf = new Map<number, number>();
  for (let round = 0; round < 40_000; round++) {
    const n = Math.floor(rand() * 5000);
    if (rand() < 0.6 || model.size < 10) {
      if (model.has(n)) continue;
      const ref = nextRef++;
      keys.set(ref, n);
      refOf.set(n, ref);
      tree.insert(k(n), ref);
      model.add(n);
    } else {
      const ref = tree.delete(k(n));
      assert.equal(ref, model.has(n) ? refOf.get(n) : -1);
      model.delete(n);
    }
    if (round % 4000 === 0 || round === 39_999) {
      const sorted = [...model].sort((a, b) => a - b);
      assert.deepEqual(walk(tree, 0, false).map((r) => keys.get(r)), sorted);
      const from = Math.floor(rand() * 5000);
      assert.deepEqual(
        walk(tree, from, true, 50).map((r) => keys.get(r)),
        sorted.filter((x) => x > from).slice(0, 50),
      );
      assert.equal(tree.size, model.size);
    }
  }
});

Deno.test("ascending loads fill leaves and deleting everything leaves an empty tree", () => {
  const { tree, keys } = numberTree();
  for (let i = 0; i < 10_000; i++) {
    keys.set(i, i * 2);
    tree.insert(k(i * 2), i);
  }
  const full = tree.bytes;
  assert.deepEqual(walk(tree, 5, false, 3), [3, 4, 5]);
  assert.deepEqual(walk(tree, 6, true, 2), [4, 5]);
  assert.deepEqual(walk(tree, 6, false, 2), [3, 4]);
  for (let i = 9_999; i >= 0; i -= 2) assert.equal(tree.delete(k(i * 2)), i);
  for (let i = 0; i < 10_000; i += 2) assert.equal(tree.delete(k(i * 2)), i);
  assert.equal(tree.size, 0);
  assert.deepEqual(walk(tree, 0, false), []);
  // Refill: freed nodes are reused, so the arrays do not grow again.
  for (let i = 0; i < 10_000; i++) tree.insert(k(i * 2), i);
  assert.equal(tree.bytes, full);
  assert.equal(walk(tree, 0, false).length, 10_000);
});

Deno.test("replace points a key at a new reference, also when it is a subtree's least key", () => {
  const { tree, keys } = numberTree();
  for (let i = 0; i < 1000; i++) {
    keys.set(i, i);
    tree.insert(k(i), i);
  }
  for (let i = 0; i < 1000; i++) {
    keys.set(i + 1000, i);
    assert.equal(tree.replace(k(i), i + 1000), true);
  }
  assert.equal(tree.replace(k(5000), 1), false);
  assert.deepEqual(walk(tree, 0, false), Array.from({ length: 1000 }, (_, i) => i + 1000));
  // Old references are no longer reachable; a lookup by key still works.
  for (let i = 0; i < 1000; i++) keys.delete(i);
  assert.equal(tree.delete(k(500)), 1500);
  assert.deepEqual(walk(tree, 499, true, 2), [1501, 1502]);
});
