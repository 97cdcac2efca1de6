/**
 * Key patterns of ACL users (`~app:*`): Redis's glob syntax (`*`, `?`,
 * `[abc]`, `[^a-c]`, `\x`) over binary keys, matched without backtracking.
 *
 * A pattern is cut at its stars into segments of fixed length; each
 * segment is found at the leftmost place it fits after the previous one
 * (leftmost is always safe for globs: a later segment can only gain room).
 * So a match costs at most `key length × pattern length` byte comparisons,
 * never exponential time, whatever the pattern (Redis's own matcher
 * backtracks and needs a nesting limit).
 *
 * @module
 */

/** One position of a segment: a byte, any byte (`?`), or a class. */
type Atom = number | "any" | { negate: boolean; ranges: number[] };

/** A compiled key pattern. */
export interface KeyPattern {
  /** The pattern as written (after `~`). */
  readonly source: string;
  /** True when the pattern matches every key (`*`). */
  readonly all: boolean;
  /** True when `key[start, end)` matches the whole pattern. */
  matches(key: Uint8Array, start?: number, end?: number): boolean;
  /**
   * True when every key that starts with `prefix` matches: the pattern
   * ends with `*` and `prefix` itself matches it. (A pattern that does not
   * end with `*` is refused even where it would happen to cover every
   * extension, such as `a*?` for prefix `ab`: refusing is the safe side.)
   */
  coversPrefix(prefix: Uint8Array): boolean;
}

const encoder = new TextEncoder();

function parseSegments(
  p: Uint8Array,
): { segments: Atom[][]; leadingStar: boolean; trailingStar: boolean } {
  const segments: Atom[][] = [[]];
  let leadingStar = false;
  let trailingStar = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    trailingStar = false;
    if (c === 0x2a /* * */) {
      if (i === 0) leadingStar = true;
      trailingStar = true;
      if (segments[segments.length - 1].length > 0) segments.push([]);
      continue;
    }
    const seg = segments[segments.length - 1];
    if (c === 0x3f /* ? */) seg.push("any");
    else if (c === 0x5c /* \ */ && i + 1 < p.length) seg.push(p[++i]);
    else if (c === 0x5b /* [ */) {
      let j = i + 1;
      let negate = false;
      if (p[j] === 0x5e /* ^ */) {
        negate = true;
        j++;
      }
      const ranges: number[] = [];
      let closed = false;
      for (; j < p.length; j++) {
        let a = p[j];
        if (a === 0x5d /* ] */) {
          closed = true;
          break;
        }
        if (a === 0x5c && j + 1 < p.length) a = p[++j];
        if (p[j + 1] === 0x2d /* - */ && j + 2 < p.length && p[j + 2] !== 0x5d) {
          let b = p[j + 2];
          j += 2;
          if (b === 0x5c && j + 1 < p.length) b = p[++j];
          ranges.push(Math.min(a, b), Math.max(a, b));
        } else ranges.push(a, a);
      }
      // Redis treats an unclosed class as running to the end of the pattern.
      seg.push({ negate, ranges });
      i = closed ? j : p.length;
    } else seg.push(c);
  }
  if (segments.length > 1 && segments[segments.length - 1].length === 0) segments.pop();
  return { segments, leadingStar, trailingStar };
}

function atomMatches(a: Atom, b: number): boolean {
  if (typeof a === "number") return a === b;
  if (a === "any") return true;
  let hit = false;
  for (let r = 0; r < a.ranges.length; r += 2) {
    if (b >= a.ranges[r] && b <= a.ranges[r + 1]) {
      hit = true;
      break;
    }
  }
  return hit !== a.negate;
}

function segmentAt(seg: Atom[], key: Uint8Array, at: number): boolean {
  for (let j = 0; j < seg.length; j++) if (!atomMatches(seg[j], key[at + j])) return false;
  return true;
}

/**
 * Compiles a key pattern (the text after `~` in an ACL rule).
 *
 * @example
 * ```ts
 * import { compileKeyPattern } from "./glob.ts";
 * const p = compileKeyPattern("app:*");
 * p.matches(new TextEncoder().encode("app:1")); // true
 * p.coversPrefix(new TextEncoder().encode("app:users:")); // true
 * ```
 */
export function compileKeyPattern(source: string): KeyPattern {
  const bytes = encoder.encode(source);
  const { segments, leadingStar, trailingStar } = parseSegments(bytes);
  const hasStar = leadingStar || trailingStar || segments.length > 1;
  const all = hasStar && segments.length === 1 && segments[0].length === 0;
  const matches = (key: Uint8Array, start = 0, end = key.length): boolean => {
    if (all) return true;
    const n = end - start;
    if (!hasStar) {
      const seg = segments[0];
      return seg.length === n && segmentAt(seg, key, start);
    }
    let lo = start;
    let hi = end;
    let first = 0;
    let last = segments.length;
    if (!leadingStar) {
      const seg = segments[0];
      if (seg.length > hi - lo || !segmentAt(seg, key, lo)) return false;
      lo += seg.length;
      first = 1;
    }
    if (!trailingStar && last > first) {
      const seg = segments[last - 1];
      if (seg.length > hi - lo || !segmentAt(seg, key, hi - seg.length)) return false;
      hi -= seg.length;
      last--;
    }
    for (let s = first; s < last; s++) {
      const seg = segments[s];
      let at = lo;
      while (at + seg.length <= hi && !segmentAt(seg, key, at)) at++;
      if (at + seg.length > hi) return false;
      lo = at + seg.length;
    }
    return true;
  };
  return {
    source,
    all,
    matches,
    coversPrefix: (prefix) => trailingStar && matches(prefix),
  };
}
