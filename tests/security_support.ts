/**
 * Helpers of the security tests: certificates made with openssl at test
 * time (never committed), and redis-cli runs.
 */
import assert from "node:assert/strict";
import { text } from "./support.ts";
import { have } from "../bench/resp.ts";

/** CI installs the tools, so there a missing tool fails instead of skipping. */
export const NO_REDIS_CLI = !have("redis-cli") && Deno.env.get("CI") !== "true";
/** See {@link NO_REDIS_CLI}. */
export const NO_OPENSSL = !have("openssl") && Deno.env.get("CI") !== "true";

/** PEM files of a throw-away CA, a server certificate for 127.0.0.1 and a client certificate. */
export interface TestCerts {
  dir: string;
  caFile: string;
  ca: string;
  certFile: string;
  cert: string;
  keyFile: string;
  key: string;
  clientCertFile: string;
  clientCert: string;
  clientKeyFile: string;
  clientKey: string;
  /** A second CA that signed nothing here: clients trusting it must refuse the server. */
  otherCa: string;
  otherCaFile: string;
}

function openssl(dir: string, args: string[]): void {
  const out = new Deno.Command("openssl", { args, cwd: dir, stdout: "piped", stderr: "piped" })
    .outputSync();
  assert.ok(out.success, `openssl ${args[0]} failed: ${text(out.stderr)}`);
}

/** Runs `sh -c script`; the test task has no write permission, its children do. */
function sh(script: string): string {
  const out = new Deno.Command("sh", { args: ["-c", script], stdout: "piped", stderr: "piped" })
    .outputSync();
  assert.ok(out.success, `sh ${script} failed: ${text(out.stderr)}`);
  return text(out.stdout).trim();
}

/** Removes a directory made by {@link makeCerts}. */
export function removeCerts(c: TestCerts): void {
  sh(`rm -rf '${c.dir}'`);
}

/** Makes fresh certificates in a temporary directory (remove it with {@link removeCerts}). */
export function makeCerts(): TestCerts {
  const dir = sh("mktemp -d -t evkv-certs-XXXXXX");
  const subj = (cn: string) => ["-subj", `/CN=${cn}`];
  for (const ca of ["ca", "other-ca"]) {
    openssl(dir, [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-keyout",
      `${ca}.key`,
      "-out",
      `${ca}.crt`,
      ...subj(`evkv test ${ca}`),
    ]);
  }
  sh(`cd '${dir}' && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext`);
  sh(
    `cd '${dir}' && printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' > client.ext`,
  );
  for (const who of ["server", "client"]) {
    openssl(dir, [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${who}.key`,
      "-out",
      `${who}.csr`,
      ...subj(who === "server" ? "localhost" : "evkv test client"),
    ]);
    openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${who}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-out",
      `${who}.crt`,
      "-extfile",
      `${who}.ext`,
    ]);
  }
  const read = (f: string) => Deno.readTextFileSync(`${dir}/${f}`);
  return {
    dir,
    caFile: `${dir}/ca.crt`,
    ca: read("ca.crt"),
    certFile: `${dir}/server.crt`,
    cert: read("server.crt"),
    keyFile: `${dir}/server.key`,
    key: read("server.key"),
    clientCertFile: `${dir}/client.crt`,
    clientCert: read("client.crt"),
    clientKeyFile: `${dir}/client.key`,
    clientKey: read("client.key"),
    otherCaFile: `${dir}/other-ca.crt`,
    otherCa: read("other-ca.crt"),
  };
}

/** Runs redis-cli with `args` (and `stdin`); stdout and stderr together, trimmed. */
export async function redisCli(
  port: number,
  args: string[],
  stdin?: string,
): Promise<{ ok: boolean; out: string }> {
  const child = new Deno.Command("redis-cli", {
    args: ["-h", "127.0.0.1", "-p", String(port), ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  return { ok: out.success, out: (text(out.stdout) + text(out.stderr)).trim() };
}

/** redis-cli's answers to `lines`, one command per line, as a list of answers. */
export async function redisScript(port: number, lines: string[], args: string[] = []) {
  const r = await redisCli(port, args, lines.join("\n") + "\n");
  return r.out.split(/\n+/).map((l) => l.trim());
}

/** The ACL file of these tests: an admin, a read-only user on app:*, a disabled one. */
export const ACL = [
  "# comments and blank lines are skipped",
  "",
  "user default on >default-pw ~* +@all",
  "user admin on >admin-pw allkeys +@all",
  "user reader on >reader-pw ~app:* resetchannels -@all +@read",
  "user writer on >writer-pw ~app:* -@all +@write +@read",
  "user gone off >gone-pw ~* +@all",
].join("\n");
