/** A bounded cache of recent log entries (insertion order, oldest evicted first). */
import type { Entry } from "../../src/proto/schema.js";

export interface CachedEntry {
  entry: Entry;
  /** Encoded (protobuf) size, the unit entries() limits by. */
  encodedBytes: number;
}

export class EntryCache {
  private readonly entries = new Map<number, CachedEntry>();

  constructor(private readonly capacityEntries: number) {}

  get(index: number): CachedEntry | undefined {
    return this.entries.get(index);
  }

  put(index: number, value: CachedEntry): void {
    if (this.capacityEntries === 0) return;
    this.entries.delete(index);
    this.entries.set(index, value);
    while (this.entries.size > this.capacityEntries) {
      const oldest = this.entries.keys().next().value as number;
      this.entries.delete(oldest);
    }
  }

  /** Drops entries >= fromIndex. */
  dropFrom(fromIndex: number): void {
    for (const index of this.entries.keys()) if (index >= fromIndex) this.entries.delete(index);
  }

  /** Drops entries <= throughIndex. */
  dropThrough(throughIndex: number): void {
    for (const index of this.entries.keys()) if (index <= throughIndex) this.entries.delete(index);
  }

  clear(): void {
    this.entries.clear();
  }

  size(): number {
    return this.entries.size;
  }
}
