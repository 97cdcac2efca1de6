/**
 * What the auth checks add to a wire v1 frame's dispatch when auth is off:
 * the native codec's dispatch of a Get (CRC check, header reads, the call)
 * on a connection with no guard, against one with the open default user's
 * guard (what every KV connection has when no password is set), against
 * a restricted user's (the full gate: method and key pattern).
 *
 * Run: `deno bench bench/micro/auth_gate_bench.ts`
 *
 * @module
 */
import { encodeFrame, KvMethod, pb } from "../../mod.ts";
import { buildAuthConfig } from "../../src/auth/acl.ts";
import { Guard } from "../../src/auth/guard.ts";
import type { CallSite } from "../../src/server/codec.ts";
import { Connection, type ConnectionOwner } from "../../src/server/connection.ts";
import { nativeCodec } from "../../src/server/native_codec.ts";
import { DEFAULT_LIMITS } from "../../src/server/limits.ts";
import type { Transport } from "../../src/server/transport.ts";
import { createStatsMemory, StatsBlock } from "../../src/stats/resources.ts";

const stats = new StatsBlock(createStatsMemory(1), 0);
let calls = 0;
const site = {
  call() {
    calls++;
  },
  reject() {
    calls--;
  },
  prefetchBatch: null,
  prefetch() {},
} as unknown as CallSite;
const owner = {
  stats,
  maxBody: 1 << 22,
  limits: DEFAULT_LIMITS,
  overloaded: () => false,
  waitForWorker() {},
  site,
  endOfBatch() {},
  markDirty() {},
  closed() {},
} as unknown as ConnectionOwner;
const transport: Transport = {
  read: () => new Promise(() => {}),
  write: async (p) => p.length,
  close() {},
};
const info = { id: 1, ioWorker: 0, remote: "bench" };

const frame = encodeFrame(
  { flags: 0, code: KvMethod.Get, requestId: 1, status: 0, timeoutMs: 0 },
  pb.GetRequest.encode({ key: new TextEncoder().encode("app:user:12345") }).finish(),
);

const plain = new Connection(owner, transport, info, nativeCodec);
const open = new Connection(owner, transport, info, nativeCodec);
open.auth = new Guard(buildAuthConfig({}), stats).open(open);
const limited = new Connection(owner, transport, info, nativeCodec);
const guard = new Guard(buildAuthConfig({ acl: "user r on >pw ~app:* +@read" }), stats);
limited.auth = guard.open(limited);
limited.auth.succeed(guard.users.get("r")!);

for (
  const [name, conn, baseline] of [
    ["no guard (another service)", plain, true],
    ["auth off: the open default user", open, false],
    ["a user with limits (~app:* +@read)", limited, false],
  ] as const
) {
  Deno.bench({
    name,
    group: "dispatch one Get frame",
    baseline,
    fn() {
      nativeCodec.dispatch(conn, frame, 0, frame.length, site);
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (calls < 0) console.log(calls);
});
