/**
 * A bounded cache of recent log entries: a ring of `capacityEntries` slots indexed by
 * entry index modulo the capacity, so a put or get costs one array access (no map, no
 * eviction bookkeeping). A slot remembers its entry's index; a newer entry at the same
 * position overwrites an older one.
 */
import type { Entry } from "../../src/proto/schema.js";

export interface CachedEntry {
  entry: Entry;
  /** Encoded (protobuf) size, the unit entries() limits by. */
  encodedBytes: number;
}

export class EntryCache {
  private readonly indexes: Float64Array;
  private readonly values: Array<CachedEntry | undefined>;

  constructor(private readonly capacityEntries: number) {
    this.indexes = new Float64Array(capacityEntries).fill(-1);
    this.values = new Array<CachedEntry | undefined>(capacityEntries).fill(undefined);
  }

  get(index: number): CachedEntry | undefined {
    if (this.capacityEntries === 0) return undefined;
    const slot = index % this.capacityEntries;
    return this.indexes[slot] === index ? this.values[slot] : undefined;
  }

  put(index: number, value: CachedEntry): void {
    if (this.capacityEntries === 0) return;
    const slot = index % this.capacityEntries;
    this.indexes[slot] = index;
    this.values[slot] = value;
  }

  /** Drops entries with indexes in [fromIndex, throughIndex]. */
  dropRange(fromIndex: number, throughIndex: number): void {
    const count = Math.min(this.capacityEntries, throughIndex - fromIndex + 1);
    for (let k = 0; k < count; k++) {
      const slot = (fromIndex + k) % this.capacityEntries;
      if (this.indexes[slot] >= fromIndex && this.indexes[slot] <= throughIndex) {
        this.indexes[slot] = -1;
        this.values[slot] = undefined;
      }
    }
  }

  clear(): void {
    this.indexes.fill(-1);
    this.values.fill(undefined);
  }
}
