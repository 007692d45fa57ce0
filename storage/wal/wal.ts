/**
 * The WAL facade: a segmented, append-only, event-sourced log of CRC-checked records.
 *
 * Writes (append, truncateSuffix, compact) are queued and written in batches: every
 * batch is one write of its records plus a COMMIT record, then one fdatasync (group
 * commit). A call's promise resolves only after the batch holding its records is
 * durable; only then does the in-memory view (firstIndex, lastIndex, term, entries)
 * change, so reads never see data a crash could take away.
 *
 * Any failed write or fsync is fatal to the instance (`failed()` reports it; every
 * later write rejects with WAL_ERR_FAILED). The writer's state is not advanced by a
 * failed batch; recovery on the next open decides from checksums and COMMIT records
 * what survived. A failed fsync is never retried.
 */
import { strict as assert } from "node:assert";
import type { FileSystem, StorageFile } from "../fs/file-system.js";
import { NodeFileSystem } from "../fs/node-file-system.js";
import { ErrorCode, RaftwalError } from "../../src/errors.js";
import { entryCodec, type Entry } from "../../src/proto/schema.js";
import { EntryCache } from "./entry-cache.js";
import { encodedEntryBytes } from "./entry-codec.js";
import { WalCorruptionError, walError } from "./errors.js";
import {
  COMMIT_PAYLOAD_BYTES,
  INDEX_MAX,
  RECORD_HEADER_BYTES,
  RECORD_PAYLOAD_BYTES_MAX,
  RecordType,
  SEGMENT_HEADER_BYTES,
  SEGMENT_SIZE_BYTES_DEFAULT,
  SEGMENT_SIZE_BYTES_MAX,
  SEGMENT_SIZE_BYTES_MIN,
  encodeCommitRecord,
  encodeEntryRecord,
  encodeRecord,
  recordBytes,
} from "./format.js";
import { LogIndex } from "./log-index.js";
import { listSegmentFiles } from "./naming.js";
import { recover, type RecoveryReport } from "./recovery.js";
import { readRecordSync } from "./segment-reader.js";
import { ActiveSegment, createSpareSegment, type Preallocation, type SpareSegment } from "./segment-writer.js";

export type { RecoveryReport } from "./recovery.js";

/** Options of `Wal.open`. Every field is optional. */
export interface WalOptions {
  /** Where files live. Default: the real disk (NodeFileSystem). */
  fs?: FileSystem;
  /** Size segments are preallocated to, in bytes. Default 64 MiB; from 64 KiB to 1 GiB, a multiple of 8. */
  segmentSizeBytes?: number;
  /** Most record bytes in one batch (one write + one fdatasync). Default 8 MiB. A single call larger than this is written alone. */
  batchBytesMax?: number;
  /** Most entries in one batch. Default 16,384. */
  batchEntriesMax?: number;
  /** How long a batch may wait for company, in microseconds. Default 0: only the current turn of the event loop. */
  batchWaitMicros?: number;
  /** Most entries kept in the cache of recent entries. Default 4,096. */
  cacheEntriesMax?: number;
  /**
   * How new segments are preallocated: "zeros" (default; written with zeros, so small
   * batches overwrite allocated blocks and fdatasync cheaply) or "sparse" (only the size
   * is set: no extra write volume, better for sustained large-batch throughput).
   */
  preallocation?: Preallocation;
}

export const WAL_DEFAULTS = {
  segmentSizeBytes: SEGMENT_SIZE_BYTES_DEFAULT,
  /** Bounds one write's size and the latency a large batch adds to its first caller. */
  batchBytesMax: 8 * 1024 * 1024,
  /** Bounds the records one batch encodes between event-loop turns. */
  batchEntriesMax: 16_384,
  batchWaitMicros: 0,
  cacheEntriesMax: 4_096,
  preallocation: "zeros" as Preallocation,
} as const;

/** Upper bound of batchWaitMicros: one second; longer waits only add latency. */
const BATCH_WAIT_MICROS_MAX = 1_000_000;

interface QueuedOp {
  kind: "append" | "truncate" | "compact";
  /** append: the entries; the size of each one's protobuf encoding in `payloadBytes`. */
  entries: Entry[];
  payloadBytes: number[];
  /** append: truncate from entries[0].index first. truncate: the from index. */
  truncateFrom: number;
  /** compact: (index, term). */
  index: number;
  term: number;
  /** Record bytes this op adds to a batch. */
  bytes: number;
  /** The log's lastIndex once this op applies (written in the COMMIT record). */
  lastIndexAfter: number;
  /** Record offsets, filled while the batch is encoded (entries only). */
  offsets: number[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface SegmentState {
  segmentId: number;
  name: string;
  path: string;
  file: StorageFile;
  maxEntryIndex: number;
  hasCompactRecord: boolean;
  firstIndex: number;
  sizeBytes: number;
}

/** The bookkeeping of a segment that was just activated: no records yet. */
function freshSegmentEntry(active: ActiveSegment): SegmentState {
  return {
    segmentId: active.segmentId,
    name: active.name,
    path: active.path,
    file: active.file,
    maxEntryIndex: 0,
    hasCompactRecord: false,
    firstIndex: active.firstIndex,
    sizeBytes: active.sizeBytes,
  };
}

/** Header info of one segment, for the inspection tool. */
export interface SegmentInfo {
  segmentId: number;
  name: string;
  firstIndex: number;
  sizeBytes: number;
  state: "sealed" | "active";
}

export class Wal {
  private readonly cache: EntryCache;
  /** Accepted writes not yet durable: concurrent calls share one write and one fdatasync (group commit). */
  private readonly queue: QueuedOp[] = [];
  private flushing = false;
  private flushScheduled = false;
  private idleWaiters: Array<() => void> = [];
  private failure: Error | undefined;
  private closed = false;
  /**
   * A compaction decides whether the entries after its index stay by reading the durable
   * log (does it hold that index with that term?), so it waits until every write accepted
   * before it is durable, and calls made after it wait for it (they are validated against
   * the log it leaves).
   */
  private barrier: Promise<void> = Promise.resolve();
  private barrierHolders = 0;
  /** Calls queued behind the barrier that have not yet been validated and enqueued. */
  private barrierWaiters = 0;
  /**
   * The log as it will be once every accepted call is durable: what new calls are
   * validated against. Invariant: acceptedCompacted <= acceptedLast.
   */
  private acceptedLast: number;
  private acceptedCompacted: number;
  private sparePromise: Promise<SpareSegment | Error> | undefined;
  private batchBuffer = new Uint8Array(64 * 1024);

  private constructor(
    private readonly dir: string,
    private readonly fs: FileSystem,
    private readonly options: Required<Omit<WalOptions, "fs">>,
    private readonly view: LogIndex,
    private readonly segments: SegmentState[],
    private active: ActiveSegment,
    spare: SpareSegment | undefined,
    /** What open found. */
    readonly recovery: RecoveryReport,
  ) {
    this.cache = new EntryCache(options.cacheEntriesMax);
    this.acceptedLast = view.lastIndex();
    this.acceptedCompacted = view.compactedIndex();
    if (spare) this.sparePromise = Promise.resolve(spare);
  }

  /**
   * Opens (creating if needed) the WAL in `dir`: replays every record, cuts a torn tail
   * (saving the cut bytes beside the segment), and fails with WAL_ERR_CORRUPT on damage
   * to acknowledged data.
   */
  static async open(dir: string, options: WalOptions = {}): Promise<Wal> {
    const fs = options.fs ?? new NodeFileSystem();
    const resolved = {
      segmentSizeBytes: options.segmentSizeBytes ?? WAL_DEFAULTS.segmentSizeBytes,
      batchBytesMax: options.batchBytesMax ?? WAL_DEFAULTS.batchBytesMax,
      batchEntriesMax: options.batchEntriesMax ?? WAL_DEFAULTS.batchEntriesMax,
      batchWaitMicros: options.batchWaitMicros ?? WAL_DEFAULTS.batchWaitMicros,
      cacheEntriesMax: options.cacheEntriesMax ?? WAL_DEFAULTS.cacheEntriesMax,
      preallocation: options.preallocation ?? WAL_DEFAULTS.preallocation,
    };
    validateOptions(resolved);
    await fs.ensureDirectory(dir);
    const recovered = await recover(dir, fs, { repair: true, segmentSizeBytes: resolved.segmentSizeBytes });
    const segments: SegmentState[] = recovered.segments.map((s) => ({
      segmentId: s.segmentId,
      name: s.name,
      path: s.path,
      file: s.file,
      maxEntryIndex: s.maxEntryIndex,
      hasCompactRecord: s.hasCompactRecord,
      firstIndex: s.header.firstIndex,
      sizeBytes: s.header.segmentSizeBytes,
    }));
    let spare = recovered.spare;
    let active: ActiveSegment;
    const last = recovered.segments[recovered.segments.length - 1];
    if (last) {
      active = new ActiveSegment(
        last.segmentId,
        last.name,
        last.path,
        last.file,
        Math.max(last.header.segmentSizeBytes, last.committedEndOffset),
        last.header.firstIndex,
        last.committedEndOffset,
      );
    } else {
      // A new WAL (or one whose only segment was never activated).
      const firstSpare = spare ?? (await createSpareSegment(fs, dir, 1, resolved.segmentSizeBytes, resolved.preallocation));
      spare = undefined;
      active = await ActiveSegment.activate(firstSpare, recovered.index.lastIndex() + 1);
      segments.push(freshSegmentEntry(active));
    }
    const wal = new Wal(dir, fs, resolved, recovered.index, segments, active, spare, recovered.report);
    // A compaction may have been durable before its segment deletion was.
    await wal.deleteCompactedSegments();
    return wal;
  }

  // ---- reads (synchronous, durable state only) ------------------------------------

  firstIndex(): number {
    return this.view.compactedIndex() + 1;
  }

  lastIndex(): number {
    return this.view.lastIndex();
  }

  compactedIndex(): number {
    return this.view.compactedIndex();
  }

  compactedTerm(): number {
    return this.view.compactedTerm();
  }

  /** Term of the entry at `index`, for compactedIndex() <= index <= lastIndex(). */
  term(index: number): number {
    this.checkReadable();
    const term = this.view.term(index);
    if (term !== undefined) return term;
    throw this.rangeError(index);
  }

  /**
   * Entries [lo, hi), stopping before their encoded size would exceed `bytesMax` but
   * always at least one (when lo < hi). Reads segment files on demand through a bounded
   * cache; an entry whose record fails its checksum throws WAL_ERR_CORRUPT naming it.
   */
  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    this.checkReadable();
    if (lo > hi) throw walError(ErrorCode.INVALID_ARGUMENT, `entries(${lo}, ${hi}): lo > hi`);
    if (lo <= this.view.compactedIndex()) {
      throw walError(ErrorCode.WAL_COMPACTED, `entries from ${lo}: compacted (first index ${this.firstIndex()})`);
    }
    if (hi > this.view.lastIndex() + 1) throw this.rangeError(hi - 1);
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = lo; index < hi; index++) {
      const cached = this.cache.get(index) ?? this.readEntry(index);
      if (result.length > 0 && bytes + cached.encodedBytes > bytesMax) break;
      bytes += cached.encodedBytes;
      result.push(cached.entry);
    }
    return result;
  }

  private readEntry(index: number): { entry: Entry; encodedBytes: number } {
    const run = this.view.findRun(index);
    assert.ok(run, `entry ${index} is in the view`);
    const offset = run.offsets[index - run.arrayFirstIndex];
    const segment = this.segmentById(run.segmentId);
    const hint = index < run.lastIndex ? run.offsets[index + 1 - run.arrayFirstIndex] - offset : 4096;
    const read = readRecordSync(segment.file, offset, hint > 0 ? hint : 4096);
    const term = this.view.term(index);
    const fail = (reason: string): WalCorruptionError =>
      new WalCorruptionError({ segment: segment.name, path: segment.path, offset, reason, indexes: [index] });
    if ("problem" in read) throw fail(read.problem);
    const { header, bytes } = read;
    if (header.type !== RecordType.ENTRY || header.index !== index || header.term !== term) {
      throw fail(`record at the indexed offset is not entry ${index} term ${term}`);
    }
    let entry: Entry;
    try {
      entry = entryCodec.decode(bytes.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + header.payloadBytes));
    } catch (error) {
      throw new WalCorruptionError(
        { segment: segment.name, path: segment.path, offset, reason: "entry payload does not decode", indexes: [index] },
        { cause: error },
      );
    }
    if (entry.index !== index || entry.term !== term) throw fail(`entry payload names index ${entry.index} term ${entry.term}`);
    const cached = { entry, encodedBytes: header.payloadBytes };
    this.cache.put(index, cached);
    return cached;
  }

  private rangeError(index: number): RaftwalError {
    if (index < this.view.compactedIndex()) {
      return walError(ErrorCode.WAL_COMPACTED, `index ${index} is compacted (first index ${this.firstIndex()})`);
    }
    return walError(ErrorCode.WAL_UNAVAILABLE, `index ${index} is beyond the last index ${this.lastIndex()}`);
  }

  private checkReadable(): void {
    if (this.closed) throw walError(ErrorCode.WAL_CLOSED, "the WAL is closed");
  }

  /** The error that made this instance refuse writes, if any. */
  failed(): Error | undefined {
    return this.failure;
  }

  /** Activated segments in id order (a preallocated spare is not listed; see listSegments). */
  segmentInfos(): SegmentInfo[] {
    return this.segments.map((s) => ({
      segmentId: s.segmentId,
      name: s.name,
      firstIndex: s.firstIndex,
      sizeBytes: s.sizeBytes,
      state: s.segmentId === this.active.segmentId ? "active" : "sealed",
    }));
  }

  /** Indexes of the log's entries whose type is not 0 (ENTRY_NORMAL), ascending: see RaftLogStorage. */
  typedEntryIndexes(): number[] {
    return this.view.typedEntryIndexes();
  }

  /** Bytes held by the in-memory index (offsets and terms), for the benchmark. */
  indexMemoryBytes(): number {
    return this.view.memoryBytes();
  }

  // ---- writes -------------------------------------------------------------------------

  /**
   * Appends entries with contiguous indexes. If entries[0].index <= lastIndex(), the log
   * is first truncated from there (paper section 5.3), in the same batch. Resolves once
   * durable.
   */
  append(entries: Entry[]): Promise<void> {
    return this.afterBarrier(() => this.enqueueAppend(entries));
  }

  /** Drops every entry >= fromIndex (paper section 5.3). Resolves once durable. */
  truncateSuffix(fromIndex: number): Promise<void> {
    return this.afterBarrier(() => this.enqueueTruncate(fromIndex));
  }

  /**
   * Records "log compacted up to (index, term)" (paper section 7). Afterwards
   * firstIndex() = index + 1; entries after `index` are kept only if the entry at
   * `index` has `term`, else the whole log is discarded (and lastIndex() = index when
   * index is beyond it). Whole segments whose entries are all <= index are then deleted
   * and the directory fsynced. An index below compactedIndex() is a no-op.
   */
  compact(index: number, term: number): Promise<void> {
    const gate = this.barrier;
    this.barrierHolders++;
    const run = async (): Promise<void> => {
      try {
        await gate;
        await this.waitIdle();
        return await this.enqueueCompact(index, term);
      } finally {
        this.barrierHolders--;
      }
    };
    const done = run();
    this.barrier = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }

  /** Waits for every accepted write, then closes the files. Later calls fail with WAL_ERR_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.barrier;
    await this.waitIdle();
    this.closed = true;
    const spare = await this.sparePromise;
    const files = this.segments.map((s) => s.file);
    if (spare && !(spare instanceof Error)) files.push(spare.file);
    await Promise.all(files.map((file) => file.close().catch(() => undefined)));
  }

  private afterBarrier(enqueue: () => Promise<void>): Promise<void> {
    if (this.barrierHolders === 0 && this.barrierWaiters === 0) return enqueue();
    this.barrierWaiters++;
    return this.barrier.then(() => {
      this.barrierWaiters--;
      return enqueue();
    });
  }

  private writeRefusal(): RaftwalError | undefined {
    if (this.closed) return walError(ErrorCode.WAL_CLOSED, "the WAL is closed");
    if (this.failure) return walError(ErrorCode.WAL_FAILED, `the WAL failed earlier and refuses writes: ${this.failure.message}`, this.failure);
    return undefined;
  }

  private enqueueAppend(entries: Entry[]): Promise<void> {
    const refusal = this.writeRefusal();
    if (refusal) return Promise.reject(refusal);
    if (entries.length === 0) return Promise.resolve();
    const first = entries[0].index;
    if (!Number.isSafeInteger(first) || first > this.acceptedLast + 1 || first <= this.acceptedCompacted) {
      return Promise.reject(
        walError(
          ErrorCode.INVALID_ARGUMENT,
          `append at index ${first}: must be in (${this.acceptedCompacted}, ${this.acceptedLast + 1}] (compacted index, last index + 1)`,
        ),
      );
    }
    const payloadBytes: number[] = new Array(entries.length);
    let bytes = first <= this.acceptedLast ? recordBytes(0) : 0;
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k];
      if (entry.index !== first + k || !Number.isSafeInteger(entry.term) || entry.term < 0 || entry.term > INDEX_MAX) {
        return Promise.reject(walError(ErrorCode.INVALID_ARGUMENT, `append: entry ${k} has index ${entry.index} term ${entry.term}; indexes must be contiguous from ${first}`));
      }
      const size = encodedEntryBytes(entry);
      if (size > RECORD_PAYLOAD_BYTES_MAX) {
        return Promise.reject(walError(ErrorCode.INVALID_ARGUMENT, `entry ${entry.index} encodes to ${size} bytes, more than ${RECORD_PAYLOAD_BYTES_MAX}`));
      }
      payloadBytes[k] = size;
      bytes += recordBytes(size);
    }
    const truncateFrom = first <= this.acceptedLast ? first : 0;
    if (this.checkFitsSegment(bytes) === undefined) {
      this.acceptedLast = entries[entries.length - 1].index;
      return this.enqueue({ kind: "append", entries, payloadBytes, truncateFrom, index: 0, term: 0, bytes, lastIndexAfter: this.acceptedLast });
    }
    return this.enqueueAppendInParts(entries, payloadBytes, truncateFrom);
  }

  /**
   * A call larger than one segment (a follower catching up a long log with small
   * segments) is written as consecutive parts, each fitting an empty segment: the first
   * carries the truncation. After a crash a prefix of the parts may be durable: a
   * contiguous prefix of the entries, which Raft tolerates (the append is acknowledged
   * only once the whole call has resolved). A single entry larger than a segment is
   * refused: configure segments larger than the largest entry.
   */
  private enqueueAppendInParts(entries: Entry[], payloadBytes: number[], truncateFrom: number): Promise<void> {
    const parts: Array<{ from: number; to: number; bytes: number }> = [];
    let from = 0;
    let bytes = truncateFrom > 0 ? recordBytes(0) : 0;
    for (let k = 0; k < entries.length; k++) {
      const size = recordBytes(payloadBytes[k]);
      if (k > from && this.checkFitsSegment(bytes + size) !== undefined) {
        parts.push({ from, to: k, bytes });
        from = k;
        bytes = 0;
      }
      bytes += size;
      const alone = this.checkFitsSegment(bytes);
      if (alone !== undefined) return Promise.reject(alone);
    }
    parts.push({ from, to: entries.length, bytes });
    const written = parts.map((part, i) => {
      const slice = entries.slice(part.from, part.to);
      this.acceptedLast = slice[slice.length - 1].index;
      return this.enqueue({
        kind: "append",
        entries: slice,
        payloadBytes: payloadBytes.slice(part.from, part.to),
        truncateFrom: i === 0 ? truncateFrom : 0,
        index: 0,
        term: 0,
        bytes: part.bytes,
        lastIndexAfter: this.acceptedLast,
      });
    });
    return Promise.all(written).then(() => undefined);
  }

  private enqueueTruncate(fromIndex: number): Promise<void> {
    const refusal = this.writeRefusal();
    if (refusal) return Promise.reject(refusal);
    if (!Number.isSafeInteger(fromIndex) || fromIndex <= this.acceptedCompacted) {
      return Promise.reject(walError(ErrorCode.INVALID_ARGUMENT, `truncateSuffix(${fromIndex}): must be above the compacted index ${this.acceptedCompacted}`));
    }
    this.acceptedLast = Math.min(this.acceptedLast, fromIndex - 1);
    return this.enqueue({
      kind: "truncate",
      entries: [],
      payloadBytes: [],
      truncateFrom: fromIndex,
      index: 0,
      term: 0,
      bytes: recordBytes(0),
      lastIndexAfter: this.acceptedLast,
    });
  }

  /** Runs with the queue drained, so the durable view is the accepted one. */
  private enqueueCompact(index: number, term: number): Promise<void> {
    const refusal = this.writeRefusal();
    if (refusal) return Promise.reject(refusal);
    if (!Number.isSafeInteger(index) || index < 0 || !Number.isSafeInteger(term) || term < 0) {
      return Promise.reject(walError(ErrorCode.INVALID_ARGUMENT, `compact(${index}, ${term}): not an index and term`));
    }
    assert.equal(this.acceptedLast, this.view.lastIndex(), "compaction runs on a drained queue");
    if (index < this.view.compactedIndex()) return Promise.resolve();
    if (index === this.view.compactedIndex()) {
      if (term === this.view.compactedTerm()) return Promise.resolve();
      return Promise.reject(walError(ErrorCode.INVALID_ARGUMENT, `compact(${index}, ${term}): already compacted at ${index} with term ${this.view.compactedTerm()}`));
    }
    const keepsSuffix = index <= this.view.lastIndex() && this.view.term(index) === term;
    this.acceptedCompacted = index;
    if (!keepsSuffix) this.acceptedLast = index;
    return this.enqueue({ kind: "compact", entries: [], payloadBytes: [], truncateFrom: 0, index, term, bytes: recordBytes(0), lastIndexAfter: this.acceptedLast });
  }

  private checkFitsSegment(bytes: number): RaftwalError | undefined {
    const capacity = this.options.segmentSizeBytes - SEGMENT_HEADER_BYTES - recordBytes(COMMIT_PAYLOAD_BYTES);
    if (bytes <= capacity) return undefined;
    return walError(ErrorCode.INVALID_ARGUMENT, `one call writes ${bytes} bytes of records; a segment holds at most ${capacity}`);
  }

  private enqueue(op: Omit<QueuedOp, "offsets" | "resolve" | "reject">): Promise<void> {
    const queued = op as QueuedOp;
    queued.offsets = [];
    const promise = new Promise<void>((resolve, reject) => {
      queued.resolve = resolve;
      queued.reject = reject;
    });
    this.queue.push(queued);
    this.scheduleFlush();
    return promise;
  }

  // ---- group commit -------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushing || this.flushScheduled) return;
    this.flushScheduled = true;
    const run = (): void => {
      this.flushScheduled = false;
      void this.flushLoop();
    };
    if (this.options.batchWaitMicros > 0) setTimeout(run, this.options.batchWaitMicros / 1000);
    else setImmediate(run);
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        if (this.failure) {
          this.rejectQueued();
          break;
        }
        await this.flushBatch();
        // Let callers whose promises just resolved queue their next call into the next batch.
        if (this.queue.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.flushing = false;
    }
    if (this.queue.length > 0) this.scheduleFlush();
    else for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private waitIdle(): Promise<void> {
    if (!this.flushing && !this.flushScheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private rejectQueued(): void {
    for (const op of this.queue.splice(0)) op.reject(this.writeRefusal());
  }

  /** Takes ops off the queue into one batch, writes it, syncs, applies, resolves. */
  private async flushBatch(): Promise<void> {
    const commitBytes = recordBytes(COMMIT_PAYLOAD_BYTES);
    let batch: QueuedOp[] = [];
    try {
      if (this.queue[0].bytes + commitBytes > this.active.remainingBytes()) await this.rollover();
      let bytes = commitBytes;
      let entryCount = 0;
      let count = 0;
      while (count < this.queue.length) {
        const op = this.queue[count];
        if (count > 0) {
          if (bytes + op.bytes > this.options.batchBytesMax) break;
          if (entryCount + op.entries.length > this.options.batchEntriesMax) break;
        }
        if (bytes + op.bytes > this.active.remainingBytes()) break;
        bytes += op.bytes;
        entryCount += op.entries.length;
        count++;
      }
      assert.ok(count > 0, "the first call always fits a fresh segment (checked when it was queued)");
      batch = this.queue.splice(0, count);
      const buffer = this.encodeBatch(batch, bytes);
      await this.active.appendBatch(buffer);
    } catch (error) {
      this.fail(error);
      const refusal = walError(ErrorCode.WAL_FAILED, `WAL write failed: ${(error as Error).message}`, error);
      for (const op of batch) op.reject(refusal);
      batch = [];
      this.rejectQueued();
      return;
    }
    // Durable: apply to the view, in order, then resolve.
    let compacted = false;
    for (const op of batch) {
      this.apply(op);
      if (op.kind === "compact") compacted = true;
    }
    if (compacted) {
      try {
        await this.deleteCompactedSegments();
      } catch (error) {
        this.fail(error);
      }
    }
    for (const op of batch) op.resolve();
    this.maybePrepareSpare();
  }

  private encodeBatch(batch: QueuedOp[], bytes: number): Uint8Array {
    // One buffer reused by every batch (batches are written one at a time); every byte of
    // [0, bytes) is overwritten below, so nothing of an earlier batch can leak.
    if (this.batchBuffer.length < bytes) this.batchBuffer = new Uint8Array(Math.max(bytes, this.batchBuffer.length * 2));
    const buffer = this.batchBuffer.subarray(0, bytes);
    const base = this.active.writeOffset();
    let at = 0;
    let records = 0;
    let lastIndexAfter = this.view.lastIndex();
    for (const op of batch) {
      if (op.kind === "append") {
        if (op.truncateFrom > 0) {
          at += encodeRecord(buffer, at, RecordType.TRUNCATE_SUFFIX, op.truncateFrom, 0, EMPTY);
          records++;
        }
        for (let k = 0; k < op.entries.length; k++) {
          op.offsets.push(base + at);
          at += encodeEntryRecord(buffer, at, op.entries[k], op.payloadBytes[k]);
        }
        records += op.entries.length;
      } else if (op.kind === "truncate") {
        at += encodeRecord(buffer, at, RecordType.TRUNCATE_SUFFIX, op.truncateFrom, 0, EMPTY);
        records++;
      } else {
        at += encodeRecord(buffer, at, RecordType.COMPACT, op.index, op.term, EMPTY);
        records++;
      }
      lastIndexAfter = op.lastIndexAfter;
    }
    at += encodeCommitRecord(buffer, at, lastIndexAfter, { batchStartOffset: base, recordCount: records });
    assert.equal(at, bytes, "batch size as computed");
    return buffer;
  }

  /** The same transitions as replay (recovery.ts), on durable data. */
  private apply(op: QueuedOp): void {
    const segment = this.segments[this.segments.length - 1];
    if (op.kind === "append") {
      if (op.truncateFrom > 0) {
        this.cache.dropRange(op.truncateFrom, this.view.lastIndex());
        this.view.truncateSuffix(op.truncateFrom);
      }
      for (let k = 0; k < op.entries.length; k++) {
        const entry = op.entries[k];
        this.view.append(entry.index, entry.term, segment.segmentId, op.offsets[k], entry.type !== 0);
        this.cache.put(entry.index, { entry, encodedBytes: op.payloadBytes[k] });
      }
      segment.maxEntryIndex = Math.max(segment.maxEntryIndex, op.entries[op.entries.length - 1].index);
    } else if (op.kind === "truncate") {
      this.cache.dropRange(op.truncateFrom, this.view.lastIndex());
      this.view.truncateSuffix(op.truncateFrom);
    } else {
      const lastBefore = this.view.lastIndex();
      const compactedBefore = this.view.compactedIndex();
      this.view.compact(op.index, op.term);
      segment.hasCompactRecord = true;
      if (this.view.lastIndex() !== lastBefore || this.view.size() === 0) this.cache.clear();
      else this.cache.dropRange(compactedBefore + 1, op.index);
    }
    // Invariant: the view matches what calls were validated against once the queue drains.
    assert.ok(this.view.compactedIndex() <= this.view.lastIndex());
  }

  private fail(error: unknown): void {
    this.failure ??= error instanceof Error ? error : new Error(String(error));
  }

  // ---- segments ----------------------------------------------------------------------

  /** Starts preallocating the next segment once the active one is half full. */
  private maybePrepareSpare(): void {
    if (this.sparePromise || this.failure || this.closed) return;
    if (this.active.writeOffset() < this.active.sizeBytes / 2) return;
    this.sparePromise = createSpareSegment(this.fs, this.dir, this.active.segmentId + 1, this.options.segmentSizeBytes, this.options.preallocation).catch(
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
  }

  /** Activates the spare (creating it now if not yet prepared) as the new active segment. */
  private async rollover(): Promise<void> {
    if (!this.sparePromise) {
      this.sparePromise = createSpareSegment(this.fs, this.dir, this.active.segmentId + 1, this.options.segmentSizeBytes, this.options.preallocation).catch(
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      );
    }
    const spare = await this.sparePromise;
    this.sparePromise = undefined;
    if (spare instanceof Error) throw spare;
    assert.equal(spare.segmentId, this.active.segmentId + 1, "the spare follows the active segment");
    const active = await ActiveSegment.activate(spare, this.view.lastIndex() + 1);
    this.active = active;
    this.segments.push(freshSegmentEntry(active));
  }

  /**
   * Deletes the longest prefix of sealed segments whose entries are all <= the compacted
   * index, stopping at the segment holding the newest COMPACT record (replay needs it to
   * learn the compacted term), then fsyncs the directory.
   */
  private async deleteCompactedSegments(): Promise<void> {
    let newestCompact = -1;
    for (let k = this.segments.length - 1; k >= 0; k--) {
      if (this.segments[k].hasCompactRecord) {
        newestCompact = k;
        break;
      }
    }
    let count = 0;
    while (
      count < this.segments.length - 1 &&
      count < newestCompact &&
      this.segments[count].maxEntryIndex <= this.view.compactedIndex() &&
      !this.view.usesSegment(this.segments[count].segmentId)
    ) {
      count++;
    }
    if (count === 0) return;
    const doomed = this.segments.splice(0, count);
    for (const segment of doomed) {
      await segment.file.close().catch(() => undefined);
      await this.fs.remove(segment.path);
    }
    await this.fs.syncDirectory(this.dir);
  }

  private segmentById(segmentId: number): SegmentState {
    const segments = this.segments;
    const first = segments[0].segmentId;
    const segment = segments[segmentId - first];
    assert.ok(segment && segment.segmentId === segmentId, `segment ${segmentId} is open`);
    return segment;
  }

  /** Segment files in the directory (for tests and the inspection tool). */
  async listSegmentNames(): Promise<string[]> {
    return (await listSegmentFiles(this.dir, this.fs)).map((ref) => ref.name);
  }
}

const EMPTY = new Uint8Array(0);

function validateOptions(options: Required<Omit<WalOptions, "fs">>): void {
  const { segmentSizeBytes, batchBytesMax, batchEntriesMax, batchWaitMicros, cacheEntriesMax, preallocation } = options;
  const bad = (what: string): never => {
    throw walError(ErrorCode.INVALID_ARGUMENT, `WalOptions: ${what}`);
  };
  if (!Number.isInteger(segmentSizeBytes) || segmentSizeBytes < SEGMENT_SIZE_BYTES_MIN || segmentSizeBytes > SEGMENT_SIZE_BYTES_MAX || segmentSizeBytes % 8 !== 0) {
    bad(`segmentSizeBytes ${segmentSizeBytes} must be a multiple of 8 in [${SEGMENT_SIZE_BYTES_MIN}, ${SEGMENT_SIZE_BYTES_MAX}]`);
  }
  if (!Number.isInteger(batchBytesMax) || batchBytesMax < 1) bad(`batchBytesMax ${batchBytesMax} must be a positive integer`);
  if (!Number.isInteger(batchEntriesMax) || batchEntriesMax < 1) bad(`batchEntriesMax ${batchEntriesMax} must be a positive integer`);
  if (!Number.isFinite(batchWaitMicros) || batchWaitMicros < 0 || batchWaitMicros > BATCH_WAIT_MICROS_MAX) {
    bad(`batchWaitMicros ${batchWaitMicros} must be in [0, ${BATCH_WAIT_MICROS_MAX}]`);
  }
  if (!Number.isInteger(cacheEntriesMax) || cacheEntriesMax < 0) bad(`cacheEntriesMax ${cacheEntriesMax} must be >= 0`);
  if (preallocation !== "zeros" && preallocation !== "sparse") bad(`preallocation ${String(preallocation)} must be "zeros" or "sparse"`);
}
