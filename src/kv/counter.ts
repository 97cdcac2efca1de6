/**
 * Counters as Redis keeps them: a value that is a signed 64-bit integer in
 * ASCII decimal (`-42`). wire v1's Incr and RESP's INCR family share this
 * code, so a counter reads the same through either door.
 *
 * @module
 */
import type { ShardStore } from "./store.ts";

/** Largest signed 64-bit integer. */
export const INT64_MAX = (1n << 63n) - 1n;
/** Smallest signed 64-bit integer. */
export const INT64_MIN = -(1n << 63n);

/** Why an increment was refused; the value is left unchanged. */
export class CounterError extends Error {
  /** `not-integer`: the stored value is no int64; `overflow`: the result would leave int64. */
  readonly kind: "not-integer" | "overflow";
  /**
   * Makes the error.
   *
   * @example
   * ```ts
   * import { CounterError } from "./counter.ts";
   * new CounterError("overflow").kind; // "overflow"
   * ```
   */
  constructor(kind: "not-integer" | "overflow") {
    super(
      kind === "overflow"
        ? "Incr: the result would be outside the signed 64-bit range"
        : "Incr: the stored value is not a signed 64-bit decimal integer",
    );
    this.name = "CounterError";
    this.kind = kind;
  }
}

/**
 * The integer in `b[start, end)` by Redis's `string2ll` rules (optional `-`,
 * digits, no leading zeros, no `+`, no spaces, no `-0`, within int64), or
 * null. Short ones come back as numbers, so the common case makes no BigInt.
 *
 * @example
 * ```ts
 * import { parseInt64 } from "./counter.ts";
 * parseInt64(new TextEncoder().encode("-42"), 0, 3); // -42
 * parseInt64(new TextEncoder().encode("042"), 0, 3); // null
 * ```
 */
export function parseInt64(b: Uint8Array, start: number, end: number): number | bigint | null {
  const len = end - start;
  if (len === 0 || len > 20) return null;
  let i = start;
  const negative = b[i] === 0x2d;
  if (negative) {
    i++;
    if (i === end) return null;
  }
  if (b[i] === 0x30) return end - i === 1 && !negative ? 0 : null;
  if (end - i <= 15) {
    let n = 0;
    for (; i < end; i++) {
      const d = b[i] - 0x30;
      if (d < 0 || d > 9) return null;
      n = n * 10 + d;
    }
    return negative ? -n : n;
  }
  let n = 0n;
  for (; i < end; i++) {
    const d = b[i] - 0x30;
    if (d < 0 || d > 9) return null;
    n = n * 10n + BigInt(d);
  }
  if (negative) n = -n;
  return n < INT64_MIN || n > INT64_MAX ? null : n;
}

const digits = new Uint8Array(21);

/**
 * ASCII decimal bytes of an integer (a fresh array, as the store copies it anyway).
 *
 * @example
 * ```ts
 * import { int64Bytes } from "./counter.ts";
 * new TextDecoder().decode(int64Bytes(-7)); // "-7"
 * ```
 */
export function int64Bytes(v: number | bigint): Uint8Array {
  const s = String(v);
  for (let i = 0; i < s.length; i++) digits[i] = s.charCodeAt(i);
  return digits.subarray(0, s.length);
}

/**
 * Adds `delta` to the counter at `key` (missing or expired = 0) and returns
 * the new value. `ttlMs` (0 = none) applies only when the key is created;
 * an existing key keeps its expiry. Throws {@link CounterError} with the
 * value unchanged, and whatever the store throws for a full store.
 *
 * @example
 * ```ts
 * import { incrBy } from "./counter.ts";
 * import { ShardStore } from "./store.ts";
 * const s = new ShardStore();
 * incrBy(s, new TextEncoder().encode("hits"), 5, 0); // 5
 * ```
 */
export function incrBy(
  store: ShardStore,
  key: Uint8Array,
  delta: number | bigint,
  ttlMs: number,
): number | bigint {
  const old = store.get(key);
  let current: number | bigint = 0;
  if (old !== undefined) {
    const n = parseInt64(old, 0, old.length);
    if (n === null) throw new CounterError("not-integer");
    current = n;
  }
  let next: number | bigint;
  if (typeof current === "number" && typeof delta === "number") {
    next = current + delta;
    if (!Number.isSafeInteger(next)) next = BigInt(current) + BigInt(delta);
  } else next = BigInt(current) + BigInt(delta);
  if (typeof next === "bigint") {
    if (next < INT64_MIN || next > INT64_MAX) throw new CounterError("overflow");
    if (next >= -(2n ** 53n) + 1n && next <= 2n ** 53n - 1n) next = Number(next);
  }
  const bytes = int64Bytes(next);
  if (old === undefined) store.put(key, bytes, ttlMs);
  else store.putUntil(key, bytes, store.expiryOf(key) ?? 0);
  return next;
}
