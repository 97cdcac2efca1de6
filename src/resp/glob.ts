/**
 * Redis-style glob patterns for `SCAN MATCH`, over binary keys.
 *
 * @module
 */
import { keyToString } from "../kv/store.ts";

/** A compiled pattern: the literal prefix to scan from, and a matcher. */
export interface Glob {
  /** Bytes every match starts with: the store scans only this range. */
  prefix: Uint8Array;
  /** True when the key matches the whole pattern. */
  matches(key: Uint8Array): boolean;
  /** True when every key with the prefix matches (pattern is `prefix*`). */
  prefixOnly: boolean;
}

/**
 * Compiles `pattern` (`*`, `?`, `[abc]`, `[^a-z]`, `\x` escapes).
 *
 * @example
 * ```ts
 * import { compileGlob } from "./glob.ts";
 * const g = compileGlob(new TextEncoder().encode("user:*"));
 * g.matches(new TextEncoder().encode("user:7")); // true
 * ```
 */
export function compileGlob(pattern: Uint8Array): Glob {
  const p = keyToString(pattern);
  let prefix = "";
  let i = 0;
  for (; i < p.length; i++) {
    const c = p[i];
    if (c === "*" || c === "?" || c === "[") break;
    if (c === "\\" && i + 1 < p.length) {
      prefix += p[++i];
      continue;
    }
    prefix += c;
  }
  const prefixOnly = i === p.length || (i === p.length - 1 && p[i] === "*");
  let re = "";
  for (let j = 0; j < p.length; j++) {
    const c = p[j];
    if (c === "*") re += "[\\s\\S]*";
    else if (c === "?") re += "[\\s\\S]";
    else if (c === "[") {
      const close = p.indexOf("]", j + 1);
      if (close < 0) {
        re += "\\[";
        continue;
      }
      let body = p.slice(j + 1, close).replace(/\\/g, "\\\\").replace(/]/g, "\\]");
      if (body.startsWith("^")) body = "^" + body.slice(1);
      re += `[${body}]`;
      j = close;
    } else if (c === "\\" && j + 1 < p.length) {
      re += escapeRe(p[++j]);
    } else re += escapeRe(c);
  }
  const regex = new RegExp(`^${re}$`);
  const prefixBytes = Uint8Array.from(prefix, (ch) => ch.charCodeAt(0));
  return {
    prefix: prefixBytes,
    prefixOnly,
    matches: prefixOnly ? () => true : (key) => regex.test(keyToString(key)),
  };
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/-]/.test(c) ? `\\${c}` : c;
}
