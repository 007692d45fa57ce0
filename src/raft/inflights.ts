/**
 * The append messages in flight to one follower in replicate state, as a ring buffer
 * of (last index, bytes). Flow control pauses a follower when either the message
 * count or the byte total reaches its limit (like etcd's tracker/inflights.go).
 */
import { fail, invariant } from "./invariant.js";

export class Inflights {
  private readonly indexes: Float64Array;
  private readonly sizes: Float64Array;
  private start = 0;
  /** Invariant: 0 <= count <= capacity. */
  count = 0;
  /** Invariant: bytes equals the sum of the sizes held. */
  bytes = 0;

  constructor(
    private readonly capacity: number,
    private readonly bytesMax: number,
  ) {
    invariant(capacity > 0 && bytesMax > 0, "inflights limits must be positive");
    this.indexes = new Float64Array(capacity);
    this.sizes = new Float64Array(capacity);
  }

  /** Records a message whose last entry is `index`; indexes must increase. */
  add(index: number, bytes: number): void {
    invariant(!this.full(), "inflights: add while full");
    const position = (this.start + this.count) % this.capacity;
    if (this.count > 0) {
      const previous = this.indexes[(position + this.capacity - 1) % this.capacity];
      if (!(index > previous)) fail(`inflights: index ${index} not above ${previous}`);
    }
    this.indexes[position] = index;
    this.sizes[position] = bytes;
    this.count += 1;
    this.bytes += bytes;
  }

  /** Frees every message whose last index is at or below `index` (acknowledged). */
  freeLE(index: number): void {
    // Bounded by count.
    while (this.count > 0 && this.indexes[this.start] <= index) {
      this.bytes -= this.sizes[this.start];
      this.start = (this.start + 1) % this.capacity;
      this.count -= 1;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  /** Frees the oldest message (a heartbeat response suggests it was lost). */
  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.indexes[this.start]);
  }

  full(): boolean {
    return this.count === this.capacity || this.bytes >= this.bytesMax;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
