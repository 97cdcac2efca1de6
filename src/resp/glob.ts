/**
 * Redis-style glob patterns (`KEYS`, `SCAN MATCH`) over binary keys, matched
 * in time linear in key length × pattern length: the pattern is compiled to
 * tokens once, and matching keeps a single backtrack point (the last `*`),
 * never a RegExp that could backtrack exponentially on hostile patterns.
 *
 * @module
 */

/** A compiled pattern: the literal prefix to scan from, and a matcher. */
export interface Glob {
  /** Bytes every match starts with: the store scans only this range. */
  prefix: Uint8Array;
  /** True when the key matches the whole pattern. */
  matches(key: Uint8Array): boolean;
  /** True when every key with the prefix matches (pattern is `prefix*`). */
  prefixOnly: boolean;
}

const LITERAL = 0;
const ANY = 1;
const STAR = 2;
const CLASS = 3;

/**
 * Compiles `pattern` as Redis's `stringmatchlen` reads it: `*`, `?`,
 * `[abc]`, `[^a-z]` (an unclosed class runs to the end), `\x` escapes.
 *
 * @example
 * ```ts
 * import { compileGlob } from "./glob.ts";
 * const g = compileGlob(new TextEncoder().encode("user:*"));
 * g.matches(new TextEncoder().encode("user:7")); // true
 * ```
 */
export function compileGlob(pattern: Uint8Array): Glob {
  const kinds: number[] = [];
  const values: number[] = [];
  const classes: Uint8Array[] = [];
  const p = pattern;
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    if (c === 0x2a) {
      // Runs of stars are one star.
      if (kinds[kinds.length - 1] !== STAR) {
        kinds.push(STAR);
        values.push(0);
      }
      i++;
    } else if (c === 0x3f) {
      kinds.push(ANY);
      values.push(0);
      i++;
    } else if (c === 0x5b) {
      i++;
      const set = new Uint8Array(256);
      const negate = i < p.length && p[i] === 0x5e;
      if (negate) i++;
      for (;;) {
        if (i >= p.length) break;
        if (p[i] === 0x5c && i + 1 < p.length) {
          set[p[i + 1]] = 1;
          i += 2;
        } else if (p[i] === 0x5d) {
          i++;
          break;
        } else if (i + 2 < p.length && p[i + 1] === 0x2d) {
          let lo = p[i];
          let hi = p[i + 2];
          if (lo > hi) [lo, hi] = [hi, lo];
          for (let x = lo; x <= hi; x++) set[x] = 1;
          i += 3;
        } else {
          set[p[i]] = 1;
          i++;
        }
      }
      if (negate) { for (let x = 0; x < 256; x++) set[x] ^= 1; }
      kinds.push(CLASS);
      values.push(classes.length);
      classes.push(set);
    } else if (c === 0x5c && i + 1 < p.length) {
      kinds.push(LITERAL);
      values.push(p[i + 1]);
      i += 2;
    } else {
      kinds.push(LITERAL);
      values.push(c);
      i++;
    }
  }
  let lead = 0;
  while (lead < kinds.length && kinds[lead] === LITERAL) lead++;
  const prefix = Uint8Array.from(values.slice(0, lead));
  const prefixOnly = lead === kinds.length - 1 && kinds[lead] === STAR;
  const k = Int32Array.from(kinds);
  const v = Int32Array.from(values);
  const n = k.length;

  const one = (t: number, byte: number): boolean =>
    k[t] === ANY || (k[t] === LITERAL ? v[t] === byte : classes[v[t]][byte] === 1);

  function matches(key: Uint8Array): boolean {
    let t = 0;
    let s = 0;
    let starT = -1;
    let starS = 0;
    while (s < key.length) {
      if (t < n && k[t] === STAR) {
        starT = t++;
        starS = s;
      } else if (t < n && one(t, key[s])) {
        t++;
        s++;
      } else if (starT >= 0) {
        // The last star takes one more byte; earlier stars never need to
        // change, which is what keeps this O(key × pattern).
        t = starT + 1;
        s = ++starS;
      } else return false;
    }
    while (t < n && k[t] === STAR) t++;
    return t === n;
  }

  return { prefix, prefixOnly, matches: prefixOnly ? () => true : matches };
}
