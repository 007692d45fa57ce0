/**
 * An in-memory `RaftLogStorage` for tests, simulations and benchmarks.
 *
 * The core only reads through the `RaftLogStorage` methods; the host writes with the
 * writer methods below (`append`, `setHardState`, `applySnapshot`, `createSnapshot`,
 * `compact`), following step 4 of the host loop in `types.ts`. `clone()` returns an
 * independent copy, so a simulation can keep "what is durable" apart from a node.
 * Reads outside the log throw the core's codes, RAFT_ERR_LOG_COMPACTED below it and
 * RAFT_ERR_LOG_UNAVAILABLE above it.
 *
 * Layout: `log[i]` holds the entry at index `compactedIndex + 1 + i`; the entry at
 * `compactedIndex` is known only by its term, `compactedTerm`.
 *
 * Invariant: snapshot.index >= compactedIndex once `compact` followed `createSnapshot`
 * (between the two calls the snapshot may run ahead of the compaction point).
 */
import { copyClusterConfig, emptyClusterConfig, EntryType, type Entry, type HardState, type SnapshotMeta } from "../proto/schema.js";
import { entrySizeBytes } from "./entry-size.js";
import { RaftwalError, RaftwalErrorCode } from "./errors.js";
import { fail, invariant } from "./invariant.js";
import { compactedError, unavailableError } from "./log-errors.js";
import type { RaftLogStorage } from "./types.js";

const EMPTY = new Uint8Array(0);

function copyMeta(meta: SnapshotMeta): SnapshotMeta {
  return { index: meta.index, term: meta.term, sizeBytes: meta.sizeBytes, config: copyClusterConfig(meta.config) };
}

export class MemoryStorage implements RaftLogStorage {
  private hard: HardState = { term: 0, vote: 0, commit: 0 };
  private snapshot: SnapshotMeta = { index: 0, term: 0, sizeBytes: 0, config: emptyClusterConfig() };
  private snapshotData: Uint8Array = EMPTY;
  /** Index of the entry before log[0]; its term is `compactedTerm`. */
  private compactedIndex = 0;
  private compactedTerm = 0;
  private log: Entry[] = [];

  // ---- RaftLogStorage (read side) -------------------------------------------------

  hardState(): HardState {
    return { term: this.hard.term, vote: this.hard.vote, commit: this.hard.commit };
  }

  snapshotMeta(): SnapshotMeta {
    return copyMeta(this.snapshot);
  }

  firstIndex(): number {
    return this.compactedIndex + 1;
  }

  lastIndex(): number {
    return this.compactedIndex + this.log.length;
  }

  term(index: number): number {
    if (index === this.compactedIndex) return this.compactedTerm;
    this.checkRange(index);
    return this.log[index - this.compactedIndex - 1].term;
  }

  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    if (!(lo < hi)) fail(`entries: empty range [${lo}, ${hi})`);
    this.checkRange(lo);
    this.checkRange(hi - 1);
    const start = lo - this.compactedIndex - 1;
    const end = hi - this.compactedIndex - 1;
    let bytes = 0;
    let stop = start;
    // Bounded by hi - lo.
    while (stop < end) {
      bytes += entrySizeBytes(this.log[stop]);
      if (bytes > bytesMax && stop > start) break;
      stop += 1;
    }
    return this.log.slice(start, stop);
  }

  typedEntryIndexes(): number[] {
    const indexes: number[] = [];
    for (const entry of this.log) if (entry.type !== EntryType.NORMAL) indexes.push(entry.index);
    return indexes;
  }

  readSnapshotChunk(offset: number, bytesMax: number): Uint8Array {
    invariant(offset >= 0 && bytesMax > 0, "readSnapshotChunk: bad arguments");
    return this.snapshotData.subarray(offset, Math.min(this.snapshotData.length, offset + bytesMax));
  }

  // ---- Host-side writers ------------------------------------------------------------

  /**
   * Appends entries durably. If `entries[0].index` is at or below the last index, the
   * log is truncated from there first (a conflicting suffix, section 5.3). Entries at
   * or below the compaction point are skipped (they are covered by the snapshot).
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    let from = 0;
    const first = this.compactedIndex + 1;
    if (entries[0].index < first) from = first - entries[0].index;
    if (from >= entries.length) return;
    const startIndex = entries[from].index;
    const last = this.lastIndex();
    if (startIndex > last + 1) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `append at ${startIndex} leaves a gap after ${last}`);
    }
    if (startIndex <= last) this.log.length = startIndex - first;
    for (let i = from; i < entries.length; i++) {
      invariant(entries[i].index === startIndex + (i - from), "append: indexes are not contiguous");
      this.log.push(entries[i]);
    }
  }

  setHardState(hardState: HardState): void {
    this.hard = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
  }

  /**
   * Installs a snapshot received from the leader (section 7, Figure 13 steps 5-7):
   * it becomes the newest snapshot; if the log holds the entry at `meta.index` with
   * `meta.term`, the entries after it are kept, otherwise the whole log is discarded.
   */
  applySnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    if (meta.index <= this.snapshot.index && this.snapshot.index > 0) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot ${meta.index} is not newer than ${this.snapshot.index}`);
    }
    const keep = meta.index >= this.compactedIndex && meta.index <= this.lastIndex() && this.term(meta.index) === meta.term;
    if (keep) {
      this.log = this.log.slice(meta.index - this.compactedIndex);
    } else {
      this.log = [];
    }
    this.compactedIndex = meta.index;
    this.compactedTerm = meta.term;
    this.snapshot = copyMeta(meta);
    this.snapshotData = data.slice();
  }

  /** Stores the application's own snapshot of entries up to `meta.index` (at most the last index). */
  createSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    if (meta.index <= this.snapshot.index) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot ${meta.index} is not newer than ${this.snapshot.index}`);
    }
    if (meta.index > this.lastIndex() || meta.index < this.compactedIndex) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `snapshot ${meta.index} outside the log [${this.compactedIndex}, ${this.lastIndex()}]`);
    }
    if (!(this.term(meta.index) === meta.term)) fail(`snapshot term ${meta.term} does not match the log at ${meta.index}`);
    this.snapshot = copyMeta(meta);
    this.snapshotData = data.slice();
  }

  /** Discards the log up to and including `index` (at most the snapshot's index). */
  compact(index: number): void {
    if (index <= this.compactedIndex) return;
    if (index > this.snapshot.index || index > this.lastIndex()) {
      throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `compact(${index}) beyond snapshot ${this.snapshot.index} or last index ${this.lastIndex()}`);
    }
    const term = this.term(index);
    this.log = this.log.slice(index - this.compactedIndex);
    this.compactedIndex = index;
    this.compactedTerm = term;
  }

  /** An independent copy (entries are immutable and shared). */
  clone(): MemoryStorage {
    const copy = new MemoryStorage();
    copy.hard = { ...this.hard };
    copy.snapshot = copyMeta(this.snapshot);
    copy.snapshotData = this.snapshotData;
    copy.compactedIndex = this.compactedIndex;
    copy.compactedTerm = this.compactedTerm;
    copy.log = this.log.slice();
    return copy;
  }

  private checkRange(index: number): void {
    if (index <= this.compactedIndex) throw compactedError(index, this.compactedIndex + 1);
    if (index > this.lastIndex()) throw unavailableError(index, this.lastIndex());
  }
}
