/**
 * Task worker entry: owns one shard, blocks in `Atomics.wait` on its wake
 * word until an IO worker pushes requests, runs them, and pushes replies.
 * Blocking is right here: this thread has nothing else to do, and a futex
 * wait wakes faster than an event-loop turn.
 *
 * @module
 */
import { kickPersistence } from "../../persist/journal.ts";
import { StatsBlock } from "../../stats/resources.ts";
import type { Service, ServiceOptions } from "../service.ts";
import { hostShard, nextIdle } from "./host_shard.ts";
import {
  Control,
  killWord,
  progressWord,
  type SharedPlan,
  threadIndex,
  wakeWord,
} from "../topology.ts";

/** The worker global, typed here rather than through a lib directive (JSR bans those). */
const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((e: MessageEvent) => void) | null;
};

/** The message that starts a task worker. */
export interface TaskWorkerInit {
  /** Shared memory and layout. */
  plan: SharedPlan;
  /** This worker's shard. */
  shard: number;
  /** URL of the service module (default export). */
  serviceUrl: string;
  /** Body limit, for replies. */
  maxBody: number;
  /** See {@link ServeOptions.serviceOptions}. */
  serviceOptions?: ServiceOptions;
  /** This thread's generation, 2 more per replacement; see {@link killWord}. */
  generation: number;
}

async function main(init: TaskWorkerInit): Promise<void> {
  const { plan, shard } = init;
  const layout = plan.layout;
  const me = threadIndex(layout, "task", shard);
  const control = new Int32Array(plan.control);
  const stats = new StatsBlock(plan.stats, me);
  stats.reset();
  const service = (await import(init.serviceUrl)).default as Service<unknown>;
  const host = hostShard(plan, shard, service, init.maxBody, init.serviceOptions, stats, "block");
  const killed = () => Atomics.load(control, killWord(me)) > init.generation;
  host.stopLevel = () => {
    const over = Atomics.load(control, killWord(me)) - init.generation;
    return over <= 0 ? 0 : over === 1 ? 1 : 2;
  };
  const progressWords = new Int32Array(plan.progress);
  const progress = progressWord(me);
  host.progress = host.replies.progress = () => progressWords[progress]++;
  scope.postMessage({ type: "ready" });

  let idleAt = 0;
  for (;;) {
    const seen = Atomics.load(control, wakeWord(me));
    const done = await host.drain();
    kickPersistence();
    progressWords[progress]++;
    if (killed()) {
      scope.postMessage({ type: "exited" });
      return;
    }
    if (done > 0) continue;
    if (Atomics.load(control, Control.stop) !== 0) break;
    const now = Date.now();
    idleAt = nextIdle(host, idleAt, now);
    // nextIdle keeps idleAt within MAX_IDLE_MS, so the stop flag is seen that often.
    let nap = Math.max(1, idleAt - now);
    // Replies held for a commit: the persistence worker wakes us, this is a fallback.
    if (host.replies.parked > 0) nap = Math.min(nap, 10);
    Atomics.wait(control, wakeWord(me), seen, nap);
  }
  scope.postMessage({ type: "stopped" });
}

scope.onmessage = (e: MessageEvent<TaskWorkerInit>) => {
  scope.onmessage = null;
  main(e.data).catch((err) => {
    // An error outside any handler (bad service module, say): let the main
    // thread see it as a worker error.
    setTimeout(() => {
      throw err;
    });
  });
};
