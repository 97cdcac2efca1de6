/**
 * The main thread's handle on one worker: routes the worker's messages to
 * whoever waits for them, and reports the worker's death (an uncaught
 * error, or a kill) exactly once.
 *
 * @module
 */

/** A message from a worker. */
export interface WorkerReply {
  /** What happened: `ready`, `drained`, `stopped`, `shard-reset`. */
  type: string;
  /** With `ready` from an IO worker that listens: its ports, one per listener. */
  ports?: number[];
  /** With `drained`: the drain timed out. */
  forced?: boolean;
}

/** A supervised worker. */
export class WorkerHandle {
  /** The worker itself. */
  readonly worker: Worker;
  /** False once it died or was stopped. */
  alive = true;
  readonly #waiters = new Map<string, ((r: WorkerReply | null) => void)[]>();
  readonly #listeners = new Map<string, (message: never) => void>();
  #onDeath: (reason: string) => void = () => {};

  private constructor(worker: Worker) {
    this.worker = worker;
    worker.onmessage = (e: MessageEvent<WorkerReply>) => {
      this.#listeners.get(e.data.type)?.(e.data as never);
      const list = this.#waiters.get(e.data.type);
      list?.shift()?.(e.data);
    };
    worker.onerror = (e) => {
      // Handled here: a worker's crash must not take the process down.
      e.preventDefault();
      this.#died(e.message);
    };
  }

  /** Starts a worker with `init` and resolves once it reports `ready`. */
  static async start(
    url: URL,
    name: string,
    init: unknown,
  ): Promise<{ handle: WorkerHandle; ready: WorkerReply }> {
    const handle = new WorkerHandle(new Worker(url, { type: "module", name }));
    const failed = Promise.withResolvers<never>();
    handle.#onDeath = (reason) => failed.reject(new Error(`Start ${name}: ${reason}`));
    const ready = handle.next("ready", 30_000);
    handle.worker.postMessage(init);
    const reply = await Promise.race([ready, failed.promise]);
    if (!reply) throw new Error(`Start ${name}: no ready message within 30 s`);
    handle.#onDeath = () => {};
    return { handle, ready: reply };
  }

  /** Calls `fn` for every message of `type` from now on. */
  on<T extends { type: string }>(type: T["type"], fn: (message: T) => void): void {
    this.#listeners.set(type, fn as (message: never) => void);
  }

  /** Calls `fn` once if the worker dies from now on. */
  onDeath(fn: (reason: string) => void): void {
    this.#onDeath = fn;
  }

  /** The next message of `type`, or null after `timeoutMs` or if the worker is gone. */
  next(type: string, timeoutMs: number): Promise<WorkerReply | null> {
    if (!this.alive) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const list = this.#waiters.get(type);
        const i = list?.indexOf(done) ?? -1;
        if (i >= 0) list!.splice(i, 1);
        resolve(null);
      }, timeoutMs);
      const done = (r: WorkerReply | null) => {
        clearTimeout(timer);
        resolve(r);
      };
      const list = this.#waiters.get(type) ?? [];
      list.push(done);
      this.#waiters.set(type, list);
    });
  }

  /** Posts a message if the worker is alive. */
  post(message: unknown, transfer?: Transferable[]): void {
    if (this.alive) this.worker.postMessage(message, transfer ? { transfer } : undefined);
  }

  /** Terminates the worker as a crash would, and reports its death. */
  kill(reason: string): void {
    this.#died(reason);
  }

  /** Stops the worker for good (shutdown): no death is reported. */
  stop(): void {
    this.#onDeath = () => {};
    this.#died("stopped");
  }

  #died(reason: string): void {
    if (!this.alive) return;
    this.alive = false;
    this.worker.terminate();
    // Told first, so that a start in progress fails with the reason, not as a timeout.
    this.#onDeath(reason);
    for (const list of this.#waiters.values()) for (const w of list.splice(0)) w(null);
  }
}
