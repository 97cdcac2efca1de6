/**
 * Turns the security flags of `deno task serve` into {@link ServerOptions}:
 * reads the password, ACL, certificate and key files (and the password
 * from the environment), so that no secret ever sits on a command line.
 *
 * @module
 */
import type { ServerOptions } from "../server/main/server.ts";

/**
 * The environment variable that may hold the default user's password.
 *
 * @example
 * ```ts
 * import { PASSWORD_ENV } from "@evkv/evkv";
 * console.log(PASSWORD_ENV); // "EVKV_PASSWORD"
 * ```
 */
export const PASSWORD_ENV = "EVKV_PASSWORD";

/**
 * Security flags as given (file names, not contents).
 *
 * @example
 * ```ts
 * import { loadSecurity, type SecurityFlags } from "@evkv/evkv";
 * const flags: SecurityFlags = { protectedMode: true };
 * loadSecurity(flags).protectedMode; // true
 * ```
 */
export interface SecurityFlags {
  /** `--password-file FILE`. */
  passwordFile?: string;
  /** `--acl-file FILE`. */
  aclFile?: string;
  /** `--tls-cert FILE`. */
  tlsCert?: string;
  /** `--tls-key FILE`. */
  tlsKey?: string;
  /** `--tls-ca FILE`. */
  tlsCa?: string;
  /** `--tls-client-auth`. */
  tlsClientAuth?: boolean;
  /** `--protected-mode yes|no`. */
  protectedMode?: boolean;
}

function readFile(what: string, path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`Read ${what} ${path}: ${(e as Error).message}`);
  }
}

/**
 * A password file's content without its final line break (editors add one).
 *
 * @example
 * ```ts
 * import { passwordFromFile } from "./load.ts";
 * passwordFromFile("s3cret\n"); // "s3cret"
 * ```
 */
export function passwordFromFile(text: string): string {
  return text.replace(/\r?\n$/, "");
}

/** The password in {@link PASSWORD_ENV}, when readable and set. */
function passwordFromEnv(): string | undefined {
  const p = Deno.permissions.querySync({ name: "env", variable: PASSWORD_ENV });
  if (p.state !== "granted") return undefined;
  const v = Deno.env.get(PASSWORD_ENV);
  return v === undefined || v === "" ? undefined : v;
}

/**
 * The options the security flags stand for. Throws an Error naming the
 * flag or file at fault (never a secret).
 *
 * @example
 * ```ts
 * import { loadSecurity } from "./load.ts";
 * loadSecurity({}).auth; // {} unless EVKV_PASSWORD is set and readable
 * ```
 */
export function loadSecurity(
  f: SecurityFlags,
): Pick<ServerOptions, "auth" | "tls" | "protectedMode"> {
  const password = f.passwordFile !== undefined
    ? passwordFromFile(readFile("password file", f.passwordFile))
    : passwordFromEnv();
  const acl = f.aclFile === undefined ? undefined : readFile("ACL file", f.aclFile);
  if ((f.tlsCert === undefined) !== (f.tlsKey === undefined)) {
    throw new Error("Parse flags: --tls-cert and --tls-key go together");
  }
  if ((f.tlsCa !== undefined || f.tlsClientAuth) && f.tlsCert === undefined) {
    throw new Error("Parse flags: --tls-ca and --tls-client-auth need --tls-cert and --tls-key");
  }
  if (f.tlsClientAuth && f.tlsCa === undefined) {
    throw new Error("Parse flags: --tls-client-auth needs --tls-ca FILE");
  }
  const tls = f.tlsCert === undefined ? undefined : {
    cert: readFile("TLS certificate", f.tlsCert),
    key: readFile("TLS key", f.tlsKey!),
    ca: f.tlsCa === undefined ? undefined : readFile("TLS CA file", f.tlsCa),
    clientAuth: f.tlsClientAuth ?? false,
  };
  return {
    auth: { password, acl, aclSource: f.aclFile },
    tls,
    protectedMode: f.protectedMode,
  };
}
