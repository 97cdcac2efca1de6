/**
 * Authentication and permissions: the ACL subset, key patterns and
 * passwords as units, then wire v1 against real servers on loopback.
 */
import assert from "node:assert/strict";
import { connect, EvkvError } from "../src/client/mod.ts";
import { KvMethod, Status } from "../src/protocol/constants.ts";
import { pb } from "../src/protocol/messages.ts";
import { buildAuthConfig, describeUser, parseAclFile } from "../src/auth/acl.ts";
import { compileKeyPattern } from "../src/auth/glob.ts";
import { digests, passwordMatches, sha256Hex } from "../src/auth/password.ts";
import { checkProtectedMode, isLoopback } from "../src/auth/protected_mode.ts";
import { serve, type ServeOptions } from "../mod.ts";
import { ACL } from "./security_support.ts";
import {
  ECHO_SERVICE,
  LAYOUTS,
  RawClient,
  type RawClient as RawClientType,
  utf8,
  withServer,
} from "./support.ts";

const auth = (user: string, password: string) =>
  pb.AuthRequest.encode({ user, password: utf8(password) }).finish();
const get = (key: string) => pb.GetRequest.encode({ key: utf8(key) }).finish();
const put = (key: string) => pb.PutRequest.encode({ key: utf8(key), value: utf8("v") }).finish();
const scan = (prefix: string) => pb.ScanRequest.encode({ prefix: utf8(prefix) }).finish();

function message(body: Uint8Array): string {
  return pb.Error.decode(body).message;
}

async function expectStatus(c: RawClientType, code: number, body: Uint8Array, status: number) {
  const r = await c.call(code, body);
  assert.equal(r.header.status, status, `code ${code}: ${r.header.status ? message(r.body) : ""}`);
  return r;
}

Deno.test("an ACL file line sets each rule the way Redis defines it", () => {
  const users = parseAclFile(ACL, "test.acl");
  assert.deepEqual([...users.keys()], ["default", "admin", "reader", "writer", "gone"]);
  const reader = users.get("reader")!;
  assert.equal(reader.enabled, true);
  assert.deepEqual(reader.hashes, [sha256Hex("reader-pw")]);
  assert.deepEqual(reader.patterns, ["app:*"]);
  assert.equal(reader.allKeys, false);
  assert.equal(reader.allCommands, false);
  assert.ok(reader.commands.includes("get") && reader.commands.includes("scan"));
  assert.ok(!reader.commands.includes("set") && !reader.commands.includes("info"));
  assert.equal(users.get("gone")!.enabled, false);
  const more = parseAclFile(
    "user u on nopass ~a* ~b* resetkeys ~c* +@all -set +acl|whoami #" + "ab".repeat(32),
    "x",
  ).get("u")!;
  assert.equal(more.nopass, false, "a #hash after nopass needs that password again");
  assert.deepEqual(more.patterns, ["c*"]);
  assert.equal(more.allCommands, false);
  assert.ok(!more.commands.includes("set") && more.commands.includes("get"));
  assert.equal(parseAclFile("user r on >p reset", "x").get("r")!.enabled, false);
});

Deno.test("a bad ACL file names the file, line and rule, and never the password", () => {
  assert.throws(() => parseAclFile("user a on >pw\nuser b on +nosuchcommand", "f.acl"), {
    message: /f\.acl, line 2, rule 2: .*unknown command 'nosuchcommand'/,
  });
  assert.throws(() => parseAclFile("user a on +@nosuch", "f.acl"), /unknown category/);
  assert.throws(() => parseAclFile("user a on\nuser a off", "f.acl"), /defined twice/);
  assert.throws(() => parseAclFile("requirepass x", "f.acl"), /line 1: expected 'user NAME/);
  // A password typed without its '>' is an unknown rule: the message must not repeat it.
  assert.throws(() => parseAclFile("user a on hunter2", "f.acl"), (e: Error) => {
    assert.ok(!e.message.includes("hunter2"), e.message);
    return /unknown rule/.test(e.message);
  });
  assert.throws(() => buildAuthConfig({ acl: "user default on >a", password: "b" }), /one place/);
});

Deno.test("ACL LIST's form of a user shows password hashes, not passwords", () => {
  const users = parseAclFile(ACL, "test.acl");
  const line = describeUser(users.get("reader")!);
  assert.equal(
    line,
    `user reader on #${sha256Hex("reader-pw")} ~app:* -@all +get +exists +mget +scan +dbsize`,
  );
  assert.ok(!line.includes("reader-pw"));
});

Deno.test("without a password or ACL file nothing is required; a password is requirepass", () => {
  assert.equal(buildAuthConfig({}).required, false);
  const c = buildAuthConfig({ password: "pw" });
  assert.equal(c.required, true);
  assert.deepEqual(c.users.map((u) => u.name), ["default"]);
  assert.equal(c.users[0].allCommands && c.users[0].allKeys, true);
  // Redis's rule: an ACL file without a default user leaves default open.
  assert.equal(buildAuthConfig({ acl: "user a on >p ~* +@all" }).required, false);
  assert.equal(buildAuthConfig({ acl: ACL }).required, true);
});

Deno.test("key patterns match like Redis's globs, in time linear in the key", () => {
  const cases: [string, string, boolean][] = [
    ["app:*", "app:1", true],
    ["app:*", "app:", true],
    ["app:*", "ap", false],
    ["app:*", "xapp:1", false],
    ["*", "", true],
    ["a?c", "abc", true],
    ["a?c", "ac", false],
    ["*a*b*", "xxaxxbxx", true],
    ["*a*b", "ba", false],
    ["h[ae]llo", "hello", true],
    ["h[^e]llo", "hello", false],
    ["h[a-b]llo", "hbllo", true],
    ["a*a", "a", false],
    ["a*a", "aa", true],
    ["\\*", "*", true],
    ["\\*", "a", false],
    ["user:?:*:x", "user:1:abc:x", true],
  ];
  for (const [p, k, want] of cases) {
    assert.equal(compileKeyPattern(p).matches(utf8(k)), want, `${p} vs ${k}`);
  }
  // The pattern that makes a backtracking matcher take exponential time:
  // here it is one pass per segment over a 1 KiB key.
  const evil = compileKeyPattern("*a*a*a*a*a*a*a*a*a*a*a*a*b");
  assert.equal(evil.matches(utf8("a".repeat(1024))), false);
});

Deno.test("a Scan prefix lies inside a pattern only when every key with it matches", () => {
  const p = compileKeyPattern("app:*");
  assert.equal(p.coversPrefix(utf8("app:")), true);
  assert.equal(p.coversPrefix(utf8("app:users:")), true);
  assert.equal(p.coversPrefix(utf8("app")), false);
  assert.equal(p.coversPrefix(utf8("")), false);
  assert.equal(compileKeyPattern("app:*:x").coversPrefix(utf8("app:1:x")), false);
  assert.equal(compileKeyPattern("*").coversPrefix(utf8("")), true);
});

Deno.test("passwords are compared as SHA-256 digests", () => {
  const stored = digests([sha256Hex("right"), sha256Hex("other")]);
  assert.equal(passwordMatches(stored, utf8("right")), true);
  assert.equal(passwordMatches(stored, utf8("other")), true);
  assert.equal(passwordMatches(stored, utf8("wrong")), false);
  assert.equal(passwordMatches([], utf8("")), false);
  // Redis's digest of the same password (ACL LIST on redis-server 7.0.15).
  assert.equal(sha256Hex("pw"), "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4");
});

Deno.test("protected mode refuses a non-loopback address with no password or ACL file", async () => {
  assert.ok(isLoopback("127.0.0.1") && isLoopback("::1") && isLoopback("[::1]"));
  assert.ok(isLoopback("localhost") && isLoopback("127.8.9.10"));
  assert.ok(!isLoopback("0.0.0.0") && !isLoopback("::") && !isLoopback("10.0.0.1"));
  assert.throws(() => checkProtectedMode("0.0.0.0", false, true), /--protected-mode no/);
  checkProtectedMode("0.0.0.0", true, true);
  checkProtectedMode("0.0.0.0", false, false);
  // serve() refuses before it opens any socket.
  await assert.rejects(() => serve({ host: "0.0.0.0", port: 0 }), /protected mode refuses/);
});

const AUTH_ON: ServeOptions = { auth: { acl: ACL, failureDelayMs: 0 } };

for (const layout of [LAYOUTS[0], LAYOUTS[3]]) {
  const opts = { ...layout.options, ...AUTH_ON };

  Deno.test(`wire v1 before Auth: only Ping and Auth run (${layout.name})`, async () => {
    await withServer(opts, async (server) => {
      using c = await RawClient.connect(server);
      const bodies: [number, Uint8Array][] = [
        [KvMethod.Get, get("app:1")],
        [KvMethod.Put, put("app:1")],
        [KvMethod.Delete, pb.DeleteRequest.encode({ key: utf8("app:1") }).finish()],
        [KvMethod.Scan, scan("app:")],
        [KvMethod.Stats, new Uint8Array(0)],
        [KvMethod.Incr, pb.IncrRequest.encode({ key: utf8("n"), delta: 1 }).finish()],
        [99, new Uint8Array(0)],
      ];
      for (const [code, body] of bodies) {
        const r = await expectStatus(c, code, body, Status.UNAUTHENTICATED);
        assert.match(message(r.body), /has not authenticated; send Auth first/);
      }
      const ping = await expectStatus(c, KvMethod.Ping, new Uint8Array(0), Status.OK);
      assert.equal(ping.header.code, KvMethod.Ping);
      // Nothing ran: the admin sees no key.
      await expectStatus(c, KvMethod.Auth, auth("admin", "admin-pw"), Status.OK);
      const g = await expectStatus(c, KvMethod.Get, get("app:1"), Status.OK);
      assert.equal(pb.GetReply.decode(g.body).found, false);
    });
  });

  Deno.test(`wire v1 Auth: wrong, right and disabled users (${layout.name})`, async () => {
    await withServer(opts, async (server) => {
      using c = await RawClient.connect(server);
      await expectStatus(c, KvMethod.Auth, auth("admin", "nope"), Status.UNAUTHENTICATED);
      await expectStatus(c, KvMethod.Auth, auth("nobody", "admin-pw"), Status.UNAUTHENTICATED);
      await expectStatus(c, KvMethod.Auth, auth("gone", "gone-pw"), Status.UNAUTHENTICATED);
      await expectStatus(c, KvMethod.Get, get("a"), Status.UNAUTHENTICATED);
      const ok = await expectStatus(c, KvMethod.Auth, auth("", "default-pw"), Status.OK);
      assert.equal(pb.AuthReply.decode(ok.body).user, "default");
      await expectStatus(c, KvMethod.Put, put("a"), Status.OK);
      // A failed Auth keeps the user the connection had.
      const bad = await expectStatus(c, KvMethod.Auth, auth("admin", "x"), Status.UNAUTHENTICATED);
      assert.doesNotMatch(message(bad.body), /x|admin-pw/);
      await expectStatus(c, KvMethod.Get, get("a"), Status.OK);
      const r = await expectStatus(c, KvMethod.Auth, auth("reader", "reader-pw"), Status.OK);
      assert.equal(pb.AuthReply.decode(r.body).user, "reader");
      assert.ok(server.stats().counters.auth_failures >= 4);
      assert.ok(server.stats().counters["errors.UNAUTHENTICATED"] >= 5);
    });
  });

  Deno.test(`wire v1: a read-only user on app:* (${layout.name})`, async () => {
    await withServer(opts, async (server) => {
      using admin = await RawClient.connect(server);
      await expectStatus(admin, KvMethod.Auth, auth("admin", "admin-pw"), Status.OK);
      await expectStatus(admin, KvMethod.Put, put("app:1"), Status.OK);
      await expectStatus(admin, KvMethod.Put, put("other"), Status.OK);
      using c = await RawClient.connect(server);
      await expectStatus(c, KvMethod.Auth, auth("reader", "reader-pw"), Status.OK);
      const g = await expectStatus(c, KvMethod.Get, get("app:1"), Status.OK);
      assert.equal(pb.GetReply.decode(g.body).found, true);
      const w = await expectStatus(c, KvMethod.Put, put("app:2"), Status.PERMISSION_DENIED);
      assert.match(message(w.body), /user 'reader' may not call Put/);
      await expectStatus(
        c,
        KvMethod.Delete,
        pb.DeleteRequest.encode({ key: utf8("app:1") }).finish(),
        Status.PERMISSION_DENIED,
      );
      await expectStatus(c, KvMethod.Stats, new Uint8Array(0), Status.PERMISSION_DENIED);
      const k = await expectStatus(c, KvMethod.Get, get("other"), Status.PERMISSION_DENIED);
      assert.match(message(k.body), /may not touch this key/);
      const s = await expectStatus(c, KvMethod.Scan, scan("app:"), Status.OK);
      assert.deepEqual(pb.ScanReply.decode(s.body).entries.map((e) => e.key?.length), [5]);
      for (const prefix of ["", "app", "oth"]) {
        const r = await expectStatus(c, KvMethod.Scan, scan(prefix), Status.PERMISSION_DENIED);
        assert.match(message(r.body), /may scan only prefixes inside its key patterns \(app:\*\)/);
      }
      // A writer may write inside its pattern and nowhere else.
      using wr = await RawClient.connect(server);
      await expectStatus(wr, KvMethod.Auth, auth("writer", "writer-pw"), Status.OK);
      await expectStatus(wr, KvMethod.Put, put("app:3"), Status.OK);
      await expectStatus(wr, KvMethod.Put, put("zzz"), Status.PERMISSION_DENIED);
      // The admin's keys are untouched by the refusals.
      const still = await expectStatus(admin, KvMethod.Get, get("app:1"), Status.OK);
      assert.equal(pb.GetReply.decode(still.body).found, true);
      assert.ok(server.stats().counters["errors.PERMISSION_DENIED"] >= 8);
    });
  });
}

Deno.test("a server with no password answers Auth as the spec says", async () => {
  await withServer({}, async (server) => {
    using c = await RawClient.connect(server);
    for (const body of [new Uint8Array(0), auth("default", ""), auth("", "")]) {
      const r = await expectStatus(c, KvMethod.Auth, body, Status.OK);
      assert.equal(pb.AuthReply.decode(r.body).user, "default");
    }
    await expectStatus(c, KvMethod.Auth, auth("", "pw"), Status.UNAUTHENTICATED);
    await expectStatus(c, KvMethod.Auth, auth("bob", ""), Status.UNAUTHENTICATED);
    await expectStatus(c, KvMethod.Auth, new Uint8Array([0xff]), Status.BAD_REQUEST);
    await expectStatus(c, KvMethod.Put, put("k"), Status.OK);
  });
});

Deno.test("after a failed Auth the connection's next request waits out the delay", async () => {
  // A delay far longer than the test: the pipelined Ping must not be answered meanwhile.
  await withServer({ auth: { password: "pw", failureDelayMs: 600_000 } }, async (server) => {
    using c = await RawClient.connect(server);
    const bad = c.frame(KvMethod.Auth, auth("", "guess"), { id: 1 });
    const ping = c.frame(KvMethod.Ping, new Uint8Array(0), { id: 2 });
    await c.send(new Uint8Array([...bad, ...ping]));
    const first = await c.read();
    assert.equal(first?.header.requestId, 1);
    assert.equal(first?.header.status, Status.UNAUTHENTICATED);
    await assert.rejects(() => c.read(500), /no complete frame within 500 ms/);
    // Other connections are not slowed.
    using other = await RawClient.connect(server);
    await expectStatus(other, KvMethod.Auth, auth("", "pw"), Status.OK);
  });
  await withServer({ auth: { password: "pw", failureDelayMs: 20 } }, async (server) => {
    using c = await RawClient.connect(server);
    const frames = [1, 2, 3].map((id) => c.frame(KvMethod.Auth, auth("", `g${id}`), { id }));
    await c.send(new Uint8Array(frames.flatMap((f) => [...f])));
    const replies = await c.readMany(3);
    assert.deepEqual(replies.map((r) => r.header.status), [10, 10, 10]);
    await expectStatus(c, KvMethod.Auth, auth("", "pw"), Status.OK);
    assert.equal(server.stats().counters.auth_failures, 3);
  });
});

Deno.test("connect({ user, password }) authenticates each connection it makes", async () => {
  await withServer(AUTH_ON, async (server) => {
    const port = server.addr.port;
    await assert.rejects(
      () => connect({ port, user: "admin", password: "wrong" }),
      (e: unknown) => e instanceof EvkvError && e.status === Status.UNAUTHENTICATED,
    );
    for (let i = 0; i < 2; i++) {
      // The second connect stands for a reconnect: it authenticates again.
      await using kv = await connect({ port, user: "writer", password: "writer-pw" });
      await kv.put(`app:${i}`, "v");
      await assert.rejects(
        () => kv.put("elsewhere", "v"),
        (e: unknown) => e instanceof EvkvError && e.status === Status.PERMISSION_DENIED,
      );
    }
    await using plain = await connect({ port });
    await assert.rejects(
      () => plain.get("app:0"),
      (e: unknown) => e instanceof EvkvError && e.status === Status.UNAUTHENTICATED,
    );
    assert.equal(await plain.auth("", "default-pw"), "default");
    assert.ok(await plain.get("app:1"));
  });
});

Deno.test("another service gets no guard unless auth is configured for it", async () => {
  await withServer({ service: ECHO_SERVICE }, async (server) => {
    using c = await RawClient.connect(server);
    await expectStatus(c, KvMethod.Auth, auth("", ""), Status.UNKNOWN_METHOD);
  });
  await withServer({ service: ECHO_SERVICE, auth: { password: "pw" } }, async (server) => {
    using c = await RawClient.connect(server);
    await expectStatus(c, 2, new Uint8Array(0), Status.UNAUTHENTICATED);
    await expectStatus(c, KvMethod.Auth, auth("", "pw"), Status.OK);
  });
});
