/**
 * The WAL facade: a segmented, append-only, event-sourced log of CRC-checked records.
 *
 * Writes (append, truncateSuffix, compact) are queued and written in batches: every
 * batch is one durable write (write + fdatasync in one O_DSYNC write) of its records plus
 * a COMMIT record (group commit). Up to two batches are in flight at once, completed in
 * order (BATCHES_IN_FLIGHT_MAX). A call's promise resolves only after the batch holding its records is
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
import { RaftwalError, RaftwalErrorCode, WalErrorCode } from "../errors.js";
import { entryCodec, type Entry } from "../../src/proto/schema.js";
import { EntryCache } from "./entry-cache.js";
import { encodedEntryBytes } from "./entry-codec.js";
import { WalCorruptionError, walError } from "./errors.js";
import {
  COMMIT_RECORD_BYTES,
  FORMAT_VERSION,
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
import { SegmentSupply } from "./segment-supply.js";
import { ActiveSegment, type Preallocation } from "./segment-writer.js";

export type { RecoveryReport } from "./recovery.js";

/** Options of `Wal.open`. Every field is optional. */
export interface WalOptions {
  /** Where files live. Default: the real disk (NodeFileSystem). */
  fs?: FileSystem;
  /** Size of a segment file, in bytes. Default 64 MiB; from 64 KiB to 1 GiB, a multiple of 8. */
  segmentSizeBytes?: number;
  /** Most record bytes in one batch (one durable write). Default 8 MiB. A single call larger than this is written alone. */
  batchBytesMax?: number;
  /** Most entries in one batch. Default 16,384. */
  batchEntriesMax?: number;
  /** How long a batch may wait for company, in microseconds. Default 0: only the current turn of the event loop. */
  batchWaitMicros?: number;
  /** Most entries kept in the cache of recent entries. Default 4,096. */
  cacheEntriesMax?: number;
  /**
   * New (not recycled) segments are sparse files; this says when the space just ahead of
   * the write offset is zero-written in the background (up to 16 MiB ahead, in steps of
   * 4 MiB; at most half a segment): "auto" (default) while batches average under 64 KiB,
   * "zeros" always, "sparse" never. A small batch's durable write into blocks already
   * allocated and written is much cheaper; for large batches writing every byte twice costs
   * more than it saves. Disk space grows with the log either way.
   */
  preallocation?: Preallocation;
  /**
   * Most compacted segments kept for reuse instead of deleted. Default 4 (with the node's
   * snapshot every 256 MiB of WAL, enough that a steady load never makes a new segment).
   * A recycled segment is overwritten in place: no preallocation write, and its blocks are
   * already allocated, so durable writes into it are cheaper. It costs disk space: up to
   * this many segments stay on disk after a compaction. 0: delete compacted segments.
   */
  recycledSegmentsMax?: number;
}

export const WAL_DEFAULTS = {
  segmentSizeBytes: SEGMENT_SIZE_BYTES_DEFAULT,
  /** Bounds one write's size and the latency a large batch adds to its first caller. */
  batchBytesMax: 8 * 1024 * 1024,
  /** Bounds the records one batch encodes between event-loop turns. */
  batchEntriesMax: 16_384,
  batchWaitMicros: 0,
  cacheEntriesMax: 4_096,
  preallocation: "auto" as Preallocation,
  recycledSegmentsMax: 4,
} as const;

/** Upper bound of batchWaitMicros: one second; longer waits only add latency. */
const BATCH_WAIT_MICROS_MAX = 1_000_000;
/**
 * Most batches written at once. With two, the next batch is encoded and written while the
 * one before is still being made durable, so the CPU work of a batch (resolving callers,
 * encoding, checksums) overlaps the disk's work on the other. Recovery knows a crash can
 * tear one batch while the next one, written meanwhile, is whole (its COMMIT is PIPELINED).
 */
const BATCHES_IN_FLIGHT_MAX = 2;
/**
 * With nothing in flight, a queue of at least twice this many bytes is written as two
 * batches rather than one, so that the second is encoded while the first is written; from
 * then on, callers resolved by one batch queue their next calls while the other is in
 * flight, and the two halves keep alternating. Below it one batch is cheaper.
 */
const PIPELINE_SPLIT_BYTES_MIN = 32 * 1024;
/** Most bytes kept zero-written ahead of the write offset of a new segment (and at most half a segment). */
const FILL_AHEAD_BYTES_MAX = 16 * 1024 * 1024;
/** Zero-written per step of filling ahead, as a fraction of the distance ahead. */
const FILL_STEPS = 4;
/**
 * "auto" preallocation fills ahead while batches average less than this. Measured here
 * (against sparse segments): 1 appender x 16 KiB 1.03x vs 0.77x of the plain preallocated
 * loop with zeros written ahead; 256 appenders (136 KB and 2 MB batches) 0.23x vs 0.34x
 * and 0.12x vs 0.15x of the batch ceiling with them, as the zeros double the write volume.
 */
const FILL_BATCH_BYTES_MAX = 64 * 1024;
/** Weight of the newest batch in the running mean of batch sizes. */
const BATCH_BYTES_MEAN_WEIGHT = 1 / 16;

/** A batch being written: its calls, in order, and the outcome of its durable write. */
interface InFlightBatch {
  ops: QueuedOp[];
  /** Settles with undefined once durable, or with the write's error. */
  settled: Promise<unknown>;
  done: boolean;
}

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
  /** Offset of the first entry's record, set when the batch is encoded (the others follow it). */
  firstEntryOffset: number;
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
  /** The running CRC its records start from (recordCrcSeed). */
  crcSeed: number;
  /** Written in the current format: once compacted it can be recycled (format 1 checksums do not tell stale records). */
  currentFormat: boolean;
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
    crcSeed: active.crcSeed,
    currentFormat: true,
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
  /** Accepted writes not yet durable: concurrent calls share one durable write (group commit). */
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
  /** Batches being written, oldest first; completed (applied, resolved) in that order. Invariant: length <= BATCHES_IN_FLIGHT_MAX. */
  private readonly inFlight: InFlightBatch[] = [];
  /** One encoding buffer per batch in flight: batch k uses buffer k mod BATCHES_IN_FLIGHT_MAX. */
  private readonly batchBuffers: Uint8Array[] = Array.from({ length: BATCHES_IN_FLIGHT_MAX }, () => new Uint8Array(64 * 1024));
  private batchesIssued = 0;
  /** Wakes the flush loop when a call is queued while it waits for a batch in flight. */
  private wakeFlush: (() => void) | undefined;
  /** Running mean of the bytes of recent batches (0 before the first): whether "auto" fills ahead. */
  private batchBytesMean = 0;

  private constructor(
    private readonly dir: string,
    private readonly fs: FileSystem,
    private readonly options: Required<Omit<WalOptions, "fs">>,
    private readonly view: LogIndex,
    private readonly segments: SegmentState[],
    private active: ActiveSegment,
    private readonly supply: SegmentSupply,
    /** What open found. */
    readonly recovery: RecoveryReport,
  ) {
    this.cache = new EntryCache(options.cacheEntriesMax);
    this.acceptedLast = view.lastIndex();
    this.acceptedCompacted = view.compactedIndex();
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
      recycledSegmentsMax: options.recycledSegmentsMax ?? WAL_DEFAULTS.recycledSegmentsMax,
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
      crcSeed: s.crcSeed,
      currentFormat: s.header.formatVersion === FORMAT_VERSION,
    }));
    const supply = await SegmentSupply.open(fs, dir, resolved, recovered.spare);
    let active: ActiveSegment;
    const last = recovered.segments[recovered.segments.length - 1];
    if (last && last.header.formatVersion === FORMAT_VERSION) {
      active = new ActiveSegment(
        last.segmentId,
        last.name,
        last.path,
        last.file,
        Math.max(last.header.segmentSizeBytes, last.committedEndOffset),
        last.header.firstIndex,
        last.committedEndOffset,
        last.crcSeed,
        // A recycled file is written throughout; a new one is known to be only up to its records.
        last.header.recycled ? last.header.segmentSizeBytes : last.committedEndOffset,
      );
    } else {
      // A new WAL, one whose only segment was never activated, or one written in format 1
      // (it goes on in a new segment: records are only ever written in the current format).
      // One step of zeros now; the rest of the distance ahead is written in the background.
      const prefill = resolved.preallocation === "sparse" ? 0 : Math.ceil(fillAheadBytes(resolved.segmentSizeBytes) / FILL_STEPS);
      const segmentId = Math.max((last?.segmentId ?? 0) + 1, supply.firstUnusedSegmentId());
      active = await ActiveSegment.activate(await supply.take(segmentId, prefill), recovered.index.lastIndex() + 1);
      segments.push(freshSegmentEntry(active));
    }
    const wal = new Wal(dir, fs, resolved, recovered.index, segments, active, supply, recovered.report);
    // A compaction may have been durable before its segment deletion was.
    await wal.deleteCompactedSegments();
    await wal.fillStart();
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
    if (lo > hi) throw walError(RaftwalErrorCode.INVALID_ARGUMENT, `entries(${lo}, ${hi}): lo > hi`);
    if (lo <= this.view.compactedIndex()) {
      throw walError(WalErrorCode.COMPACTED, `entries from ${lo}: compacted (first index ${this.firstIndex()})`);
    }
    if (hi > this.view.lastIndex() + 1) throw this.rangeError(hi - 1);
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = lo; index < hi; index++) {
      let entry = this.cache.get(index);
      let encodedBytes: number;
      if (entry) encodedBytes = this.cache.encodedBytesOf(index);
      else ({ entry, encodedBytes } = this.readEntry(index));
      if (result.length > 0 && bytes + encodedBytes > bytesMax) break;
      bytes += encodedBytes;
      result.push(entry);
    }
    return result;
  }

  private readEntry(index: number): { entry: Entry; encodedBytes: number } {
    const run = this.view.findRun(index);
    assert.ok(run, `entry ${index} is in the view`);
    const offset = run.offsets[index - run.arrayFirstIndex];
    const segment = this.segmentById(run.segmentId);
    const hint = index < run.lastIndex ? run.offsets[index + 1 - run.arrayFirstIndex] - offset : 4096;
    const read = readRecordSync(segment.file, offset, hint > 0 ? hint : 4096, segment.crcSeed);
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
    this.cache.put(entry, header.payloadBytes);
    return { entry, encodedBytes: header.payloadBytes };
  }

  private rangeError(index: number): RaftwalError {
    if (index < this.view.compactedIndex()) {
      return walError(WalErrorCode.COMPACTED, `index ${index} is compacted (first index ${this.firstIndex()})`);
    }
    return walError(WalErrorCode.UNAVAILABLE, `index ${index} is beyond the last index ${this.lastIndex()}`);
  }

  private checkReadable(): void {
    if (this.closed) throw walError(WalErrorCode.CLOSED, "the WAL is closed");
  }

  /** The error that made this instance refuse writes, if any. */
  failed(): Error | undefined {
    return this.failure;
  }

  /** Activated segments in id order (a spare is not listed; see listSegments). */
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
    if (this.barrierHolders === 0 && this.barrierWaiters === 0) return this.enqueueAppend(entries);
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
    await this.active.stopFillingAndSettle();
    await this.supply.close();
    await Promise.all(this.segments.map((s) => s.file.close().catch(() => undefined)));
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
    if (this.closed) return walError(WalErrorCode.CLOSED, "the WAL is closed");
    if (this.failure) return walError(WalErrorCode.FAILED, `the WAL failed earlier and refuses writes: ${this.failure.message}`, this.failure);
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
          RaftwalErrorCode.INVALID_ARGUMENT,
          `append at index ${first}: must be in (${this.acceptedCompacted}, ${this.acceptedLast + 1}] (compacted index, last index + 1)`,
        ),
      );
    }
    const payloadBytes: number[] = new Array(entries.length);
    let bytes = first <= this.acceptedLast ? recordBytes(0) : 0;
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k];
      if (entry.index !== first + k || !Number.isSafeInteger(entry.term) || entry.term < 0 || entry.term > INDEX_MAX) {
        return Promise.reject(walError(RaftwalErrorCode.INVALID_ARGUMENT, `append: entry ${k} has index ${entry.index} term ${entry.term}; indexes must be contiguous from ${first}`));
      }
      const size = encodedEntryBytes(entry);
      if (size > RECORD_PAYLOAD_BYTES_MAX) {
        return Promise.reject(walError(RaftwalErrorCode.INVALID_ARGUMENT, `entry ${entry.index} encodes to ${size} bytes, more than ${RECORD_PAYLOAD_BYTES_MAX}`));
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
      return Promise.reject(walError(RaftwalErrorCode.INVALID_ARGUMENT, `truncateSuffix(${fromIndex}): must be above the compacted index ${this.acceptedCompacted}`));
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
      return Promise.reject(walError(RaftwalErrorCode.INVALID_ARGUMENT, `compact(${index}, ${term}): not an index and term`));
    }
    assert.equal(this.acceptedLast, this.view.lastIndex(), "compaction runs on a drained queue");
    if (index < this.view.compactedIndex()) return Promise.resolve();
    if (index === this.view.compactedIndex()) {
      if (term === this.view.compactedTerm()) return Promise.resolve();
      return Promise.reject(walError(RaftwalErrorCode.INVALID_ARGUMENT, `compact(${index}, ${term}): already compacted at ${index} with term ${this.view.compactedTerm()}`));
    }
    const keepsSuffix = index <= this.view.lastIndex() && this.view.term(index) === term;
    this.acceptedCompacted = index;
    if (!keepsSuffix) this.acceptedLast = index;
    return this.enqueue({ kind: "compact", entries: [], payloadBytes: [], truncateFrom: 0, index, term, bytes: recordBytes(0), lastIndexAfter: this.acceptedLast });
  }

  private checkFitsSegment(bytes: number): RaftwalError | undefined {
    const capacity = this.options.segmentSizeBytes - SEGMENT_HEADER_BYTES - COMMIT_RECORD_BYTES;
    if (bytes <= capacity) return undefined;
    return walError(RaftwalErrorCode.INVALID_ARGUMENT, `one call writes ${bytes} bytes of records; a segment holds at most ${capacity}`);
  }

  private enqueue(op: Omit<QueuedOp, "firstEntryOffset" | "resolve" | "reject">): Promise<void> {
    const queued = op as QueuedOp;
    queued.firstEntryOffset = 0;
    const promise = new Promise<void>((resolve, reject) => {
      queued.resolve = resolve;
      queued.reject = reject;
    });
    this.queue.push(queued);
    this.scheduleFlush();
    this.wakeFlush?.();
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

  /**
   * Writes the queue out in batches, up to BATCHES_IN_FLIGHT_MAX at once, and completes
   * them (apply, resolve) in order as they become durable.
   */
  private async flushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0 || this.inFlight.length > 0) {
        if (this.failure) {
          await this.abandonInFlight();
          break;
        }
        if (this.queue.length > 0 && this.inFlight.length < BATCHES_IN_FLIGHT_MAX && this.issueBatch()) continue;
        if (!(await this.oldestSettledOrQueued())) continue;
        await this.completeBatch(this.inFlight.shift()!);
        // Let callers whose promises just resolved queue their next call into the next batch.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.flushing = false;
    }
    if (this.queue.length > 0) this.scheduleFlush();
    else for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Waits until the oldest batch in flight settles (true) or, if another batch may start, a call is queued (false). */
  private async oldestSettledOrQueued(): Promise<boolean> {
    const oldest = this.inFlight[0];
    if (this.inFlight.length >= BATCHES_IN_FLIGHT_MAX || this.queue.length > 0) {
      await oldest.settled;
      return true;
    }
    const queued = new Promise<void>((resolve) => (this.wakeFlush = resolve));
    await Promise.race([oldest.settled, queued]);
    this.wakeFlush = undefined;
    return oldest.done;
  }

  /** After a failure: waits for the batches still in flight and rejects their calls and the queue. */
  private async abandonInFlight(): Promise<void> {
    for (const batch of this.inFlight.splice(0)) {
      await batch.settled;
      for (const op of batch.ops) op.reject(this.writeRefusal());
    }
    this.rejectQueued();
  }

  private waitIdle(): Promise<void> {
    if (!this.flushing && !this.flushScheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private rejectQueued(): void {
    for (const op of this.queue.splice(0)) op.reject(this.writeRefusal());
  }

  /**
   * Takes calls off the queue into one batch and starts its durable write. Returns false
   * when it cannot start yet: the next call needs a new segment while batches are in flight
   * (a segment is sealed only once everything written to it is durable).
   */
  private issueBatch(): boolean {
    const commitBytes = COMMIT_RECORD_BYTES;
    if (this.queue[0].bytes + commitBytes > this.active.remainingBytes()) {
      if (this.inFlight.length > 0) return false;
      this.startBatch([], () => this.rollover());
      return true;
    }
    let budget = this.options.batchBytesMax;
    if (this.inFlight.length === 0 && BATCHES_IN_FLIGHT_MAX > 1) {
      let queued = commitBytes;
      for (let k = 0; k < this.queue.length && queued < 2 * budget; k++) queued += this.queue[k].bytes;
      if (queued >= 2 * PIPELINE_SPLIT_BYTES_MIN) budget = Math.min(budget, Math.ceil(queued / 2));
    }
    let bytes = commitBytes;
    let entryCount = 0;
    let count = 0;
    while (count < this.queue.length) {
      const op = this.queue[count];
      if (count > 0) {
        if (bytes + op.bytes > budget) break;
        if (entryCount + op.entries.length > this.options.batchEntriesMax) break;
      }
      if (bytes + op.bytes > this.active.remainingBytes()) break;
      bytes += op.bytes;
      entryCount += op.entries.length;
      count++;
    }
    assert.ok(count > 0, "the first call always fits a fresh segment (checked when it was queued)");
    const fill = this.active.fillInTheWay(bytes);
    if (fill) {
      // Zeros being written where this batch goes: wait for them (in order, like a batch).
      // The writer caught up with the filling, which is then too slow to be worth it here.
      this.active.stopFilling();
      this.startBatch([], () => fill);
      return true;
    }
    const ops = this.queue.splice(0, count);
    const buffer = this.encodeBatch(ops, bytes, this.inFlight.length > 0);
    // Idle: no batch in flight and none to encode while this one is written, so nothing
    // would overlap it (the file system may then write it without a thread-pool round trip).
    const hint = { callerIdle: this.inFlight.length === 0 && this.queue.length === 0 };
    this.startBatch(ops, () => this.active.appendBatch(buffer, hint));
    this.batchBytesMean += (bytes - this.batchBytesMean) * BATCH_BYTES_MEAN_WEIGHT;
    return true;
  }

  private startBatch(ops: QueuedOp[], write: () => Promise<void>): void {
    const batch: InFlightBatch = { ops, settled: Promise.resolve(), done: false };
    batch.settled = write().then(
      () => {
        batch.done = true;
      },
      (error: unknown) => {
        batch.done = true;
        return error ?? new Error("batch write failed");
      },
    );
    this.inFlight.push(batch);
    this.batchesIssued++;
  }

  /** A batch settled (in order): if durable, apply its calls to the view, retire compacted segments, resolve. */
  private async completeBatch(batch: InFlightBatch): Promise<void> {
    const error = await batch.settled;
    if (error !== undefined) {
      this.fail(error);
      const refusal = walError(WalErrorCode.FAILED, `WAL write failed: ${(error as Error).message}`, error);
      for (const op of batch.ops) op.reject(refusal);
      return;
    }
    let compacted = false;
    for (const op of batch.ops) {
      this.apply(op);
      if (op.kind === "compact") compacted = true;
    }
    if (compacted) {
      try {
        await this.deleteCompactedSegments();
      } catch (failure) {
        this.fail(failure);
      }
    }
    for (const op of batch.ops) op.resolve();
    this.maybePrepareSpare();
    this.maybeFillAhead();
  }

  /** Encodes the batch's records and its COMMIT (PIPELINED when another batch is in flight). */
  private encodeBatch(batch: QueuedOp[], bytes: number, pipelined: boolean): Uint8Array {
    // Buffers are reused round-robin: the batch that used this one before has completed (at
    // most BATCHES_IN_FLIGHT_MAX are in flight). Every byte of [0, bytes) is overwritten
    // below, so nothing of an earlier batch can leak.
    const slot = this.batchesIssued % BATCHES_IN_FLIGHT_MAX;
    if (this.batchBuffers[slot].length < bytes) this.batchBuffers[slot] = new Uint8Array(Math.max(bytes, this.batchBuffers[slot].length * 2));
    const buffer = this.batchBuffers[slot].subarray(0, bytes);
    const base = this.active.writeOffset();
    const seed = this.active.crcSeed;
    let at = 0;
    let records = 0;
    let lastIndexAfter = this.view.lastIndex();
    for (const op of batch) {
      if (op.kind === "append") {
        if (op.truncateFrom > 0) {
          at += encodeRecord(buffer, at, RecordType.TRUNCATE_SUFFIX, op.truncateFrom, 0, EMPTY, seed);
          records++;
        }
        op.firstEntryOffset = base + at;
        for (let k = 0; k < op.entries.length; k++) at += encodeEntryRecord(buffer, at, op.entries[k], op.payloadBytes[k], seed);
        records += op.entries.length;
      } else if (op.kind === "truncate") {
        at += encodeRecord(buffer, at, RecordType.TRUNCATE_SUFFIX, op.truncateFrom, 0, EMPTY, seed);
        records++;
      } else {
        at += encodeRecord(buffer, at, RecordType.COMPACT, op.index, op.term, EMPTY, seed);
        records++;
      }
      lastIndexAfter = op.lastIndexAfter;
    }
    at += encodeCommitRecord(buffer, at, lastIndexAfter, { batchStartOffset: base, recordCount: records }, seed, pipelined);
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
      let offset = op.firstEntryOffset;
      for (let k = 0; k < op.entries.length; k++) {
        const entry = op.entries[k];
        this.view.append(entry.index, entry.term, segment.segmentId, offset, entry.type !== 0);
        this.cache.put(entry, op.payloadBytes[k]);
        offset += recordBytes(op.payloadBytes[k]);
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

  /**
   * Starts making the next segment ready once the active one is half full (late enough
   * that a compaction in between can supply a recycled one).
   */
  private maybePrepareSpare(): void {
    if (this.failure || this.closed) return;
    if (this.active.writeOffset() < this.active.sizeBytes / 2) return;
    this.supply.prepare(this.active.segmentId + 1, this.fillWanted() ? fillAheadBytes(this.options.segmentSizeBytes) : 0);
  }

  /** Whether the space ahead of the write offset should be zero-written (see WalOptions.preallocation). */
  private fillWanted(): boolean {
    const mode = this.options.preallocation;
    return mode === "zeros" || (mode === "auto" && this.batchBytesMean < FILL_BATCH_BYTES_MAX);
  }

  /** Zero-writes the next step ahead of the write offset in the background when wanted; a failure is fatal, as any failed write. */
  private maybeFillAhead(): void {
    if (this.failure || this.closed || !this.fillWanted()) return;
    const ahead = fillAheadBytes(this.options.segmentSizeBytes);
    this.active.fillAhead(ahead, Math.ceil(ahead / FILL_STEPS))?.then(
      () => this.maybeFillAhead(),
      (error: unknown) => this.fail(error),
    );
  }

  /**
   * Zero-writes the first step ahead of the write offset now, when wanted and not done yet
   * (a segment reopened or a spare found at open), so that the next batches do not wait
   * for it; then goes on in the background.
   */
  private async fillStart(): Promise<void> {
    if (!this.fillWanted()) return;
    const ahead = fillAheadBytes(this.options.segmentSizeBytes);
    const step = Math.ceil(ahead / FILL_STEPS);
    if (this.active.filledAheadBytes() < step) await this.active.fillAhead(ahead, step);
    this.maybeFillAhead();
  }

  /** Activates the spare (made now if not yet prepared) as the new active segment. */
  private async rollover(): Promise<void> {
    // Nothing may still be written to a segment being sealed, not even zeros.
    await this.active.stopFillingAndSettle();
    const spare = await this.supply.take(this.active.segmentId + 1, this.fillWanted() ? fillAheadBytes(this.options.segmentSizeBytes) : 0);
    const active = await ActiveSegment.activate(spare, this.view.lastIndex() + 1);
    this.active = active;
    this.segments.push(freshSegmentEntry(active));
    await this.fillStart();
  }

  /**
   * Retires (recycles or deletes) the longest prefix of sealed segments whose entries are
   * all <= the compacted index, stopping at the segment holding the newest COMPACT record
   * (replay needs it to learn the compacted term), then fsyncs the directory.
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
    const retired = this.segments.splice(0, count).map((segment) => ({
      ...segment,
      recyclable: segment.currentFormat && segment.sizeBytes === this.options.segmentSizeBytes,
    }));
    await this.supply.retire(retired);
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

/** How far ahead of the write offset new segments are zero-written (when they are): FILL_AHEAD_BYTES_MAX, at most half a segment. */
function fillAheadBytes(segmentSizeBytes: number): number {
  return Math.min(FILL_AHEAD_BYTES_MAX, Math.floor(segmentSizeBytes / 2));
}

function validateOptions(options: Required<Omit<WalOptions, "fs">>): void {
  const { segmentSizeBytes, batchBytesMax, batchEntriesMax, batchWaitMicros, cacheEntriesMax, preallocation, recycledSegmentsMax } = options;
  const bad = (what: string): never => {
    throw walError(RaftwalErrorCode.INVALID_ARGUMENT, `WalOptions: ${what}`);
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
  if (preallocation !== "auto" && preallocation !== "zeros" && preallocation !== "sparse") bad(`preallocation ${String(preallocation)} must be "auto", "zeros" or "sparse"`);
  if (!Number.isInteger(recycledSegmentsMax) || recycledSegmentsMax < 0) bad(`recycledSegmentsMax ${recycledSegmentsMax} must be >= 0`);
}
