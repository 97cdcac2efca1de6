/**
 * Password hashes: users keep only the SHA-256 of their passwords (as Redis
 * does), and a password is checked by hashing it and comparing the digests
 * in constant time, so neither the stored secret nor the time taken tells
 * an attacker how close a guess came.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";

/**
 * The SHA-256 of `password` as 64 lower-case hex digits (the `#...` form
 * of an ACL rule).
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./password.ts";
 * sha256Hex("secret").length; // 64
 * ```
 */
export function sha256Hex(password: string | Uint8Array): string {
  return createHash("sha256").update(password).digest("hex");
}

/** True for a well-formed `#hash` body: 64 hex digits. */
export function isSha256Hex(text: string): boolean {
  return /^[0-9a-fA-F]{64}$/.test(text);
}

/** Raw digests of `hexes`, ready for {@link passwordMatches}. */
export function digests(hexes: readonly string[]): Uint8Array[] {
  return hexes.map((h) => Uint8Array.from(h.match(/../g)!, (b) => parseInt(b, 16)));
}

/** A digest no password hashes to in practice; compared against for unknown users. */
const DUMMY = new Uint8Array(32);

/**
 * True when `password` hashes to one of `stored`. Every stored digest is
 * compared, each in constant time, and an empty list still costs one
 * comparison, so the time depends only on how many passwords the user has.
 *
 * @example
 * ```ts
 * import { digests, passwordMatches, sha256Hex } from "./password.ts";
 * passwordMatches(digests([sha256Hex("pw")]), new TextEncoder().encode("pw")); // true
 * ```
 */
export function passwordMatches(stored: readonly Uint8Array[], password: Uint8Array): boolean {
  const digest = createHash("sha256").update(password).digest();
  let ok = false;
  if (stored.length === 0) timingSafeEqual(digest, DUMMY);
  for (const s of stored) if (timingSafeEqual(digest, s)) ok = true;
  return ok;
}
