/**
 * A second, small service started the same way as the KV service: it has
 * no state, so every method routes "local" and, in inline mode, runs with
 * no hand-off at all. It also shows what the server does with slow and
 * failing handlers.
 *
 * - 1 `Echo`: replies with the request's payload.
 * - 2 `Sleep`: blocks its thread for `payload[0] * 10` ms, then echoes
 *   (a stand-in for an expensive handler).
 * - 3 `Fail`: throws, which the server turns into an `INTERNAL` reply.
 * - 4 `Delay`: an async handler that waits `payload[0] * 10` ms without
 *   blocking its thread, then echoes.
 * - 5 `Crash`: replies, then throws an error that no handler catches, which
 *   kills its thread (for fault-injection tests: the server restarts it).
 *
 * @module
 */
import { defineService, method, pb } from "../mod.ts";

/** Method codes of the echo service. */
export const EchoMethod = { Echo: 1, Sleep: 2, Fail: 3, Delay: 4, Crash: 5 } as const;

function block(ms: number): void {
  // Atomics.wait on private memory sleeps without burning the core.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export default defineService({
  name: "echo",
  methods: {
    [EchoMethod.Echo]: method({
      name: "Echo",
      request: pb.PingRequest,
      reply: pb.PingReply,
      handler: (req) => ({ payload: req.payload }),
    }),
    [EchoMethod.Sleep]: method({
      name: "Sleep",
      request: pb.PingRequest,
      reply: pb.PingReply,
      // Shard 0 always, so that tests can queue work behind a sleeper.
      route: () => 0,
      handler(req) {
        block((req.payload?.[0] ?? 0) * 10);
        return { payload: req.payload };
      },
    }),
    [EchoMethod.Delay]: method({
      name: "Delay",
      request: pb.PingRequest,
      reply: pb.PingReply,
      async handler(req) {
        // The request's bytes may be reused once the handler yields: copy first.
        const payload = req.payload?.slice() ?? new Uint8Array(0);
        await new Promise((r) => setTimeout(r, (payload[0] ?? 0) * 10));
        return { payload };
      },
    }),
    [EchoMethod.Crash]: method({
      name: "Crash",
      request: pb.PingRequest,
      reply: pb.PingReply,
      // Shard 0 always, so that a test knows which worker dies.
      route: () => 0,
      handler(req) {
        queueMicrotask(() => {
          throw new Error("deliberate crash outside any handler");
        });
        return { payload: req.payload };
      },
    }),
    [EchoMethod.Fail]: method({
      name: "Fail",
      request: pb.PingRequest,
      reply: pb.PingReply,
      handler(): never {
        throw new Error("this handler always fails");
      },
    }),
  },
});
