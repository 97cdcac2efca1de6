/**
 * A growable FIFO queue on a circular array: O(1) push and shift, unlike
 * `Array.prototype.shift`.
 *
 * @module
 */

/** First in, first out. */
export class Fifo<T> {
  #items: (T | undefined)[] = new Array(16);
  #head = 0;
  #size = 0;

  /** Number of queued items. */
  get size(): number {
    return this.#size;
  }

  /** Appends `item`. */
  push(item: T): void {
    if (this.#size === this.#items.length) {
      const old = this.#items;
      const next: (T | undefined)[] = new Array(old.length * 2);
      for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) % old.length];
      this.#items = next;
      this.#head = 0;
    }
    this.#items[(this.#head + this.#size) % this.#items.length] = item;
    this.#size++;
  }

  /** The oldest item without removing it, or undefined when empty. */
  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  /** Removes and returns the oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
    return item;
  }
}
