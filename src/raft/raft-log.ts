/**
 * The log as the core sees it: the durable storage, shadowed by the unstable part
 * (entries and a snapshot not yet durable), plus the commit and apply positions.
 */
import { EntryType, type ClusterConfig, type Entry, type SnapshotMeta } from "../proto/schema.js";
import { ConfigLog } from "./config-log.js";
import { entrySizeBytes } from "./entry-size.js";
import { fail } from "./invariant.js";
import { compactedError, unavailableError } from "./log-errors.js";
import { Unstable } from "./log-unstable.js";
import type { RaftLogStorage } from "./types.js";

export class RaftLog {
  readonly storage: RaftLogStorage;
  readonly unstable: Unstable;
  /**
   * Highest index known to be committed (section 5.3).
   * Invariant: committed <= lastIndex(); it never decreases.
   */
  committed: number;
  /**
   * Highest index handed out to the application in a Ready (as an entry or a snapshot).
   * Invariant: applied <= applying <= committed.
   */
  applying: number;
  /** Highest index the application has applied (confirmed by advance()). Invariant: applied <= applying. */
  applied: number;
  /** The configurations the log holds; the latest is in force (config-log.ts). */
  readonly configs: ConfigLog;

  constructor(storage: RaftLogStorage, committed: number, appliedIndex: number | undefined, initialConfig: ClusterConfig) {
    this.storage = storage;
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.configs = loadConfigs(storage, initialConfig);
    const snapshotIndex = storage.snapshotMeta().index;
    this.committed = Math.max(committed, snapshotIndex);
    if (!(this.committed <= storage.lastIndex())) fail(`commit ${this.committed} beyond the last index ${storage.lastIndex()}`);
    this.applied = appliedIndex ?? snapshotIndex;
    if (!(this.applied >= snapshotIndex && this.applied <= this.committed)) fail(`applied index ${this.applied} outside [${snapshotIndex}, ${this.committed}]`);
    this.applying = this.applied;
  }

  firstIndex(): number {
    const index = this.unstable.maybeFirstIndex();
    return index >= 0 ? index : this.storage.firstIndex();
  }

  lastIndex(): number {
    const index = this.unstable.maybeLastIndex();
    return index >= 0 ? index : this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** The term at `index`, or -1 when it is compacted or beyond the log. */
  termOrMinusOne(index: number): number {
    const fromUnstable = this.unstable.maybeTerm(index);
    if (fromUnstable >= 0) return fromUnstable;
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return -1;
    return this.storage.term(index);
  }

  /** The term at `index`; throws RAFT_ERR_LOG_COMPACTED / RAFT_ERR_LOG_UNAVAILABLE out of range. */
  term(index: number): number {
    const term = this.termOrMinusOne(index);
    if (term >= 0) return term;
    if (index < this.firstIndex() - 1) throw compactedError(index, this.firstIndex());
    throw unavailableError(index, this.lastIndex());
  }

  matchTerm(index: number, term: number): boolean {
    return this.termOrMinusOne(index) === term;
  }

  /** Section 5.4.1: a log with a later last term, or the same last term and at least as long, is as up to date. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myLastTerm = this.lastTerm();
    return lastTerm > myLastTerm || (lastTerm === myLastTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries [lo, hi) whose sizes add up to at most bytesMax (at least one entry).
   * Throws RAFT_ERR_LOG_COMPACTED when lo is compacted.
   */
  slice(lo: number, hi: number, bytesMax: number): Entry[] {
    if (lo < this.firstIndex()) throw compactedError(lo, this.firstIndex());
    if (!(hi <= this.lastIndex() + 1)) fail(`slice(${lo}, ${hi}) beyond the last index ${this.lastIndex()}`);
    if (lo >= hi) return [];
    const unstable = this.unstable;
    const unstableFrom = unstable.entries.length > 0 ? unstable.offset : this.lastIndex() + 1;
    let result: Entry[];
    let bytes = 0;
    if (lo < unstableFrom) {
      result = this.storage.entries(lo, Math.min(hi, unstableFrom), bytesMax);
      for (let i = 0; i < result.length; i++) bytes += entrySizeBytes(result[i]);
      if (result.length < Math.min(hi, unstableFrom) - lo || hi <= unstableFrom) return result;
      lo = unstableFrom;
    } else {
      result = [];
    }
    const entries = unstable.entries;
    let stop = lo - unstable.offset;
    const end = hi - unstable.offset;
    const start = stop;
    // Bounded by hi - lo.
    while (stop < end) {
      bytes += entrySizeBytes(entries[stop]);
      if (bytes > bytesMax && (stop > start || result.length > 0)) break;
      stop += 1;
    }
    const fromUnstable = entries.slice(start, stop);
    return result.length === 0 ? fromUnstable : result.concat(fromUnstable);
  }

  /**
   * The index of the last entry at or below `index` whose term is at most `term`, with
   * that term; (index, 0) once the search runs into the compacted part. Used for fast
   * log backtracking (section 5.3, "the follower can include the term of the
   * conflicting entry and the first index it stores for that term"). The loop is
   * bounded by the log's length.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let at = Math.min(index, this.lastIndex());
    for (;;) {
      const found = this.termOrMinusOne(at);
      if (found < 0) return { index: at, term: 0 };
      if (found <= term) return { index: at, term: found };
      at -= 1;
    }
  }

  /** The index of the first entry whose term differs from the log's (or that is new), or 0. */
  private findConflict(entries: Entry[]): number {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The AppendEntries receiver rules (Figure 2, section 5.3): if the log holds
   * (prevIndex, prevTerm), deletes a conflicting suffix, appends the new entries and
   * advances the commit index; returns the index of the last new entry, or -1 when the
   * consistency check fails.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: Entry[]): number {
    if (!this.matchTerm(prevIndex, prevTerm)) return -1;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      if (!(conflict > this.committed)) fail(`entry ${conflict} conflicts with committed ${this.committed}`);
      this.append(conflict === entries[0].index ? entries : entries.slice(conflict - entries[0].index));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    if (!(entries[0].index > this.committed)) fail(`append at ${entries[0].index} would overwrite committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    this.configs.appended(entries);
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (!(index <= this.lastIndex())) fail(`commit ${index} beyond the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  hasEntriesToApply(): boolean {
    return this.committed > this.applying;
  }

  /**
   * Committed entries not yet handed out, at most bytesMax (at least one). A Ready
   * carries every unstable entry, and the host persists entries before applying, so
   * all of them are durable by the time they are applied.
   */
  entriesToApply(bytesMax: number): Entry[] {
    if (!this.hasEntriesToApply()) return [];
    return this.slice(this.applying + 1, this.committed + 1, bytesMax);
  }

  acceptApplying(index: number): void {
    if (!(index <= this.committed && index >= this.applying)) fail(`applying ${index} outside [${this.applying}, ${this.committed}]`);
    this.applying = index;
  }

  appliedTo(index: number): void {
    if (index <= this.applied) return;
    if (!(index <= this.applying)) fail(`applied ${index} beyond applying ${this.applying}`);
    this.applied = index;
  }

  /** Index of the last entry that is durable (storage, not shadowed by unstable state). */
  persistedLastIndex(): number {
    const unstable = this.unstable;
    if (unstable.snapshot !== undefined) return Math.min(unstable.snapshot.index - 1, this.lastIndex());
    return unstable.entries.length > 0 ? unstable.offset - 1 : this.storage.lastIndex();
  }

  /** Accepts a fully received snapshot (section 7); see Unstable.restore for `keepsStorage`. */
  restore(meta: SnapshotMeta, keepsStorage: boolean): void {
    if (!(meta.index > this.committed)) fail(`restore of snapshot ${meta.index} at or below commit ${this.committed}`);
    const committedBefore = this.committed;
    this.unstable.restore(meta, keepsStorage);
    this.committed = meta.index;
    this.applying = meta.index;
    this.configs.restored(meta.index, meta.config, keepsStorage, committedBefore);
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapshotTo(index: number): void {
    this.unstable.stableSnapshotTo(index);
  }
}

/**
 * The configurations of a log at start-up: the snapshot's (or, with no snapshot that
 * carries one, the initial configuration), then every configuration entry of the durable
 * log after it, found through the storage's list of typed entries.
 */
function loadConfigs(storage: RaftLogStorage, initialConfig: ClusterConfig): ConfigLog {
  const snapshot = storage.snapshotMeta();
  const fromSnapshot = snapshot.index > 0 && snapshot.config.voters.length > 0;
  const configs = new ConfigLog({ index: fromSnapshot ? snapshot.index : 0, config: fromSnapshot ? snapshot.config : initialConfig });
  const last = storage.lastIndex();
  for (const index of storage.typedEntryIndexes()) {
    if (index <= snapshot.index || index > last) continue;
    const entry = storage.entries(index, index + 1, Number.MAX_SAFE_INTEGER)[0];
    if (entry.type === EntryType.CLUSTER_CONFIG) configs.load(entry);
  }
  return configs;
}
