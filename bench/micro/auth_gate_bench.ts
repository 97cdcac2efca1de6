/**
 * What the auth gate adds to a wire v1 frame's dispatch: the plain
 * codec's dispatch of a Get (CRC check, header reads, the call), which is
 * all a server with no password runs, against the gated codec of a server
 * with passwords, for a user without limits and for one with limits (the
 * full gate: method and key pattern, and the CRC twice).
 *
 * Run: `deno bench bench/micro/auth_gate_bench.ts`
 *
 * @module
 */
import { KvMethod, pb } from "../../mod.ts";
import { encodeFrame } from "../../src/protocol/frame.ts";
import { buildAuthConfig } from "../../src/auth/acl.ts";
import { Guard } from "../../src/auth/guard.ts";
import type { Dispatcher } from "../../src/server/io/connection.ts";
import { Connection, type ConnectionOwner } from "../../src/server/io/connection.ts";
import { wireCodec } from "../../src/server/io/wire_codec.ts";
import { guardedWireCodec } from "../../src/auth/wire_gate.ts";
import { DEFAULT_LIMITS } from "../../src/server/limits.ts";
import type { Transport } from "../../src/server/io/transport.ts";
import { createStatsMemory, StatsBlock } from "../../src/stats/resources.ts";

const stats = new StatsBlock(createStatsMemory(1), 0);
let calls = 0;
const dispatcher = {
  stats,
  call() {
    calls++;
  },
  reject() {
    calls--;
  },
  prefetchBatch: null,
  prefetch() {},
} as unknown as Dispatcher;
const owner = {
  stats,
  maxBody: 1 << 22,
  limits: DEFAULT_LIMITS,
  overloaded: () => false,
  waitForWorker() {},
  dispatcher,
  dirty: [],
  endOfBatch() {},
  closed() {},
} as unknown as ConnectionOwner;
const transport: Transport = {
  read: () => new Promise(() => {}),
  write: (p) => Promise.resolve(p.length),
  close() {},
};
const info = { id: 1, ioWorker: 0, remote: "bench" };

const frame = encodeFrame(
  { flags: 0, code: KvMethod.Get, requestId: 1, status: 0, timeoutMs: 0 },
  pb.GetRequest.encode({ key: new TextEncoder().encode("app:user:12345") }).finish(),
);

const plain = new Connection(owner, transport, info, wireCodec);
const guard = new Guard(
  buildAuthConfig({ acl: "user r on >pw ~app:* +@read\nuser a on >pw ~* +@all" }),
  stats,
);
const admin = new Connection(owner, transport, info, guardedWireCodec);
admin.auth = guard.open(admin);
admin.auth.succeed(guard.users.get("a")!);
const limited = new Connection(owner, transport, info, guardedWireCodec);
limited.auth = guard.open(limited);
limited.auth.succeed(guard.users.get("r")!);

for (
  const [name, conn, baseline] of [
    ["no password: the plain codec", plain, true],
    ["gated codec, a user without limits", admin, false],
    ["gated codec, a user with limits (~app:* +@read)", limited, false],
  ] as const
) {
  Deno.bench({
    name,
    group: "dispatch one Get frame",
    baseline,
    fn() {
      // Each connection's own codec: the plain one, or the gated one.
      conn.codec.take(conn, frame, 0, frame.length, 1 << 22, dispatcher);
      conn.packetBytes = 0;
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (calls < 0) console.log(calls);
});
