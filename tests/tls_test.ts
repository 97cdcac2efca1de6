/**
 * TLS on both ports, with certificates made by openssl for this run: the
 * client library, redis-cli --tls, a plain-TCP frame on a TLS port, a
 * client that trusts another CA, and client certificates.
 */
import assert from "node:assert/strict";
import { connect, EvkvError } from "../src/client/mod.ts";
import { KvMethod, Status } from "../mod.ts";
import { encodeFrame } from "../src/protocol/frame.ts";
import { LAYOUTS, withServer } from "./support.ts";
import {
  makeCerts,
  NO_OPENSSL,
  NO_REDIS_CLI,
  redisCli,
  removeCerts,
  type TestCerts,
} from "./security_support.ts";

let certs: TestCerts | null = null;
/** One set of certificates for the whole file (made on first use). */
function getCerts(): TestCerts {
  return certs ??= makeCerts();
}

globalThis.addEventListener("unload", () => {
  if (certs) removeCerts(certs);
});

const tlsOptions = () => ({ cert: getCerts().cert, key: getCerts().key });

for (const layout of [LAYOUTS[0], LAYOUTS[3]]) {
  Deno.test({
    name: `TLS: the client library and redis-cli --tls work on both ports (${layout.name})`,
    ignore: NO_OPENSSL || NO_REDIS_CLI,
    fn: () =>
      withServer({ ...layout.options, respPort: 0, tls: tlsOptions() }, async (server) => {
        const c = getCerts();
        await using kv = await connect({ port: server.addr.port, tls: { caCerts: [c.ca] } });
        await kv.put("greeting", "hello over TLS");
        const tls = ["--tls", "--cacert", c.caFile];
        const got = await redisCli(server.addr.respPort!, [...tls, "GET", "greeting"]);
        assert.equal(got.out, "hello over TLS");
        assert.equal((await redisCli(server.addr.respPort!, [...tls, "SET", "r", "1"])).out, "OK");
        assert.equal(new TextDecoder().decode(await kv.get("r")), "1");
      }),
  });
}

Deno.test({
  name: "TLS: a plain-TCP frame on a TLS port gets no reply and the connection ends",
  ignore: NO_OPENSSL,
  fn: () =>
    withServer({ ...LAYOUTS[0].options, respPort: 0, tls: tlsOptions() }, async (server) => {
      for (const port of [server.addr.port, server.addr.respPort!]) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        const ping = encodeFrame(
          { flags: 0, code: KvMethod.Ping, requestId: 1, status: 0, timeoutMs: 0 },
          new Uint8Array(0),
        );
        await conn.write(port === server.addr.port ? ping : new TextEncoder().encode("PING\r\n"));
        const got: number[] = [];
        const buf = new Uint8Array(1024);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          got.push(...buf.subarray(0, n));
        }
        conn.close();
        // At most a TLS alert record (content type 21), never a frame or a RESP reply.
        assert.ok(got.length === 0 || got[0] === 21, `unexpected bytes ${got.slice(0, 8)}`);
        assert.ok(!new TextDecoder().decode(new Uint8Array(got)).includes("PONG"));
      }
      assert.equal(server.stats().counters.requests, 0);
    }),
});

Deno.test({
  name: "TLS: a client that trusts another CA refuses the server",
  ignore: NO_OPENSSL || NO_REDIS_CLI,
  fn: () =>
    withServer({ ...LAYOUTS[0].options, respPort: 0, tls: tlsOptions() }, async (server) => {
      const c = getCerts();
      await assert.rejects(
        () => connect({ port: server.addr.port, tls: { caCerts: [c.otherCa] } }),
        /invalid peer certificate|UnknownIssuer|certificate/i,
      );
      const r = await redisCli(server.addr.respPort!, ["--tls", "--cacert", c.otherCaFile, "PING"]);
      assert.doesNotMatch(r.out, /PONG/);
      assert.match(r.out, /certificate verify failed|SSL/i);
      assert.equal(server.stats().counters.requests, 0);
    }),
});

Deno.test({
  name: "TLS client auth: a client without a certificate from the CA is refused",
  ignore: NO_OPENSSL || NO_REDIS_CLI,
  fn: async () => {
    const c = getCerts();
    const tls = { ...tlsOptions(), ca: c.ca, clientAuth: true };
    await withServer({ ...LAYOUTS[0].options, respPort: 0, tls }, async (server) => {
      const port = server.addr.port;
      await assert.rejects(async () => {
        await using kv = await connect({ port, tls: { caCerts: [c.ca] } });
        await kv.ping();
      });
      await using kv = await connect({
        port,
        tls: { caCerts: [c.ca], cert: c.clientCert, key: c.clientKey },
      });
      await kv.put("mtls", "yes");
      const withCert = ["--tls", "--cacert", c.caFile, "--cert", c.clientCertFile];
      const r = await redisCli(server.addr.respPort!, [
        ...withCert,
        "--key",
        c.clientKeyFile,
        "GET",
        "mtls",
      ]);
      assert.equal(r.out, "yes");
      const without = await redisCli(server.addr.respPort!, [
        "--tls",
        "--cacert",
        c.caFile,
        "GET",
        "mtls",
      ]);
      assert.doesNotMatch(without.out, /yes/);
    });
  },
});

Deno.test({
  name: "TLS and a password together: the client authenticates inside TLS",
  ignore: NO_OPENSSL,
  fn: () =>
    withServer(
      { ...LAYOUTS[0].options, tls: tlsOptions(), auth: { password: "pw", failureDelayMs: 0 } },
      async (server) => {
        const tls = { caCerts: [getCerts().ca] };
        await assert.rejects(
          () => connect({ port: server.addr.port, tls, password: "nope" }),
          (e: unknown) => e instanceof EvkvError && e.status === Status.UNAUTHENTICATED,
        );
        await using kv = await connect({ port: server.addr.port, tls, password: "pw" });
        await kv.put("k", "v");
        assert.ok(await kv.get("k"));
      },
    ),
});

Deno.test({
  name: "TLS: every IO worker listens on the port itself (SO_REUSEPORT) and gets connections",
  ignore: NO_OPENSSL,
  fn: () =>
    withServer({ ...LAYOUTS[0].options, tls: tlsOptions() }, async (server) => {
      const tls = { caCerts: [getCerts().ca] };
      // 16 connections all landing on one of two workers by chance: about 1 in 30,000.
      const clients = await Promise.all(
        Array.from({ length: 16 }, () => connect({ port: server.addr.port, tls })),
      );
      try {
        await Promise.all(clients.map((c) => c.ping()));
        const perWorker = [...server.dump().matchAll(/io worker (\d+): connections (\d+)/g)]
          .map((m) => Number(m[2]));
        assert.equal(perWorker.length, 2);
        assert.ok(perWorker.every((n) => n > 0), `connections per IO worker: ${perWorker}`);
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    }),
});
