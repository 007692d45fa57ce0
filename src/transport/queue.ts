/**
 * A FIFO bounded both by item count and by total bytes. `push` refuses (returns
 * false) rather than grow past either bound: the caller drops the item.
 */
export interface QueueItem {
  readonly bytes: Buffer;
}

export class BoundedQueue<T extends QueueItem> {
  readonly itemsMax: number;
  readonly bytesMax: number;
  #items: (T | undefined)[] = [];
  #head = 0;
  #bytes = 0;

  constructor(bounds: { itemsMax: number; bytesMax: number }) {
    this.itemsMax = bounds.itemsMax;
    this.bytesMax = bounds.bytesMax;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Total bytes of the items held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends `item` unless that would exceed a bound; returns whether it was appended. */
  push(item: T): boolean {
    if (this.length >= this.itemsMax || this.#bytes + item.bytes.length > this.bytesMax) return false;
    this.#items.push(item);
    this.#bytes += item.bytes.length;
    return true;
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head++;
    // Compact once the consumed prefix dominates, so memory follows the live items.
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    this.#bytes -= item!.bytes.length;
    return item;
  }

  /** Removes and returns every item. */
  clear(): T[] {
    const items = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
    return items;
  }
}
