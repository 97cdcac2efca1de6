/**
 * Protected mode, Redis's rule: a server that listens beyond loopback with
 * no password and no ACL file would let anyone who can reach it read and
 * write everything, so it refuses to start unless told `--protected-mode no`.
 *
 * @module
 */

/**
 * True for addresses only this machine can reach: 127.0.0.0/8, ::1 and
 * `localhost`.
 *
 * @example
 * ```ts
 * import { isLoopback } from "./protected_mode.ts";
 * isLoopback("127.0.0.1"); // true
 * isLoopback("0.0.0.0"); // false
 * ```
 */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Throws an Error whose message is one line saying how to fix it when
 * protected mode forbids this start.
 *
 * @example
 * ```ts
 * import { checkProtectedMode } from "./protected_mode.ts";
 * checkProtectedMode("127.0.0.1", false, true); // fine: loopback
 * ```
 */
export function checkProtectedMode(host: string, authConfigured: boolean, enabled: boolean): void {
  if (!enabled || authConfigured || isLoopback(host)) return;
  throw new Error(
    `Start server: protected mode refuses to listen on ${host} with no password and no ACL ` +
      "file; set one with --password-file FILE (or EVKV_PASSWORD) or --acl-file FILE, " +
      "listen on 127.0.0.1, or pass --protected-mode no",
  );
}
