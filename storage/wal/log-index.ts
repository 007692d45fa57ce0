/**
 * The in-memory view of the log: where each live entry's record sits (segment id and
 * byte offset) and each entry's term. No payloads, no I/O.
 *
 * Memory: 4 bytes per entry (a Uint32Array of record offsets per run of consecutive
 * entries in one segment; growing arrays double, so at most 8 bytes per entry in the
 * run being appended to, and sealed runs are trimmed to size) plus terms as run-length
 * ranges (one pair of numbers per term change). Within the 16 bytes per entry budget.
 *
 * The same transitions serve replay (recovery) and live writes, so the view after a
 * reopen is the view before the crash: that is what makes the log event-sourced.
 *
 * Invariant: compactedIndex <= lastIndex, and every index in (compactedIndex, lastIndex]
 * has exactly one location and one term.
 */
import { strict as assert } from "node:assert";

/** Consecutive entries stored in one segment. */
interface Run {
  segmentId: number;
  /** Index of offsets[0]. */
  arrayFirstIndex: number;
  /** First live index of this run (>= arrayFirstIndex after a compaction trimmed it). */
  firstIndex: number;
  /** Last live index of this run. */
  lastIndex: number;
  offsets: Uint32Array;
}

/** Term of compactedIndex while replay has not yet seen the record that names it. */
export const TERM_UNKNOWN = -1;

const RUN_CAPACITY_INITIAL = 1024;

export class LogIndex {
  private compacted = 0;
  private compactedTermValue = 0;
  private last = 0;
  private readonly runs: Run[] = [];
  /** Term changes: termStarts[k] is the first index of term termValues[k]. Ascending. */
  private termStarts: number[] = [];
  private termValues: number[] = [];
  /** Indexes of live entries whose type is not 0 (rare: the Raft core's configuration entries), ascending. */
  private typed: number[] = [];

  /**
   * A view that starts after `baseIndex` with an unknown term: replay beginning at a
   * segment whose predecessors were deleted by compaction (the surviving COMPACT record
   * will name the term).
   */
  static startingAfter(baseIndex: number): LogIndex {
    const index = new LogIndex();
    index.compacted = baseIndex;
    index.last = baseIndex;
    index.compactedTermValue = baseIndex === 0 ? 0 : TERM_UNKNOWN;
    return index;
  }

  compactedIndex(): number {
    return this.compacted;
  }
  compactedTerm(): number {
    return this.compactedTermValue;
  }
  lastIndex(): number {
    return this.last;
  }
  /** Number of live entries. */
  size(): number {
    return this.last - this.compacted;
  }

  /** Term at `index` for compactedIndex <= index <= lastIndex; undefined outside. */
  term(index: number): number | undefined {
    if (index === this.compacted) return this.compactedTermValue;
    if (index < this.compacted || index > this.last) return undefined;
    const starts = this.termStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return this.termValues[lo];
  }

  /** The segment and byte offset of the live entry at `index`, or undefined. */
  locate(index: number): { segmentId: number; offset: number } | undefined {
    const run = this.findRun(index);
    if (!run) return undefined;
    return { segmentId: run.segmentId, offset: run.offsets[index - run.arrayFirstIndex] };
  }

  /** The run holding `index` and the position of its offset, for bulk reads. */
  findRun(index: number): Readonly<Run> | undefined {
    if (index <= this.compacted || index > this.last) return undefined;
    const runs = this.runs;
    let lo = 0;
    let hi = runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (runs[mid].firstIndex <= index) lo = mid;
      else hi = mid - 1;
    }
    const run = runs[lo];
    return run && run.firstIndex <= index && index <= run.lastIndex ? run : undefined;
  }

  /**
   * Appends the entry `index` (must be lastIndex + 1) stored at (segmentId, offset);
   * `typed`: its type is not 0 (kept in a short list, see typedEntryIndexes).
   */
  append(index: number, term: number, segmentId: number, offset: number, typed = false): void {
    assert.equal(index, this.last + 1, "entries are appended contiguously");
    if (typed) this.typed.push(index);
    let run = this.runs[this.runs.length - 1];
    if (!run || run.segmentId !== segmentId || run.lastIndex !== index - 1) {
      if (run) this.trim(run);
      run = { segmentId, arrayFirstIndex: index, firstIndex: index, lastIndex: index - 1, offsets: new Uint32Array(RUN_CAPACITY_INITIAL) };
      this.runs.push(run);
    }
    const position = index - run.arrayFirstIndex;
    if (position >= run.offsets.length) {
      const grown = new Uint32Array(Math.max(RUN_CAPACITY_INITIAL, run.offsets.length * 2, position + 1));
      grown.set(run.offsets);
      run.offsets = grown;
    }
    run.offsets[position] = offset;
    run.lastIndex = index;
    this.last = index;
    const termCount = this.termValues.length;
    if (termCount === 0 || this.termValues[termCount - 1] !== term) {
      this.termStarts.push(index);
      this.termValues.push(term);
    }
  }

  /**
   * Drops entries >= fromIndex (paper section 5.3). During replay `fromIndex` may reach
   * below a base of unknown term; the base then moves down with it.
   */
  truncateSuffix(fromIndex: number): void {
    if (fromIndex > this.last) return;
    if (fromIndex <= this.compacted) {
      assert.equal(this.compactedTermValue, TERM_UNKNOWN, "truncation below the compacted index");
      this.compacted = fromIndex - 1;
      this.clearEntries(fromIndex - 1);
      return;
    }
    while (this.runs.length > 0 && this.runs[this.runs.length - 1].firstIndex >= fromIndex) this.runs.pop();
    const run = this.runs[this.runs.length - 1];
    if (run && run.lastIndex >= fromIndex) run.lastIndex = fromIndex - 1;
    while (this.termStarts.length > 0 && this.termStarts[this.termStarts.length - 1] >= fromIndex) {
      this.termStarts.pop();
      this.termValues.pop();
    }
    while (this.typed.length > 0 && this.typed[this.typed.length - 1] >= fromIndex) this.typed.pop();
    this.last = fromIndex - 1;
  }

  /** Indexes of the live entries whose type is not 0, ascending. */
  typedEntryIndexes(): number[] {
    return this.typed.slice();
  }

  /**
   * Applies "log compacted up to (index, term)" (paper section 7): if the entry at
   * `index` is present with `term`, entries after it are kept; if it is absent beyond
   * the end or has another term, the whole log is discarded and lastIndex = index.
   */
  compact(index: number, term: number): void {
    if (index < this.compacted) return;
    if (index === this.compacted) {
      if (this.compactedTermValue === TERM_UNKNOWN) this.compactedTermValue = term;
      return;
    }
    if (index <= this.last && this.term(index) === term) {
      while (this.runs.length > 0 && this.runs[0].lastIndex <= index) this.runs.shift();
      if (this.runs.length > 0 && this.runs[0].firstIndex <= index) this.runs[0].firstIndex = index + 1;
      let keep = 0;
      while (keep + 1 < this.termStarts.length && this.termStarts[keep + 1] <= index + 1) keep++;
      this.termStarts = this.termStarts.slice(keep);
      this.termValues = this.termValues.slice(keep);
      if (this.termStarts.length > 0) this.termStarts[0] = Math.max(this.termStarts[0], index + 1);
      this.compacted = index;
      this.compactedTermValue = term;
      this.typed = this.typed.filter((typedIndex) => typedIndex > index);
      if (this.compacted === this.last) this.clearEntries(index);
      return;
    }
    this.compacted = index;
    this.compactedTermValue = term;
    this.clearEntries(index);
  }

  private clearEntries(lastIndex: number): void {
    this.runs.length = 0;
    this.termStarts = [];
    this.termValues = [];
    this.typed = [];
    this.last = lastIndex;
  }

  /** Shrinks a run's offsets to its size once nothing more is appended to it. */
  private trim(run: Run): void {
    const used = run.lastIndex - run.arrayFirstIndex + 1;
    if (run.offsets.length > used) run.offsets = run.offsets.slice(0, Math.max(used, 0));
  }

  /** Bytes held by the index's typed arrays and term table (an estimate for the benchmark). */
  memoryBytes(): number {
    let bytes = 0;
    for (const run of this.runs) bytes += run.offsets.byteLength + 64;
    return bytes + this.termStarts.length * 16 + 128;
  }

  /** Whether any live entry is stored in the segment `segmentId`. */
  usesSegment(segmentId: number): boolean {
    return this.runs.some((run) => run.segmentId === segmentId);
  }
}
