/**
 * The security flags through the real `deno task serve` entry and
 * `kvclient`: protected mode, --password-file, EVKV_PASSWORD, --tls-cert,
 * and no password in logs, INFO, Stats, dumps or error messages.
 */
import assert from "node:assert/strict";
import { main as kvclient } from "../src/client/cli.ts";
import { text } from "./support.ts";
import {
  makeCerts,
  NO_OPENSSL,
  NO_REDIS_CLI,
  redisCli,
  removeCerts,
  type TestCerts,
} from "./security_support.ts";

const CLI = new URL("../src/kvserver/cli.ts", import.meta.url).pathname;
const PERMS = ["--unstable-net", "--allow-net", "--allow-read", "--allow-env=EVKV_PASSWORD"];
const SECRET = "correct-horse-battery-staple";
const GUESS = "tr0ub4dor-and-3";

/** Writes `content` to a file in a fresh temporary directory (through sh: the test task cannot write). */
async function writeTemp(name: string, content: string): Promise<string> {
  const child = new Deno.Command("sh", {
    args: ["-c", `d=$(mktemp -d -t evkv-sec-XXXXXX) && cat > "$d/${name}" && echo "$d/${name}"`],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(content));
  await w.close();
  const out = await child.output();
  assert.ok(out.success);
  return text(out.stdout).trim();
}

interface Running {
  child: Deno.ChildProcess;
  port: number;
  respPort: number;
  startLine: string;
  output: Promise<string>;
}

async function start(flags: string[], env: Record<string, string> = {}): Promise<Running> {
  const child = new Deno.Command(Deno.execPath(), {
    // Memory only: these tests are about access, and servers that persist by default would
    // need write access and a data dir each.
    args: ["run", ...PERMS, CLI, "--port", "0", "--resp-port", "0", "--persist", "off", ...flags],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  const re = /listening on [^:]+:(\d+), RESP on (\d+)[^\n]*\n/;
  while (!re.test(seen)) {
    const { value, done } = await reader.read();
    assert.ok(!done, `server exited before listening: ${seen}`);
    seen += decoder.decode(value, { stream: true });
  }
  const m = re.exec(seen)!;
  const rest = (async () => {
    let all = seen;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return all;
      all += decoder.decode(value, { stream: true });
    }
  })();
  const stderr = new Response(child.stderr).text();
  const output = Promise.all([rest, stderr]).then(([o, e]) => o + e);
  return { child, port: Number(m[1]), respPort: Number(m[2]), startLine: m[0], output };
}

/** Kills a server a failed test left running (a no-op once it exited). */
function kill(r: Running): void {
  try {
    r.child.kill("SIGKILL");
  } catch {
    // Already exited.
  }
}

function removeTemp(...files: string[]): void {
  const dirs = files.map((f) => `"$(dirname '${f}')"`).join(" ");
  new Deno.Command("sh", { args: ["-c", `rm -rf ${dirs}`] }).outputSync();
}

async function stop(r: Running): Promise<string> {
  r.child.kill("SIGTERM");
  const status = await r.child.status;
  const out = await r.output;
  assert.equal(status.code, 0, out);
  return out;
}

Deno.test("protected mode: a non-loopback --host with no password refuses to start, in one line", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, CLI, "--host", "0.0.0.0", "--port", "0"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  const err = text(out.stderr).trim();
  assert.equal(err.split("\n").length, 1, err);
  assert.match(err, /^evkv: Start server: protected mode refuses to listen on 0\.0\.0\.0/);
  assert.match(err, /--password-file FILE \(or EVKV_PASSWORD\) or --acl-file FILE/);
  assert.match(err, /--protected-mode no$/);
  assert.equal(text(out.stdout), "");
});

Deno.test({
  name: "--password-file: clients must authenticate, and the password shows up nowhere",
  ignore: NO_REDIS_CLI,
  fn: async () => {
    const file = await writeTemp("password", `${SECRET}\n`);
    const wrong = await writeTemp("wrong", `${GUESS}\n`);
    const r = await start(["--password-file", file]);
    try {
      assert.match(r.startLine, /auth required\)/);
      const port = String(r.port);
      assert.equal(await kvclient(["--port", port, "put", "k", "v"]), 1);
      assert.equal(await kvclient(["--port", port, "--password-file", wrong, "get", "k"]), 1);
      assert.equal(await kvclient(["--port", port, "--password-file", file, "put", "k", "v"]), 0);
      assert.equal(
        await kvclient(["--port", port, "--user", "default", "--password-file", file, "get", "k"]),
        0,
      );
      const bad = await redisCli(r.respPort, ["--user", "default", "--pass", GUESS, "GET", "k"]);
      assert.match(bad.out, /WRONGPASS/);
      const pass = ["--pass", SECRET, "--no-auth-warning"];
      const info = await redisCli(r.respPort, [...pass, "INFO"]);
      assert.match(info.out, /auth_failures:[1-9]/);
      const stats = await redisCli(r.respPort, [...pass, "ACL", "LIST"]);
      assert.match(stats.out, /^user default on #[0-9a-f]{64} ~\* \+@all$/);
      for (const shown of [info.out, stats.out]) {
        assert.ok(!shown.includes(SECRET) && !shown.includes(GUESS));
      }
      r.child.kill("SIGUSR2");
      const out = await stop(r);
      assert.match(out, /authentication failed for user 'default' from 127\.0\.0\.1:\d+/);
      assert.match(out, /==== evkv resources/);
      assert.ok(!out.includes(SECRET), "the password is in the server's output");
      assert.ok(!out.includes(GUESS), "a guessed password is in the server's output");
    } finally {
      kill(r);
      await r.child.status;
      removeTemp(file, wrong);
    }
  },
});

Deno.test({
  name: "EVKV_PASSWORD sets the default user's password when no file is given",
  ignore: NO_REDIS_CLI,
  fn: async () => {
    const r = await start([], { EVKV_PASSWORD: SECRET });
    try {
      assert.match(r.startLine, /auth required\)/);
      assert.equal(
        (await redisCli(r.respPort, ["GET", "k"])).out,
        "NOAUTH Authentication required.",
      );
      const ok = await redisCli(r.respPort, [
        "--pass",
        SECRET,
        "--no-auth-warning",
        "SET",
        "k",
        "v",
      ]);
      assert.equal(ok.out, "OK");
      const out = await stop(r);
      assert.ok(!out.includes(SECRET));
    } finally {
      kill(r);
      await r.child.status;
    }
  },
});

Deno.test({
  name: "kvclient --tls --ca and --password-file against --tls-cert --tls-key --acl-file",
  ignore: NO_OPENSSL || NO_REDIS_CLI,
  fn: async () => {
    const certs: TestCerts = makeCerts();
    const acl = await writeTemp(
      "users.acl",
      "user default off\nuser app on >app-pw ~app:* +@all\n",
    );
    const pw = await writeTemp("app.pw", "app-pw");
    const r = await start([
      "--tls-cert",
      certs.certFile,
      "--tls-key",
      certs.keyFile,
      "--acl-file",
      acl,
    ]);
    try {
      assert.match(r.startLine, /TLS only, auth required\)/);
      const base = ["--port", String(r.port), "--tls", "--ca", certs.caFile];
      const as = ["--user", "app", "--password-file", pw];
      assert.equal(await kvclient([...base, ...as, "put", "app:1", "v"]), 0);
      assert.equal(await kvclient([...base, ...as, "put", "other", "v"]), 1);
      assert.equal(await kvclient([...base, "get", "app:1"]), 1);
      // Without --tls the handshake never happens: the call fails.
      assert.equal(await kvclient(["--port", String(r.port), "--timeout", "2000", "ping"]), 1);
      const cli = await redisCli(r.respPort, [
        "--tls",
        "--cacert",
        certs.caFile,
        "--user",
        "app",
        "--pass",
        "app-pw",
        "--no-auth-warning",
        "GET",
        "app:1",
      ]);
      assert.equal(cli.out, "v");
      await stop(r);
    } finally {
      kill(r);
      await r.child.status;
      removeCerts(certs);
      removeTemp(acl, pw);
    }
  },
});

Deno.test("a bad ACL file stops the start with its line, and never echoes a password", async () => {
  const acl = await writeTemp("bad.acl", "user ok on >fine ~* +@all\nuser typo on hunter2 ~*\n");
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMS, CLI, "--port", "0", "--acl-file", acl],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 1);
    const err = text(out.stderr);
    assert.match(err, /bad\.acl, line 2, rule 2: unknown rule/);
    assert.ok(!err.includes("hunter2"));
  } finally {
    removeTemp(acl);
  }
});
