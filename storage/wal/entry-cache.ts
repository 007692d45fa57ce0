/**
 * A bounded cache of recent log entries: a ring of `capacityEntries` slots indexed by
 * entry index modulo the capacity, so a put or get costs one array access (no map, no
 * eviction bookkeeping). A slot remembers its entry's index; a newer entry at the same
 * position overwrites an older one.
 */
import type { Entry } from "../../src/proto/schema.js";

export class EntryCache {
  private readonly indexes: Float64Array;
  private readonly entries: Array<Entry | undefined>;
  /** Encoded (protobuf) size of each cached entry, the unit entries() limits by. */
  private readonly encodedBytes: Float64Array;

  constructor(private readonly capacityEntries: number) {
    this.indexes = new Float64Array(capacityEntries).fill(-1);
    this.entries = new Array<Entry | undefined>(capacityEntries).fill(undefined);
    this.encodedBytes = new Float64Array(capacityEntries);
  }

  /** The entry at `index`, if cached. */
  get(index: number): Entry | undefined {
    if (this.capacityEntries === 0) return undefined;
    const slot = index % this.capacityEntries;
    return this.indexes[slot] === index ? this.entries[slot] : undefined;
  }

  /** The encoded size of the entry at `index`; only after get(index) returned it. */
  encodedBytesOf(index: number): number {
    return this.encodedBytes[index % this.capacityEntries];
  }

  /** Caches `entry` (two array stores: nothing is allocated per entry). */
  put(entry: Entry, encodedBytes: number): void {
    if (this.capacityEntries === 0) return;
    const slot = entry.index % this.capacityEntries;
    this.indexes[slot] = entry.index;
    this.entries[slot] = entry;
    this.encodedBytes[slot] = encodedBytes;
  }

  /** Drops entries with indexes in [fromIndex, throughIndex]. */
  dropRange(fromIndex: number, throughIndex: number): void {
    const count = Math.min(this.capacityEntries, throughIndex - fromIndex + 1);
    for (let k = 0; k < count; k++) {
      const slot = (fromIndex + k) % this.capacityEntries;
      if (this.indexes[slot] >= fromIndex && this.indexes[slot] <= throughIndex) {
        this.indexes[slot] = -1;
        this.entries[slot] = undefined;
      }
    }
  }

  clear(): void {
    this.indexes.fill(-1);
    this.entries.fill(undefined);
  }
}
