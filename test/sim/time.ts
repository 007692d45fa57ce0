/**
 * Simulated time. The simulation advances in ticks; one tick is one `RaftCore.tick()`
 * for every live node. No wall clock is read anywhere in the simulator.
 */

export class VirtualClock {
  private ticks = 0;

  /** The current tick (0 before the first advance). */
  now(): number {
    return this.ticks;
  }

  advance(): number {
    this.ticks += 1;
    return this.ticks;
  }
}

/**
 * Items due at a tick, handed out in (due tick, insertion order) order: a binary
 * min-heap. Insertion order breaks ties so that a run is deterministic.
 */
export class TickQueue<T> {
  private heap: { dueTick: number; sequence: number; item: T }[] = [];
  private sequenceNext = 0;

  get size(): number {
    return this.heap.length;
  }

  push(dueTick: number, item: T): void {
    this.heap.push({ dueTick, sequence: this.sequenceNext++, item });
    this.siftUp(this.heap.length - 1);
  }

  /** Removes and returns every item due at or before `tick`, in order. */
  popDue(tick: number): T[] {
    const due: T[] = [];
    while (this.heap.length > 0 && this.heap[0]!.dueTick <= tick) due.push(this.popMin());
    return due;
  }

  /** Removes every item for which `drop` is true. */
  removeWhere(drop: (item: T) => boolean): number {
    const before = this.heap.length;
    const kept = this.heap.filter((e) => !drop(e.item));
    this.heap = [];
    for (const e of kept) {
      this.heap.push(e);
      this.siftUp(this.heap.length - 1);
    }
    return before - kept.length;
  }

  items(): T[] {
    return this.heap.map((e) => e.item);
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    return x.dueTick < y.dueTick || (x.dueTick === y.dueTick && x.sequence < y.sequence);
  }

  private popMin(): T {
    const top = this.heap[0]!;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return top.item;
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      [this.heap[i], this.heap[parent]] = [this.heap[parent]!, this.heap[i]!];
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const n = this.heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < n && this.less(l, smallest)) smallest = l;
      if (r < n && this.less(r, smallest)) smallest = r;
      if (smallest === i) break;
      [this.heap[i], this.heap[smallest]] = [this.heap[smallest]!, this.heap[i]!];
      i = smallest;
    }
  }
}
