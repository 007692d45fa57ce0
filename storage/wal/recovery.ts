/**
 * Recovery: rebuilds the in-memory view of a WAL directory by replaying every record,
 * and finds (optionally repairs) a torn tail. The procedure, step by step:
 *
 *  1. List `segment-*.wal` files. Ids must be consecutive. Other names are ignored.
 *  2. Read each header. The last file may be blank (a prepared spare never activated)
 *     or hold a header torn while being activated: both are spares if the first record's
 *     place is zero and no record of that segment follows (stale records of a recycled
 *     file's earlier life fail their checksum). Any other bad header is corruption.
 *  3. Start the view after the first segment's first index - 1 (earlier segments were
 *     deleted by a compaction whose COMPACT record survives and names that term).
 *  4. Replay each segment's records in order. Records are buffered per batch and
 *     applied only when the batch's COMMIT record arrives and matches the batch
 *     (start offset and record count). Entry indexes must continue the log.
 *  5. In every segment but the last active one, the records must end in a COMMIT
 *     followed by zero space (a recycled segment: followed by no record of its own);
 *     anything else is corruption.
 *  6. In the last active segment, let B be the end of the last valid COMMIT. If a bad
 *     record, records without COMMIT, or non-zero bytes follow B, survey the rest of
 *     the file: a checksum-valid COMMIT after the damage means acknowledged data is
 *     damaged (corruption), unless it is the only one, PIPELINED and after B (two batches
 *     were in flight: see acknowledgedAfterDamage), or the bad record is where the last
 *     batch's COMMIT belongs and differs from it in a bit or two that no cut explains
 *     (commit-damage.ts: written whole, damaged later); otherwise it is a torn tail [B, end of
 *     its data): the last non-zero byte, or in a recycled segment the end of its last
 *     record (the other non-zero bytes are stale, not torn).
 *  7. Repair (read-write mode only): copy the torn bytes to `<segment>.torn-<B>`,
 *     fsync it and the directory, overwrite [B, end) with zeros, fsync the segment.
 *  8. Corruption stops recovery with WAL_ERR_CORRUPT naming segment, offset, indexes.
 */
import { posix } from "node:path";
import type { FileSystem, StorageFile } from "../fs/file-system.js";
import { WalErrorCode } from "../errors.js";
import { WalCorruptionError, walError } from "./errors.js";
import {
  FORMAT_VERSION_UNSEEDED,
  RECORD_TYPE_NAMES,
  RecordType,
  SEGMENT_HEADER_BYTES,
  decodeCommitPayload,
  recordCrcSeed,
  COMMIT_RECORD_BYTES,
  RECORD_HEADER_BYTES,
  type RecordHeader,
  type SegmentHeader,
} from "./format.js";
import { encodedEntryType } from "./entry-codec.js";
import { LogIndex, TERM_UNKNOWN } from "./log-index.js";
import { commitDamagedAfterWrite, expectedCommitRecords } from "./commit-damage.js";
import { listSegmentFiles, tornTailFileName, type SegmentFileRef } from "./naming.js";
import { readFully, readSegmentHeader, scanRecords, surveyTail, type FoundCommit, type RecordVisitor, type ScanEnd } from "./segment-reader.js";
import { writeZeros, type SpareSegment } from "./segment-writer.js";

export interface RecoveredSegment {
  segmentId: number;
  name: string;
  path: string;
  file: StorageFile;
  header: SegmentHeader;
  /** The running CRC its records start from (recordCrcSeed of its id and format version). */
  crcSeed: number;
  /** Offset just past the last committed batch: where the next batch goes. */
  committedEndOffset: number;
  /** Highest entry index written in this segment, 0 if none: compaction deletes it once this is compacted. */
  maxEntryIndex: number;
  /** Whether the segment holds a COMPACT record. */
  hasCompactRecord: boolean;
  /** Records in committed batches (COMMIT records included). */
  recordCount: number;
}

export interface TornTail {
  segment: string;
  path: string;
  /** Byte offset of the cut: the end of the last complete batch. */
  offset: number;
  /** Bytes cut (from the offset to the last non-zero byte). */
  bytes: number;
  reason: string;
  /** Where the cut bytes were saved (repair mode only). */
  savedTo?: string;
}

/** What open found. */
export interface RecoveryReport {
  segments: number;
  /** Live entries after replay. */
  entries: number;
  firstIndex: number;
  lastIndex: number;
  compactedIndex: number;
  /** Set when a torn tail was found (and, when opened for writing, cut). */
  tornTail?: TornTail;
  /** Bytes of segment data replayed. */
  bytesReplayed: number;
  durationMs: number;
}

export interface RecoveryResult {
  index: LogIndex;
  segments: RecoveredSegment[];
  /** A spare (blank header) following the last segment, ready to activate. */
  spare?: SpareSegment;
  /** Files the recovery left behind that the caller should remove (a spare of the wrong size). */
  report: RecoveryReport;
}

export interface RecoveryOptions {
  /** Open files read-write and cut a torn tail. */
  repair: boolean;
  /** Size a kept spare must have (repair mode: a spare of another size is removed). Unset: keep any spare. */
  segmentSizeBytes?: number;
  /** Called after each segment is replayed (segments done, segments in all). */
  onProgress?: (segmentsDone: number, segmentsTotal: number) => void;
}

function corruption(ref: { name: string; path: string }, offset: number, reason: string, indexes: number[] = []): WalCorruptionError {
  return new WalCorruptionError({ segment: ref.name, path: ref.path, offset, reason, indexes });
}

/**
 * Names the entries a bad record affects: an entry record by where the log was expected
 * to continue; any other record by the entries of the batch it belongs to (they lose their
 * COMMIT). A bad record's own header is not trusted: its checksum covers header and
 * payload, so a mismatch does not say which was damaged (a flipped bit in its index can
 * name any index). The reason quotes it, and says when it is not the index expected there.
 */
function describeBad(reason: string, header: RecordHeader | undefined, expectedIndex: number, batchEntries: number[]): { reason: string; indexes: number[] } {
  if (header && header.type === RecordType.ENTRY) {
    const named = `index ${header.index}, term ${header.term}`;
    const where = header.index === expectedIndex ? named : `${named}, where the log expected index ${expectedIndex}: the header is damaged too`;
    return { reason: `${reason} in entry record (${where})`, indexes: [expectedIndex] };
  }
  const indexes = batchEntries.length > 0 ? batchEntries : [expectedIndex];
  if (header) return { reason: `${reason} in ${RECORD_TYPE_NAMES[header.type] ?? "unknown"} record`, indexes };
  return { reason, indexes: [...new Set([...batchEntries, expectedIndex])] };
}

export async function recover(dir: string, fs: FileSystem, options: RecoveryOptions): Promise<RecoveryResult> {
  const started = performance.now();
  const refs = await listSegmentFiles(dir, fs);
  const opened: StorageFile[] = [];
  try {
    return await replay(dir, fs, refs, options, opened, started);
  } catch (error) {
    await Promise.all(opened.map((file) => file.close().catch(() => undefined)));
    throw error;
  }
}

/** A segment whose header decoded. */
interface HeadedSegment {
  ref: SegmentFileRef;
  file: StorageFile;
  header: SegmentHeader;
}

/** The last file when it holds no valid header: a blank spare, or a header torn while being activated. */
export interface SpareCandidate {
  ref: SegmentFileRef;
  file: StorageFile;
  /** One past the last non-zero byte of the header (0 when blank). */
  headerEndOffset: number;
  fileBytes: number;
  /** Non-zero bytes follow the header: stale records of a recycled file's earlier life. */
  recycled: boolean;
}

async function replay(
  dir: string,
  fs: FileSystem,
  refs: SegmentFileRef[],
  options: RecoveryOptions,
  opened: StorageFile[],
  started: number,
): Promise<RecoveryResult> {
  // Steps 1-2.
  const { headed, spareCandidate } = await readHeaders(fs, refs, options, opened);
  // Step 3.
  const index = headed.length === 0 ? new LogIndex() : LogIndex.startingAfter(headed[0].header.firstIndex - 1);
  const segments: RecoveredSegment[] = [];
  let tornTail: TornTail | undefined;
  let bytesReplayed = 0;
  // Steps 4-7.
  const state = newReplayState(index);
  for (let k = 0; k < headed.length; k++) {
    const { ref, header } = headed[k];
    if (k > 0 && header.firstIndex !== index.lastIndex() + 1) {
      throw corruption(ref, 0, `segment first index ${header.firstIndex} does not continue the log (last index ${index.lastIndex()})`);
    }
    const end = await replaySegment(state, headed[k]);
    const segment = state.segment!;
    bytesReplayed += segment.committedEndOffset;
    if (k < headed.length - 1) await checkSealedEnd(state, end);
    else tornTail = await checkActiveEnd(fs, dir, state, end, options.repair);
    segments.push(segment);
    options.onProgress?.(k + 1, headed.length);
  }
  if (index.compactedTerm() === TERM_UNKNOWN) {
    const first = headed[0];
    throw corruption(first.ref, 0, `log starts after index ${first.header.firstIndex - 1} but no compact record names its term`);
  }
  const settled = spareCandidate ? await settleSpare(fs, dir, spareCandidate, options) : {};
  tornTail ??= settled.tornTail;

  const report: RecoveryReport = {
    segments: segments.length,
    entries: index.size(),
    firstIndex: index.compactedIndex() + 1,
    lastIndex: index.lastIndex(),
    compactedIndex: index.compactedIndex(),
    bytesReplayed,
    durationMs: performance.now() - started,
  };
  if (tornTail) report.tornTail = tornTail;
  const result: RecoveryResult = { index, segments, report };
  if (settled.spare) result.spare = settled.spare;
  return result;
}

/**
 * Steps 1-2: opens every segment in order and reads its header. Ids must be consecutive;
 * only the last file may lack a valid header (a spare, or a header torn while activating).
 */
async function readHeaders(
  fs: FileSystem,
  refs: SegmentFileRef[],
  options: RecoveryOptions,
  opened: StorageFile[],
): Promise<{ headed: HeadedSegment[]; spareCandidate?: SpareCandidate }> {
  const headed: HeadedSegment[] = [];
  for (let k = 0; k < refs.length; k++) {
    const ref = refs[k];
    if (k > 0 && ref.segmentId !== refs[k - 1].segmentId + 1) {
      throw corruption(ref, 0, `segment ${refs[k - 1].segmentId + 1} is missing (found ${refs[k - 1].name} then ${ref.name})`);
    }
    const file = await fs.open(ref.path, { readOnly: !options.repair });
    opened.push(file);
    const decoded = await readSegmentHeader(file);
    if (decoded.kind === "ok") {
      if (decoded.header.segmentId !== ref.segmentId) {
        throw corruption(ref, 0, `segment header names segment ${decoded.header.segmentId}`);
      }
      headed.push({ ref, file, header: decoded.header });
      continue;
    }
    if (k === refs.length - 1) {
      const spareCandidate = await asSpare(ref, file);
      if (spareCandidate) return { headed, spareCandidate };
    }
    if (decoded.kind === "bad" && refs.length === 1 && headed.length === 0) {
      throw walError(WalErrorCode.NOT_A_WAL, `${ref.path} is not a raftwal segment (${decoded.reason})`);
    }
    throw corruption(ref, 0, decoded.kind === "bad" ? decoded.reason : "blank segment header before the last segment");
  }
  return { headed };
}

/**
 * The last file as a spare, if it is one: its header is blank (prepared, never activated)
 * or torn while being activated. The header is made durable before any record, so the
 * first record's place must be zero and no record of this segment (in either format) may
 * follow; anything else after it is zero space or, in a recycled file, stale records of its
 * earlier life (they fail this segment's checksum).
 */
export async function asSpare(ref: SegmentFileRef, file: StorageFile): Promise<SpareCandidate | undefined> {
  const head = new Uint8Array(SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES);
  const headBytes = await readFully(file, head, 0);
  if (head.subarray(SEGMENT_HEADER_BYTES, headBytes).some((byte) => byte !== 0)) return undefined;
  const seeds = [recordCrcSeed(ref.segmentId), recordCrcSeed(ref.segmentId, FORMAT_VERSION_UNSEEDED)];
  const survey = await surveyTail(file, SEGMENT_HEADER_BYTES, SEGMENT_HEADER_BYTES, { seeds, recycled: true });
  if (survey.dataEndOffset > SEGMENT_HEADER_BYTES) return undefined;
  const headerEndOffset = head.subarray(0, Math.min(headBytes, SEGMENT_HEADER_BYTES)).findLastIndex((byte) => byte !== 0) + 1;
  const anyData = await surveyTail(file, SEGMENT_HEADER_BYTES, SEGMENT_HEADER_BYTES, { seeds: [], recycled: false });
  return { ref, file, headerEndOffset, fileBytes: survey.fileBytes, recycled: anyData.dataEndOffset > SEGMENT_HEADER_BYTES };
}

/**
 * The replay of one segment (step 4), shared by the record visitor and the end checks.
 * One per recovery, reset per segment: records are buffered in parallel arrays, reused, so
 * that replay allocates nothing per record.
 */
interface ReplayState {
  index: LogIndex;
  ref: SegmentFileRef | undefined;
  file: StorageFile | undefined;
  segment: RecoveredSegment | undefined;
  /** Offset where the batch being read starts. */
  batchStart: number;
  /** The index the next entry record should have (for naming damaged records). */
  expectedIndex: number;
  /** The batch being read, COMMIT not yet seen: type, header index, term and offset of each record. */
  pendingType: number[];
  pendingIndex: number[];
  pendingTerm: number[];
  pendingOffset: number[];
  /** Entry records whose Entry.type is not 0 (configuration entries): the index lists them. */
  pendingTyped: boolean[];
  /** Set when a committed batch does not apply (the scan stops on it). */
  applyError: WalCorruptionError | undefined;
  /** The visitor handed to scanRecords, bound to this state once. */
  visit: RecordVisitor;
}

function newReplayState(index: LogIndex): ReplayState {
  const state: ReplayState = {
    index,
    ref: undefined,
    file: undefined,
    segment: undefined,
    batchStart: SEGMENT_HEADER_BYTES,
    expectedIndex: 0,
    pendingType: [],
    pendingIndex: [],
    pendingTerm: [],
    pendingOffset: [],
    pendingTyped: [],
    applyError: undefined,
    visit: (offset, record, bytes, at) => (record.type === RecordType.COMMIT ? commitBatch(state, offset, bytes, at) : bufferRecord(state, offset, record, bytes, at)),
  };
  return state;
}

/** Step 4 for one segment: scans its records, applying each batch at its COMMIT. Returns where the scan ended. */
async function replaySegment(state: ReplayState, { ref, file, header }: HeadedSegment): Promise<ScanEnd> {
  state.ref = ref;
  state.file = file;
  const crcSeed = recordCrcSeed(ref.segmentId, header.formatVersion);
  state.segment = {
    segmentId: ref.segmentId,
    name: ref.name,
    path: ref.path,
    file,
    header,
    crcSeed,
    committedEndOffset: SEGMENT_HEADER_BYTES,
    maxEntryIndex: 0,
    hasCompactRecord: false,
    recordCount: 0,
  };
  state.batchStart = SEGMENT_HEADER_BYTES;
  state.expectedIndex = state.index.lastIndex() + 1;
  clearPending(state);
  const end = await scanRecords(file, SEGMENT_HEADER_BYTES, crcSeed, state.visit);
  if (state.applyError) throw state.applyError;
  return end;
}

function bufferRecord(state: ReplayState, offset: number, record: RecordHeader, bytes: Uint8Array, at: number): void {
  state.pendingType.push(record.type);
  state.pendingIndex.push(record.index);
  state.pendingTerm.push(record.term);
  state.pendingOffset.push(offset);
  state.pendingTyped.push(record.type === RecordType.ENTRY && encodedEntryType(bytes, at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + record.payloadBytes) !== 0);
  if (record.type === RecordType.ENTRY) state.expectedIndex = record.index + 1;
  else if (record.type === RecordType.TRUNCATE_SUFFIX) state.expectedIndex = Math.min(state.expectedIndex, record.index);
  else state.expectedIndex = Math.max(state.expectedIndex, record.index + 1);
}

/** A COMMIT record: checks it matches the buffered batch, then applies the batch. A string stops the scan. */
function commitBatch(state: ReplayState, offset: number, bytes: Uint8Array, at: number): string | undefined {
  const info = decodeCommitPayload(bytes, at);
  const count = state.pendingType.length;
  if (info.batchStartOffset !== state.batchStart || info.recordCount !== count) {
    return `commit record does not match its batch (start ${info.batchStartOffset}, ${info.recordCount} records; expected start ${state.batchStart}, ${count} records)`;
  }
  const stop = applyBatch(state);
  if (stop !== undefined) return stop;
  const segment = state.segment!;
  segment.recordCount += count + 1;
  clearPending(state);
  state.batchStart = offset + COMMIT_RECORD_BYTES;
  segment.committedEndOffset = state.batchStart;
  state.expectedIndex = state.index.lastIndex() + 1;
  return undefined;
}

/** Applies a whole batch to the index; on a record that does not apply, sets `applyError` and returns why the scan stops. */
function applyBatch(state: ReplayState): string | undefined {
  const { index, pendingType, pendingIndex, pendingTerm, pendingOffset, pendingTyped } = state;
  const ref = state.ref!;
  const segment = state.segment!;
  for (let r = 0; r < pendingType.length; r++) {
    const type = pendingType[r];
    const at = pendingIndex[r];
    if (type === RecordType.ENTRY) {
      if (at !== index.lastIndex() + 1) {
        state.applyError = corruption(ref, pendingOffset[r], `entry index ${at} does not continue the log (last index ${index.lastIndex()})`, [at]);
        return "entry out of sequence";
      }
      index.append(at, pendingTerm[r], ref.segmentId, pendingOffset[r], pendingTyped[r]);
      if (at > segment.maxEntryIndex) segment.maxEntryIndex = at;
    } else if (type === RecordType.TRUNCATE_SUFFIX) {
      if (at <= index.compactedIndex() && index.compactedTerm() !== TERM_UNKNOWN) {
        state.applyError = corruption(ref, pendingOffset[r], `truncate-suffix from ${at} at or below the compacted index ${index.compactedIndex()}`, [at]);
        return "truncation below compaction";
      }
      index.truncateSuffix(at);
    } else {
      index.compact(at, pendingTerm[r]);
      segment.hasCompactRecord = true;
    }
  }
  return undefined;
}

function clearPending(state: ReplayState): void {
  state.pendingType.length = state.pendingIndex.length = state.pendingTerm.length = state.pendingOffset.length = state.pendingTyped.length = 0;
}

/** Names what a bad record at the end of the scan damages (see describeBad). */
function describeBadEnd(state: ReplayState, end: ScanEnd & { kind: "bad" }): { reason: string; indexes: number[] } {
  return describeBad(end.reason, end.header, state.expectedIndex, pendingIndexesOf(state.pendingType, state.pendingIndex));
}

/**
 * Step 5: a sealed segment's records end in a COMMIT followed by zero space; a recycled
 * one's go on with stale bytes (a bad record), none of which may be a record of its own.
 */
async function checkSealedEnd(state: ReplayState, end: ScanEnd): Promise<void> {
  const ref = state.ref!;
  const segment = state.segment!;
  if (!segment.header.recycled && end.kind === "bad") {
    const named = describeBadEnd(state, end);
    throw corruption(ref, end.offset, named.reason, named.indexes);
  }
  if (state.pendingType.length > 0) {
    throw corruption(ref, state.batchStart, "batch without a commit record in a sealed segment", pendingIndexesOf(state.pendingType, state.pendingIndex));
  }
  const committedEnd = segment.committedEndOffset;
  if (segment.header.recycled && (await surveyTail(state.file!, committedEnd, committedEnd, { seeds: [segment.crcSeed], recycled: true })).dataEndOffset > committedEnd) {
    throw corruption(ref, end.offset, "records after the last commit of a sealed segment", [state.expectedIndex]);
  }
}

/**
 * Steps 6-7 for the last active segment: whatever follows the last complete batch is a torn
 * tail (cut in repair mode) unless a complete batch follows the damage (corruption).
 */
async function checkActiveEnd(fs: FileSystem, dir: string, state: ReplayState, end: ScanEnd, repair: boolean): Promise<TornTail | undefined> {
  const ref = state.ref!;
  const file = state.file!;
  const segment = state.segment!;
  const committedEnd = segment.committedEndOffset;
  const searchFrom = end.kind === "bad" ? end.offset + 8 : end.offset;
  const survey = await surveyTail(file, committedEnd, searchFrom, { seeds: [segment.crcSeed], recycled: segment.header.recycled });
  const proof = acknowledgedAfterDamage(survey.commits, committedEnd);
  if (proof !== undefined) {
    if (end.kind === "bad") {
      const named = describeBadEnd(state, end);
      throw corruption(ref, end.offset, `${named.reason} (a complete batch follows at byte offset ${proof})`, named.indexes);
    }
    throw corruption(ref, end.offset, `unwritten space followed by a complete batch at byte offset ${proof}`, [state.expectedIndex]);
  }
  if (end.kind === "bad" && (await lastCommitDamaged(state, end.offset))) {
    const indexes = pendingIndexesOf(state.pendingType, state.pendingIndex);
    throw corruption(ref, end.offset, "the last batch's commit record is damaged: a few bits differ from the commit it was written with (a torn write leaves no such record)", indexes);
  }
  if (survey.dataEndOffset <= committedEnd) return undefined;
  const reason =
    end.kind === "bad"
      ? describeBadEnd(state, end).reason
      : state.pendingType.length > 0
        ? "batch without a commit record"
        : "non-zero bytes in unwritten space";
  const tornTail: TornTail = { segment: ref.name, path: ref.path, offset: committedEnd, bytes: survey.dataEndOffset - committedEnd, reason };
  if (repair) tornTail.savedTo = await cutTornTail(fs, dir, file, ref, committedEnd, survey.dataEndOffset);
  return tornTail;
}

/**
 * Step 6: whether the bad record that ends the last segment's records sits where the
 * buffered batch's COMMIT belongs and is that COMMIT, written whole and damaged later
 * (commit-damage.ts): then the batch was durable and may have been acknowledged.
 */
async function lastCommitDamaged(state: ReplayState, offset: number): Promise<boolean> {
  if (state.pendingType.length === 0) return false;
  const segment = state.segment!;
  const onDisk = new Uint8Array(COMMIT_RECORD_BYTES);
  if ((await readFully(state.file!, onDisk, offset)) < COMMIT_RECORD_BYTES) return false;
  const expected = expectedCommitRecords({
    batchStartOffset: state.batchStart,
    recordCount: state.pendingType.length,
    lastIndex: state.expectedIndex - 1,
    seed: segment.crcSeed,
  });
  return commitDamagedAfterWrite(onDisk, expected, { recycled: segment.header.recycled, fileOffset: offset });
}

/**
 * Step 6: whether valid COMMIT records after damage at the end of the last segment prove
 * that acknowledged data is damaged; returns the offset of the proving COMMIT, or undefined
 * for a torn tail. Up to two batches are in flight at once, and a batch is acknowledged only
 * after every batch before it is durable. So none after the damage: torn. Exactly one,
 * PIPELINED (written while the damaged batch was in flight) and starting after the last
 * whole batch: the damaged batch and that one were in flight together, neither was
 * acknowledged: torn. Anything else was written after the damaged batch was durable: the
 * damage came later, to acknowledged data: corruption.
 */
export function acknowledgedAfterDamage(commits: FoundCommit[], committedEndOffset: number): number | undefined {
  if (commits.length === 0) return undefined;
  const [first] = commits;
  if (commits.length === 1 && first.pipelined && first.batchStartOffset > committedEndOffset) return undefined;
  return first.offset;
}

/** The spare: kept when of the expected size (repair mode); a torn header is cut first. */
async function settleSpare(
  fs: FileSystem,
  dir: string,
  candidate: SpareCandidate,
  options: RecoveryOptions,
): Promise<{ spare?: SpareSegment; tornTail?: TornTail }> {
  const { ref, file, headerEndOffset, fileBytes, recycled } = candidate;
  const settled: { spare?: SpareSegment; tornTail?: TornTail } = {};
  if (headerEndOffset > 0) {
    const tail: TornTail = { segment: ref.name, path: ref.path, offset: 0, bytes: headerEndOffset, reason: "segment header torn while activating the segment" };
    if (options.repair) tail.savedTo = await cutTornTail(fs, dir, file, ref, 0, headerEndOffset);
    settled.tornTail = tail;
  }
  const keep = options.segmentSizeBytes === undefined || fileBytes === options.segmentSizeBytes;
  if (options.repair && keep) {
    // Its zeros may be sparse: only a recycled file is known to be written throughout.
    const filledBytes = recycled ? fileBytes : 0;
    settled.spare = { segmentId: ref.segmentId, name: ref.name, path: ref.path, file, sizeBytes: fileBytes, recycled, filledBytes };
  } else {
    await file.close();
    if (options.repair) {
      await fs.remove(ref.path);
      await fs.syncDirectory(dir);
    }
  }
  return settled;
}

function pendingIndexesOf(types: number[], indexes: number[]): number[] {
  const out: number[] = [];
  for (let r = 0; r < types.length; r++) if (types[r] === RecordType.ENTRY) out.push(indexes[r]);
  return out;
}

/** Step 7: saves [from, to) beside the segment, makes the copy durable, then zeroes the range in the segment. */
export async function cutTornTail(
  fs: FileSystem,
  dir: string,
  file: StorageFile,
  ref: { name: string },
  from: number,
  to: number,
): Promise<string> {
  const bytes = new Uint8Array(to - from);
  const count = await readFully(file, bytes, from);
  // Never overwrite an earlier copy (the same offset can tear twice): add .1, .2, ...
  let savedTo = posix.join(dir, tornTailFileName(ref.name, from));
  for (let attempt = 1; await fs.exists(savedTo); attempt++) savedTo = posix.join(dir, `${tornTailFileName(ref.name, from)}.${attempt}`);
  const copy = await fs.open(savedTo, { create: true, exclusive: true });
  try {
    await copy.write(bytes.subarray(0, count), 0);
    await copy.sync();
  } finally {
    await copy.close();
  }
  await fs.syncDirectory(dir);
  await writeZeros(file, from, to - from);
  await file.sync();
  return savedTo;
}
