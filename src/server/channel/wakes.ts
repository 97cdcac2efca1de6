/**
 * Batched wake-ups across the channel: a producer marks the peers it pushed
 * records to, and wakes each of them once at the end of its batch (one
 * `Atomics.notify` per peer per batch, not one per record). Both directions
 * use it: IO worker → shards for requests, shard → IO workers for replies.
 *
 * @module
 */

/**
 * The peers one thread pushed records to since its last flush.
 *
 * @example
 * ```ts
 * const woken: number[] = [];
 * const wakes = new Wakes((peer) => woken.push(peer));
 * wakes.touch(2);
 * wakes.touch(2);
 * wakes.flush(); // woken is [2]
 * ```
 */
export class Wakes {
  readonly #touched = new Set<number>();
  #notify: (peer: number) => void;

  /** `notify` wakes peer `peer` (its thread's wake word). */
  constructor(notify: (peer: number) => void = () => {}) {
    this.#notify = notify;
  }

  /** Sets how a peer is woken, for owners that know it only after construction. */
  set notify(notify: (peer: number) => void) {
    this.#notify = notify;
  }

  /** Peer `peer` has records it has not been woken for. */
  touch(peer: number): void {
    this.#touched.add(peer);
  }

  /** Wakes `peer` now (a producer about to wait for it to make room). */
  now(peer: number): void {
    this.#touched.delete(peer);
    this.#notify(peer);
  }

  /** Wakes every touched peer once; returns how many. */
  flush(): number {
    const n = this.#touched.size;
    if (n === 0) return 0;
    const notify = this.#notify;
    for (const peer of this.#touched) notify(peer);
    this.#touched.clear();
    return n;
  }
}
