/**
 * wire v1's Incr (method 8): the counter shared with RESP's INCR family,
 * with its own exact request reader and reply writer because protobufjs
 * without Long rounds 64-bit integers.
 *
 * @module
 */
import { Status } from "../protocol/constants.ts";
import { pb } from "../protocol/messages.ts";
import { type MessageType, method, ServiceError } from "../server/service.ts";
import { CounterError, incrBy } from "./counter.ts";
import { incrReplyWriter } from "./reply_writers.ts";
import { type IncrRequestExact, incrRequestReader } from "./request_readers.ts";
import { keyShard } from "./route.ts";
import { type ShardStore, StoreFullError } from "./store.ts";

/**
 * The Incr method of the KV service.
 *
 * @example
 * ```ts
 * import { defineService } from "../server/service.ts";
 * import { ShardStore } from "./store.ts";
 * import { incrMethod } from "./incr_method.ts";
 * defineService({ name: "counters", createState: () => new ShardStore(), methods: { 8: incrMethod } });
 * ```
 */
export const incrMethod = method<IncrRequestExact, { value: number | bigint }, ShardStore>({
  name: "Incr",
  request: pb.IncrRequest as unknown as MessageType<IncrRequestExact>,
  reply: pb.IncrReply as unknown as MessageType<{ value: number | bigint }>,
  requestReader: incrRequestReader,
  replyWriter: incrReplyWriter,
  route: keyShard,
  handler(req, ctx) {
    const key = req.key;
    if (key.length === 0 || key.length > 1024) {
      throw new ServiceError(
        Status.BAD_REQUEST,
        `Incr needs a key of 1 to 1024 bytes, got ${key.length}`,
      );
    }
    try {
      return { value: incrBy(ctx.state, key, req.delta, req.ttlMs) };
    } catch (e) {
      if (e instanceof CounterError) throw new ServiceError(Status.BAD_REQUEST, e.message);
      if (e instanceof StoreFullError) {
        throw new ServiceError(Status.NO_MEMORY, `Incr: ${e.message}`);
      }
      throw e;
    }
  },
});
