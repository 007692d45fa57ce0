/**
 * Reading segment files: a sequential scanner of records (recovery, verification,
 * inspection), a forward search for damage beyond a bad record, and random-access
 * reads of single records (entries() on demand). Never writes.
 */
import type { StorageFile } from "../fs/file-system.js";
import {
  COMMIT_FLAG_PIPELINED,
  COMMIT_RECORD_BYTES,
  RECORD_ALIGNMENT_BYTES,
  RECORD_HEADER_BYTES,
  RecordType,
  SEGMENT_HEADER_BYTES,
  checkRecord,
  decodeCommitPayload,
  decodeRecordHeader,
  decodeSegmentHeader,
  emptyRecordHeader,
  recordBytes,
  type RecordHeader,
  type SegmentHeaderDecoding,
} from "./format.js";

/**
 * Bytes read from a segment per call while scanning: large reads keep recovery near disk
 * speed. Scans read synchronously: recovery runs before the WAL serves anything, and a
 * thread-pool round trip per chunk only adds latency.
 */
export const SCAN_CHUNK_BYTES = 8 * 1024 * 1024;

export async function readSegmentHeader(file: StorageFile): Promise<SegmentHeaderDecoding> {
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  const count = await readFully(file, bytes, 0);
  return decodeSegmentHeader(bytes.subarray(0, count));
}

/** Reads into `buffer` from `position` until it is full or the file ends; returns the count. */
export async function readFully(file: StorageFile, buffer: Uint8Array, position: number): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const count = await file.read(buffer, filled, buffer.length - filled, position + filled);
    if (count === 0) break;
    filled += count;
  }
  return filled;
}

export function readFullySync(file: StorageFile, buffer: Uint8Array, position: number): number {
  let filled = 0;
  while (filled < buffer.length) {
    const count = file.readSync(buffer, filled, buffer.length - filled, position + filled);
    if (count === 0) break;
    filled += count;
  }
  return filled;
}

/**
 * Called for every record that is whole and passes its checksum, in file order.
 * `bytes[at..]` holds the record (valid only during the call). Return a string to stop
 * the scan, reporting the record as bad with that reason.
 */
export type RecordVisitor = (offset: number, header: RecordHeader, bytes: Uint8Array, at: number) => string | void;

export type ScanEnd =
  /** A zero record header (unwritten space) or the end of the file at `offset`. */
  | { kind: "end"; offset: number }
  /** The record at `offset` is damaged or cut short. `header` is set when its header decoded (fields may be damaged). */
  | { kind: "bad"; offset: number; reason: string; header?: RecordHeader };

/**
 * Scans the records of a segment from `startOffset` until unwritten space, the end of the
 * file, or a bad record (which includes a record of another segment: `seed` is this
 * segment's recordCrcSeed).
 */
export async function scanRecords(file: StorageFile, startOffset: number, seed: number, visit: RecordVisitor): Promise<ScanEnd> {
  // The file size is only a hint for the buffer (sizes are not trusted): reads go until EOF.
  const hint = (await file.size()) - startOffset;
  let buffer: Uint8Array = new Uint8Array(Math.min(SCAN_CHUNK_BYTES, Math.max(hint, 4096)));
  let bufferStart = startOffset; // file position of buffer[0]
  let filled = readFullySync(file, buffer, bufferStart);
  let at = 0; // position in buffer of the next record
  const header = emptyRecordHeader();
  for (;;) {
    // Make sure a whole record header is in the buffer.
    if (filled - at < RECORD_HEADER_BYTES) {
      if (filled === buffer.length || at > 0) {
        ({ buffer, filled } = await refill(file, buffer, at, filled, bufferStart + at, RECORD_HEADER_BYTES));
        bufferStart += at;
        at = 0;
      }
      if (filled - at < RECORD_HEADER_BYTES) {
        const rest = buffer.subarray(at, filled);
        return rest.every((b) => b === 0)
          ? { kind: "end", offset: bufferStart + at }
          : { kind: "bad", offset: bufferStart + at, reason: "record header cut short by the end of the file" };
      }
    }
    const offset = bufferStart + at;
    const status = decodeRecordHeader(buffer, at, header);
    if (status === "zero") return { kind: "end", offset };
    if (status === "bad") return { kind: "bad", offset, reason: "malformed record header" };
    const total = recordBytes(header.payloadBytes);
    if (filled - at < total) {
      ({ buffer, filled } = await refill(file, buffer, at, filled, offset, total));
      bufferStart = offset;
      at = 0;
      if (filled < total) return { kind: "bad", offset, reason: "record cut short by the end of the file", header: { ...header } };
    }
    const problem = checkRecord(buffer, at, header, seed);
    if (problem !== undefined) return { kind: "bad", offset, reason: problem, header: { ...header } };
    const stop = visit(offset, header, buffer, at);
    if (stop !== undefined) return { kind: "bad", offset, reason: stop, header: { ...header } };
    at += total;
  }
}

/** Moves buffer[at..filled) to the front (growing the buffer to `needed` if required) and reads more. */
async function refill(
  file: StorageFile,
  buffer: Uint8Array,
  at: number,
  filled: number,
  position: number,
  needed: number,
): Promise<{ buffer: Uint8Array; filled: number }> {
  const kept = filled - at;
  let target = buffer;
  if (needed > buffer.length) {
    target = new Uint8Array(needed);
    target.set(buffer.subarray(at, filled));
  } else {
    target.copyWithin(0, at, filled);
  }
  const count = readFullySync(file, target.subarray(kept), position + kept);
  return { buffer: target, filled: kept + count };
}

const ZERO_BLOCK_BYTES = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(ZERO_BLOCK_BYTES);

function isZeroBlock(bytes: Uint8Array, start: number, end: number): boolean {
  return Buffer.compare(bytes.subarray(start, end), ZERO_BLOCK.subarray(0, end - start)) === 0;
}

export interface TailSurvey {
  /**
   * Where this segment's bytes after the start end: one past the last non-zero byte (a new
   * segment), or one past the last whole record of this segment (a recycled one, whose
   * other non-zero bytes are stale); the start when there are none.
   */
  dataEndOffset: number;
  /** The first two whole, checksum-valid COMMIT records of this segment at or after `searchFrom`, in file order. */
  commits: FoundCommit[];
  /** Bytes the file holds. */
  fileBytes: number;
}

export interface FoundCommit {
  offset: number;
  /** From its payload: where its batch starts. */
  batchStartOffset: number;
  /** Its batch was written while the one before was in flight (COMMIT_FLAG_PIPELINED). */
  pipelined: boolean;
}

/** Commits a survey reports: enough to tell one trailing batch from more. */
const SURVEY_COMMITS_MAX = 2;

/**
 * What a survey looks at. A record is this segment's when its checksum holds under one of
 * `seeds` (recordCrcSeed); `recycled`: stale bytes may follow this segment's records, so its
 * data ends after its last record rather than at its last non-zero byte.
 */
export interface SurveyScope {
  seeds: readonly number[];
  recycled: boolean;
}

/**
 * Surveys a segment from `start` to its end: where its data ends (see TailSurvey), and
 * which valid COMMIT records of this segment sit at aligned offsets >= `searchFrom` (a
 * batch after damage: see recovery, step 6).
 */
export async function surveyTail(file: StorageFile, start: number, searchFrom: number, scope: SurveyScope): Promise<TailSurvey> {
  const fileBytes = await file.size();
  const found: Found = { dataEndOffset: start, commits: [] };
  const overlap = COMMIT_RECORD_BYTES; // chunks overlap so that no COMMIT record is split
  let position = start;
  const chunkBytes = Math.min(SCAN_CHUNK_BYTES, Math.max(fileBytes - start, 4096));
  const buffer = new Uint8Array(chunkBytes + overlap);
  while (position < fileBytes) {
    const count = readFullySync(file, buffer, position);
    if (count === 0) break;
    // Whole zero blocks are skipped with a memcmp; only blocks holding data are walked.
    for (let blockStart = 0; blockStart < count; blockStart += ZERO_BLOCK_BYTES) {
      const blockEnd = Math.min(count, blockStart + ZERO_BLOCK_BYTES);
      if (isZeroBlock(buffer, blockStart, blockEnd)) continue;
      if (!scope.recycled) found.dataEndOffset = Math.max(found.dataEndOffset, position + lastNonZero(buffer, blockStart, blockEnd) + 1);
      if (scope.recycled || found.commits.length < SURVEY_COMMITS_MAX) {
        surveyBlock(file, buffer, { position, count, blockStart, blockEnd, start, searchFrom }, scope, found);
      }
    }
    if (count < buffer.length) break;
    position += chunkBytes;
  }
  return { dataEndOffset: found.dataEndOffset, commits: found.commits, fileBytes };
}

interface Found {
  dataEndOffset: number;
  commits: FoundCommit[];
}

/** The batch start offset named by the (checked) COMMIT record at `offset`, at buffer position `i` or read again when it runs past. */
function decodeCommitPayloadAt(file: StorageFile, buffer: Uint8Array, i: number, offset: number, count: number): number {
  if (i + COMMIT_RECORD_BYTES <= count) return decodeCommitPayload(buffer, i).batchStartOffset;
  const record = new Uint8Array(COMMIT_RECORD_BYTES);
  readFullySync(file, record, offset);
  return decodeCommitPayload(record, 0).batchStartOffset;
}

function lastNonZero(bytes: Uint8Array, start: number, end: number): number {
  for (let i = end - 1; i >= start; i--) if (bytes[i] !== 0) return i;
  return start - 1;
}

/**
 * Walks the aligned offsets of one non-zero block for records of this segment: the first
 * valid COMMIT at or after `searchFrom`, and (recycled) the end of the last valid record.
 * A record running past the buffer is read from the file.
 */
function surveyBlock(
  file: StorageFile,
  buffer: Uint8Array,
  at: { position: number; count: number; blockStart: number; blockEnd: number; start: number; searchFrom: number },
  scope: SurveyScope,
  found: Found,
): void {
  const header = emptyRecordHeader();
  let first = Math.max(scope.recycled ? at.start : at.searchFrom, at.position + at.blockStart);
  first += (RECORD_ALIGNMENT_BYTES - (first % RECORD_ALIGNMENT_BYTES)) % RECORD_ALIGNMENT_BYTES;
  for (let offset = first; offset < at.position + at.blockEnd && offset + RECORD_HEADER_BYTES <= at.position + at.count; offset += RECORD_ALIGNMENT_BYTES) {
    const i = offset - at.position;
    const type = buffer[i];
    if (scope.recycled ? type < RecordType.ENTRY || type > RecordType.COMMIT : type !== RecordType.COMMIT) continue;
    if (decodeRecordHeader(buffer, i, header) !== "ok") continue;
    const total = recordBytes(header.payloadBytes);
    const valid = scope.seeds.some((seed) =>
      i + total <= at.count ? checkRecord(buffer, i, header, seed) === undefined : !("problem" in readRecordSync(file, offset, total, seed)),
    );
    if (!valid) continue;
    if (scope.recycled) found.dataEndOffset = Math.max(found.dataEndOffset, offset + total);
    const known = found.commits.length > 0 && found.commits[found.commits.length - 1].offset >= offset; // chunks overlap
    if (header.type === RecordType.COMMIT && offset >= at.searchFrom && !known && found.commits.length < SURVEY_COMMITS_MAX) {
      const pipelined = (header.flags & COMMIT_FLAG_PIPELINED) !== 0;
      found.commits.push({ offset, batchStartOffset: decodeCommitPayloadAt(file, buffer, i, offset, at.count), pipelined });
      if (!scope.recycled && found.commits.length === SURVEY_COMMITS_MAX) return;
    }
  }
}

/**
 * Reads the record at `offset` synchronously into a fresh buffer and validates it against
 * the segment's `seed`. `sizeHint` is a guess of the record's total size (one read when right).
 */
export function readRecordSync(
  file: StorageFile,
  offset: number,
  sizeHint: number,
  seed: number,
): { header: RecordHeader; bytes: Uint8Array } | { problem: string; header?: RecordHeader } {
  let bytes: Uint8Array = new Uint8Array(Math.max(sizeHint, RECORD_HEADER_BYTES));
  let count = readFullySync(file, bytes, offset);
  const header = emptyRecordHeader();
  if (count < RECORD_HEADER_BYTES) return { problem: "record cut short by the end of the file" };
  if (decodeRecordHeader(bytes, 0, header) !== "ok") return { problem: "malformed record header" };
  const total = recordBytes(header.payloadBytes);
  if (count < total) {
    if (bytes.length < total) {
      const grown = new Uint8Array(total);
      grown.set(bytes.subarray(0, count));
      bytes = grown;
    }
    count += readFullySync(file, bytes.subarray(count, total), offset + count);
    if (count < total) return { problem: "record cut short by the end of the file", header };
  }
  const problem = checkRecord(bytes, 0, header, seed);
  if (problem !== undefined) return { problem, header };
  return { header, bytes: bytes.subarray(0, total) };
}
