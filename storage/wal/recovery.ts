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
 *     were in flight: see acknowledgedAfterDamage); otherwise it is a torn tail [B, end of
 *     its data): the last non-zero byte, or in a recycled segment the end of its last
 *     record (the other non-zero bytes are stale, not torn).
 *  7. Repair (read-write mode only): copy the torn bytes to `<segment>.torn-<B>`,
 *     fsync it and the directory, overwrite [B, end) with zeros, fsync the segment.
 *  8. Corruption stops recovery with WAL_ERR_CORRUPT naming segment, offset, indexes.
 */
import { posix } from "node:path";
import type { FileSystem, StorageFile } from "../fs/file-system.js";
import { ErrorCode } from "../../src/errors.js";
import { WalCorruptionError, walError } from "./errors.js";
import {
  FORMAT_VERSION_UNSEEDED,
  RECORD_HEADER_BYTES,
  RECORD_TYPE_NAMES,
  RecordType,
  SEGMENT_HEADER_BYTES,
  decodeCommitPayload,
  recordBytes,
  recordCrcSeed,
  COMMIT_PAYLOAD_BYTES,
  type RecordHeader,
  type SegmentHeader,
} from "./format.js";
import { LogIndex, TERM_UNKNOWN } from "./log-index.js";
import { listSegmentFiles, tornTailFileName, type SegmentFileRef } from "./naming.js";
import { readFully, readSegmentHeader, scanRecords, surveyTail, type FoundCommit, type ScanEnd } from "./segment-reader.js";
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
 * to continue (and by its header index, which may itself be damaged); any other record
 * by the entries of the batch it belongs to (they lose their COMMIT).
 */
function describeBad(reason: string, header: RecordHeader | undefined, expectedIndex: number, batchEntries: number[]): { reason: string; indexes: number[] } {
  if (header && header.type === RecordType.ENTRY) {
    const indexes = header.index === expectedIndex ? [expectedIndex] : [expectedIndex, header.index].filter((i) => i > 0);
    return { reason: `${reason} in entry record (index ${header.index}, term ${header.term})`, indexes };
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

/** A segment file whose header decoded. */
interface HeadedSegment {
  ref: SegmentFileRef;
  file: StorageFile;
  header: SegmentHeader;
}

/** The last file, when its header is blank or torn and no record of its own follows: a spare. */
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
  const { headed, spareCandidate } = await readHeaders(fs, refs, options, opened);
  // Step 3.
  const index = headed.length === 0 ? new LogIndex() : LogIndex.startingAfter(headed[0].header.firstIndex - 1);
  const segments: RecoveredSegment[] = [];
  let tornTail: TornTail | undefined;
  let bytesReplayed = 0;
  // Steps 4-7.
  for (let k = 0; k < headed.length; k++) {
    const { ref, file, header } = headed[k];
    if (k > 0 && header.firstIndex !== index.lastIndex() + 1) {
      throw corruption(ref, 0, `segment first index ${header.firstIndex} does not continue the log (last index ${index.lastIndex()})`);
    }
    const replayed = await replaySegment(headed[k], index);
    bytesReplayed += replayed.segment.committedEndOffset;
    const tail = await checkSegmentEnd(headed[k], replayed, k === headed.length - 1);
    if (tail) {
      if (options.repair) tail.savedTo = await cutTornTail(fs, dir, file, ref, tail.offset, tail.offset + tail.bytes);
      tornTail = tail;
    }
    segments.push(replayed.segment);
    options.onProgress?.(k + 1, headed.length);
  }

  if (index.compactedTerm() === TERM_UNKNOWN) {
    const first = headed[0];
    throw corruption(first.ref, 0, `log starts after index ${first.header.firstIndex - 1} but no compact record names its term`);
  }
  let spare: SpareSegment | undefined;
  if (spareCandidate) {
    const settled = await settleSpare(dir, fs, spareCandidate, options);
    spare = settled.spare;
    tornTail ??= settled.tornTail;
  }

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
  if (spare) result.spare = spare;
  return result;
}

/** Steps 1-2: ids consecutive, every header valid; the last file may be a spare. */
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
      if (decoded.header.segmentId !== ref.segmentId) throw corruption(ref, 0, `segment header names segment ${decoded.header.segmentId}`);
      headed.push({ ref, file, header: decoded.header });
      continue;
    }
    if (k === refs.length - 1) {
      const spareCandidate = await asSpare(ref, file);
      if (spareCandidate) return { headed, spareCandidate };
    }
    if (decoded.kind === "bad" && refs.length === 1 && headed.length === 0) {
      throw walError(ErrorCode.WAL_NOT_A_WAL, `${ref.path} is not a raftwal segment (${decoded.reason})`);
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

/** A segment replayed up to its last valid COMMIT, and what follows it. */
interface ReplayedSegment {
  segment: RecoveredSegment;
  end: ScanEnd;
  /** The index the log was expected to continue with where the scan stopped. */
  expectedIndex: number;
  /** Records read after the last COMMIT (a batch without its COMMIT), and the entry indexes among them. */
  pendingRecords: number;
  pendingEntries: number[];
}

/** Step 4: replays the segment's records into `index`, a batch at a time. */
async function replaySegment({ ref, file, header }: HeadedSegment, index: LogIndex): Promise<ReplayedSegment> {
  const crcSeed = recordCrcSeed(ref.segmentId, header.formatVersion);
  const segment: RecoveredSegment = {
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
  const pending = { type: [] as number[], index: [] as number[], term: [] as number[], offset: [] as number[] };
  let expectedIndex = index.lastIndex() + 1;
  let applyError: WalCorruptionError | undefined;
  const end = await scanRecords(file, SEGMENT_HEADER_BYTES, crcSeed, (offset, record, bytes, at) => {
    if (record.type !== RecordType.COMMIT) {
      pending.type.push(record.type);
      pending.index.push(record.index);
      pending.term.push(record.term);
      pending.offset.push(offset);
      if (record.type === RecordType.ENTRY) expectedIndex = record.index + 1;
      else if (record.type === RecordType.TRUNCATE_SUFFIX) expectedIndex = Math.min(expectedIndex, record.index);
      else expectedIndex = Math.max(expectedIndex, record.index + 1);
      return;
    }
    const info = decodeCommitPayload(bytes, at);
    if (info.batchStartOffset !== segment.committedEndOffset || info.recordCount !== pending.type.length) {
      return `commit record does not match its batch (start ${info.batchStartOffset}, ${info.recordCount} records; expected start ${segment.committedEndOffset}, ${pending.type.length} records)`;
    }
    applyError = applyBatch(ref, segment, pending, index);
    if (applyError) return "batch does not apply";
    segment.recordCount += pending.type.length + 1;
    pending.type.length = pending.index.length = pending.term.length = pending.offset.length = 0;
    segment.committedEndOffset = offset + recordBytes(COMMIT_PAYLOAD_BYTES);
    expectedIndex = index.lastIndex() + 1;
  });
  if (applyError) throw applyError;
  return { segment, end, expectedIndex, pendingRecords: pending.type.length, pendingEntries: pendingIndexesOf(pending.type, pending.index) };
}

/** Applies a whole batch (its COMMIT matched); returns the corruption when an entry does not continue the log. */
function applyBatch(
  ref: SegmentFileRef,
  segment: RecoveredSegment,
  pending: { type: number[]; index: number[]; term: number[]; offset: number[] },
  index: LogIndex,
): WalCorruptionError | undefined {
  for (let r = 0; r < pending.type.length; r++) {
    const type = pending.type[r];
    const at = pending.index[r];
    if (type === RecordType.ENTRY) {
      if (at !== index.lastIndex() + 1) return corruption(ref, pending.offset[r], `entry index ${at} does not continue the log (last index ${index.lastIndex()})`, [at]);
      index.append(at, pending.term[r], ref.segmentId, pending.offset[r]);
      if (at > segment.maxEntryIndex) segment.maxEntryIndex = at;
    } else if (type === RecordType.TRUNCATE_SUFFIX) {
      if (at <= index.compactedIndex() && index.compactedTerm() !== TERM_UNKNOWN) {
        return corruption(ref, pending.offset[r], `truncate-suffix from ${at} at or below the compacted index ${index.compactedIndex()}`, [at]);
      }
      index.truncateSuffix(at);
    } else {
      index.compact(at, pending.term[r]);
      segment.hasCompactRecord = true;
    }
  }
  return undefined;
}

/**
 * Steps 5-6: what follows the last COMMIT. A sealed segment must end there (corruption
 * otherwise). The last one may end in a torn tail, returned to be cut; a valid COMMIT after
 * damage is corruption.
 */
async function checkSegmentEnd({ ref, file, header }: HeadedSegment, replayed: ReplayedSegment, isLast: boolean): Promise<TornTail | undefined> {
  const { segment, end, expectedIndex, pendingRecords, pendingEntries } = replayed;
  const committedEnd = segment.committedEndOffset;
  const scope = { seeds: [segment.crcSeed], recycled: header.recycled };
  const named = (): { reason: string; indexes: number[] } =>
    end.kind === "bad" ? describeBad(end.reason, end.header, expectedIndex, pendingEntries) : { reason: "batch without a commit record", indexes: pendingEntries };
  if (!isLast) {
    // A recycled segment goes on with stale bytes (a bad record); none may be a record of its own.
    if (!header.recycled && end.kind === "bad") throw corruption(ref, end.offset, named().reason, named().indexes);
    if (pendingRecords > 0) throw corruption(ref, committedEnd, "batch without a commit record in a sealed segment", pendingEntries);
    if (header.recycled && (await surveyTail(file, committedEnd, committedEnd, scope)).dataEndOffset > committedEnd) {
      throw corruption(ref, end.offset, "records after the last commit of a sealed segment", [expectedIndex]);
    }
    return undefined;
  }
  const searchFrom = end.kind === "bad" ? end.offset + 8 : end.offset;
  const survey = await surveyTail(file, committedEnd, searchFrom, scope);
  const proof = acknowledgedAfterDamage(survey.commits, committedEnd);
  if (proof !== undefined) {
    if (end.kind === "bad") throw corruption(ref, end.offset, `${named().reason} (a complete batch follows at byte offset ${proof})`, named().indexes);
    throw corruption(ref, end.offset, `unwritten space followed by a complete batch at byte offset ${proof}`, [expectedIndex]);
  }
  if (survey.dataEndOffset <= committedEnd) return undefined;
  const reason = end.kind === "bad" || pendingRecords > 0 ? named().reason : "non-zero bytes in unwritten space";
  return { segment: ref.name, path: ref.path, offset: committedEnd, bytes: survey.dataEndOffset - committedEnd, reason };
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
  dir: string,
  fs: FileSystem,
  candidate: SpareCandidate,
  options: RecoveryOptions,
): Promise<{ spare?: SpareSegment; tornTail?: TornTail }> {
  const { ref, file, headerEndOffset, fileBytes, recycled } = candidate;
  let tornTail: TornTail | undefined;
  if (headerEndOffset > 0) {
    tornTail = { segment: ref.name, path: ref.path, offset: 0, bytes: headerEndOffset, reason: "segment header torn while activating the segment" };
    if (options.repair) tornTail.savedTo = await cutTornTail(fs, dir, file, ref, 0, headerEndOffset);
  }
  const keep = options.segmentSizeBytes === undefined || fileBytes === options.segmentSizeBytes;
  if (options.repair && keep) {
    // Its zeros may be sparse: only a recycled file is known to be written throughout.
    const filledBytes = recycled ? fileBytes : 0;
    return { spare: { segmentId: ref.segmentId, name: ref.name, path: ref.path, file, sizeBytes: fileBytes, recycled, filledBytes }, tornTail };
  }
  await file.close();
  if (options.repair) {
    await fs.remove(ref.path);
    await fs.syncDirectory(dir);
  }
  return { tornTail };
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
