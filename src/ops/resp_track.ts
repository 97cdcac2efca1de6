/**
 * RESP replies leave a connection in command order, so the metrics of a
 * command (its number and when its frame arrived) wait in a FIFO from
 * dispatch until its reply is queued for the socket. Three calls from the
 * RESP session and codec, nothing more, and no allocation per command.
 *
 * @module
 */
import { recorder } from "./recorder.ts";

/**
 * One connection's commands awaiting their replies.
 *
 * @example
 * ```ts
 * import { RespTrack } from "@evkv/evkv";
 * const track = new RespTrack();
 * track.begin(1, performance.now());
 * track.pending; // 1
 * ```
 */
export class RespTrack {
  /** Pairs of (command number, arrival), circular. */
  #ring = new Float64Array(16);
  #head = 0;
  #size = 0;

  /** Commands dispatched and not yet answered. */
  get pending(): number {
    return this.#size;
  }

  /** Command number `command` was dispatched; its frame arrived at `at` (performance.now()). */
  begin(command: number, at: number): void {
    let ring = this.#ring;
    const slots = ring.length >> 1;
    if (this.#size === slots) {
      // Grow: bounded by the connection's --max-inflight.
      const next = new Float64Array(ring.length * 2);
      for (let i = 0; i < this.#size; i++) {
        const from = ((this.#head + i) % slots) * 2;
        next[i * 2] = ring[from];
        next[i * 2 + 1] = ring[from + 1];
      }
      this.#ring = ring = next;
      this.#head = 0;
    }
    const at2 = ((this.#head + this.#size) % (ring.length >> 1)) * 2;
    ring[at2] = command;
    ring[at2 + 1] = at;
    this.#size++;
  }

  /**
   * The oldest command's reply was queued on the connection of `remote`,
   * whose last read was at `arrivedAt`; `failed` when it is a RESP error
   * (its first byte is `-`). The caller says which rather than passing the
   * bytes, because a reply rendered straight into the output buffer can be
   * read only there. A reply with no command (a protocol error) counts as
   * an unknown command.
   */
  written(failed: boolean, remote: string, arrivedAt: number): void {
    let command = 0;
    let at = arrivedAt;
    if (this.#size > 0) {
      const ring = this.#ring;
      command = ring[this.#head * 2];
      at = ring[this.#head * 2 + 1];
      this.#head = (this.#head + 1) % (ring.length >> 1);
      this.#size--;
    }
    recorder.resp(command, failed, at, remote);
  }
}
