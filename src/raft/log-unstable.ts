/**
 * Log state the core has accepted but that is not yet durable: entries appended by
 * proposals or received from a leader, and a fully received snapshot to install.
 * It shadows the storage from `offset` on. Entries move out once `advance()` confirms
 * the Ready that carried them (`stableTo`), after which storage serves them.
 *
 * Like etcd's log_unstable.go, with one addition: an installed snapshot may keep the
 * storage's entries after it (section 7, Figure 13 step 6) when they match it.
 */
import type { Entry, SnapshotMeta } from "../proto/schema.js";
import { fail, invariant } from "./invariant.js";

export class Unstable {
  /** A fully received snapshot, to be installed; undefined once durable. */
  snapshot: SnapshotMeta | undefined = undefined;
  /** The snapshot was handed out in a Ready not yet advanced. */
  snapshotInProgress = false;
  /**
   * Installing `snapshot` keeps the storage's entries after its index (they match it);
   * when false, the install discards the whole durable log.
   */
  snapshotKeepsStorage = false;
  /** Entries from `offset` on. */
  entries: Entry[] = [];
  /**
   * Index of entries[0].
   * Invariant: snapshot === undefined || snapshotKeepsStorage || offset === snapshot.index + 1.
   */
  offset: number;
  /**
   * Entries below it were handed out in a Ready not yet advanced.
   * Invariant: offset <= offsetInProgress <= offset + entries.length.
   */
  offsetInProgress: number;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  /** Enforces the invariants documented on the fields (cheap: called after each mutation). */
  private checkInvariants(): void {
    const end = this.offset + this.entries.length;
    invariant(this.offset <= this.offsetInProgress && this.offsetInProgress <= end, "unstable: offset <= offsetInProgress <= end");
    invariant(
      this.snapshot === undefined || this.snapshotKeepsStorage || this.offset === this.snapshot.index + 1,
      "unstable: entries follow a snapshot that replaces the log",
    );
  }

  /** The term at `index` if this structure knows it, else -1. */
  maybeTerm(index: number): number {
    const position = index - this.offset;
    if (position >= 0 && position < this.entries.length) return this.entries[position].term;
    if (this.snapshot !== undefined && index === this.snapshot.index) return this.snapshot.term;
    return -1;
  }

  /** The last index if this structure determines it, else -1 (ask the storage). */
  maybeLastIndex(): number {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot !== undefined && !this.snapshotKeepsStorage) return this.snapshot.index;
    return -1;
  }

  /** The first index if a pending snapshot determines it, else -1. */
  maybeFirstIndex(): number {
    return this.snapshot === undefined ? -1 : this.snapshot.index + 1;
  }

  /** Entries not yet handed out in a Ready. */
  entriesToPersist(): Entry[] {
    const from = this.offsetInProgress - this.offset;
    if (from >= this.entries.length) return [];
    return from === 0 ? this.entries.slice() : this.entries.slice(from);
  }

  hasEntriesToPersist(): boolean {
    return this.offsetInProgress < this.offset + this.entries.length;
  }

  hasSnapshotToPersist(): boolean {
    return this.snapshot !== undefined && !this.snapshotInProgress;
  }

  /** Marks everything currently held as handed out in a Ready. */
  acceptInProgress(): void {
    this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot !== undefined) this.snapshotInProgress = true;
  }

  /** Entries up to (index, term) are durable: drop them, unless a later truncation replaced that entry. */
  stableTo(index: number, term: number): void {
    if (this.maybeTerm(index) !== term) return;
    const position = index - this.offset;
    if (position < 0 || position >= this.entries.length) return; // the snapshot's index, not an entry
    const count = position + 1;
    this.entries = count === this.entries.length ? [] : this.entries.slice(count);
    this.offset = index + 1;
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
    this.checkInvariants();
  }

  /** The snapshot at `index` is durable. */
  stableSnapshotTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.index === index) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
      this.snapshotKeepsStorage = false;
    }
  }

  /**
   * Accepts a snapshot to install. With `keepsStorage` (the durable log holds the
   * entry at meta.index with meta.term, and nothing unstable is at or below it), later
   * entries, durable or not, stay; otherwise the whole log is replaced by the snapshot.
   */
  restore(meta: SnapshotMeta, keepsStorage: boolean): void {
    if (keepsStorage) {
      invariant(this.entries.length === 0 || meta.index < this.offset, "restore: kept entries must be above the snapshot");
    } else {
      this.entries = [];
      this.offset = meta.index + 1;
      this.offsetInProgress = this.offset;
    }
    this.snapshot = meta;
    this.snapshotInProgress = false;
    this.snapshotKeepsStorage = keepsStorage;
    this.checkInvariants();
  }

  /** Appends entries, first dropping any held entry at or after entries[0].index (section 5.3). */
  truncateAndAppend(entries: Entry[]): void {
    const fromIndex = entries[0].index;
    invariant(this.snapshot === undefined || fromIndex > this.snapshot.index, "truncateAndAppend: entries below the pending snapshot");
    const end = this.offset + this.entries.length;
    if (fromIndex === end) {
      for (let i = 0; i < entries.length; i++) this.entries.push(entries[i]);
      return;
    }
    if (fromIndex <= this.offset) {
      // Replaces every unstable entry and shadows the storage from fromIndex on.
      this.offset = fromIndex;
      this.offsetInProgress = fromIndex;
      this.entries = entries.slice();
      this.checkInvariants();
      return;
    }
    if (!(fromIndex < end)) fail(`truncateAndAppend: gap between ${end - 1} and ${fromIndex}`);
    this.entries = this.entries.slice(0, fromIndex - this.offset).concat(entries);
    if (this.offsetInProgress > fromIndex) this.offsetInProgress = fromIndex;
    this.checkInvariants();
  }

  /** Entries [lo, hi) from this structure; the caller checked lo >= offset and hi <= end. */
  slice(lo: number, hi: number): Entry[] {
    if (!(lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi)) fail(`unstable.slice(${lo}, ${hi}) out of bounds`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
