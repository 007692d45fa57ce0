/**
 * Read-only inspection of a WAL directory, for the `raftwal wal` tool: list segments,
 * walk every record with its status, verify the whole log, and repair a torn tail
 * (only a torn tail: corruption is refused). Nothing here modifies files except
 * `repairTornTail`.
 */
import type { FileSystem, StorageFile } from "../fs/file-system.js";
import { WalErrorCode } from "../errors.js";
import { entryCodec, type Entry } from "../../src/proto/schema.js";
import { WalCorruptionError, walError, type CorruptionDetail } from "./errors.js";
import {
  COMMIT_RECORD_BYTES,
  RECORD_HEADER_BYTES,
  RECORD_TYPE_NAMES,
  RecordType,
  SEGMENT_HEADER_BYTES,
  decodeCommitPayload,
  recordBytes,
  recordCrcSeed,
  type CommitInfo,
  type RecordHeader,
  type SegmentHeader,
} from "./format.js";
import { listSegmentFiles } from "./naming.js";
import { acknowledgedAfterDamage, asSpare, recover, type RecoveredSegment, type RecoveryResult, type TornTail } from "./recovery.js";
import { readRecordSync, readSegmentHeader, scanRecords, surveyTail, type ScanEnd } from "./segment-reader.js";

export interface SegmentListing {
  segmentId: number;
  name: string;
  path: string;
  /** Bytes the file holds (usually the segment size: files are created at their full size). */
  fileBytes: number;
  /** From the header; undefined for a spare or a bad header. */
  header?: SegmentHeader;
  /** active: the newest activated segment; spare: made ready, never activated; bad-header: unreadable header. */
  state: "sealed" | "active" | "spare" | "bad-header";
  /** Why the header is bad (state "bad-header"). */
  reason?: string;
}

/** Segment files with their headers. Reads only headers. Throws WAL_ERR_NOT_A_WAL for a missing directory. */
export async function listSegments(dir: string, fs: FileSystem): Promise<SegmentListing[]> {
  if (!(await fs.isDirectory(dir))) throw walError(WalErrorCode.NOT_A_WAL, `${dir} is not a directory`);
  const listings: SegmentListing[] = [];
  for (const ref of await listSegmentFiles(dir, fs)) {
    const file = await fs.open(ref.path, { readOnly: true });
    try {
      const decoded = await readSegmentHeader(file);
      const fileBytes = await file.size();
      const base = { segmentId: ref.segmentId, name: ref.name, path: ref.path, fileBytes };
      if (decoded.kind === "ok") listings.push({ ...base, header: decoded.header, state: "sealed" });
      else if (decoded.kind === "blank") listings.push({ ...base, state: "spare" });
      else listings.push({ ...base, state: "bad-header", reason: decoded.reason });
    } finally {
      await file.close();
    }
  }
  for (let k = listings.length - 1; k >= 0; k--) {
    if (listings[k].state === "sealed") {
      listings[k].state = "active";
      break;
    }
  }
  return listings;
}

export type RecordStatus = "ok" | "torn-tail" | "corrupt";

/** One record as found on disk. */
export interface ScannedRecord {
  segmentId: number;
  segment: string;
  /** Byte offset of the record in its segment. */
  offset: number;
  /** "entry", "truncate-suffix", "compact", "commit", or "unknown" when the header is damaged. */
  type: string;
  /** Header index: entry index, truncate-from, compacted index, or (commit) lastIndex after the batch. */
  index: number;
  /** Header term (entries and compact records). */
  term: number;
  /** Bytes the record occupies on disk (header, payload, padding); 0 when unknown. */
  sizeBytes: number;
  /** The payload bytes (empty when unknown). */
  payload: Uint8Array;
  /** For entry records whose payload decodes. */
  entry?: Entry;
  /** For commit records: where their batch starts and how many records it holds. */
  commit?: CommitInfo;
  /** ok: part of a complete batch. torn-tail: after the last complete batch (repairable). corrupt: damaged before it. */
  status: RecordStatus;
  /**
   * The record is whole and passes its checksum, so its header is as written (its status may
   * still not be ok: its batch lost its COMMIT, or its payload does not decode). False for
   * the record a segment's walk stopped on: the checksum covers header and payload, so a
   * mismatch does not say which was damaged, and no field of its header can be trusted.
   */
  intact: boolean;
  /** Why the status is not ok. */
  reason?: string;
}

/**
 * Walks every segment and yields each record in file order with its status, without
 * modifying anything. A damaged record ends its segment's walk (what follows cannot be
 * framed); the walk goes on with the next segment.
 */
export async function* scanWal(dir: string, fs: FileSystem): AsyncIterable<ScannedRecord> {
  const listings = await listSegments(dir, fs);
  let lastHeaded = -1;
  listings.forEach((listing, k) => {
    if (listing.header) lastHeaded = k;
  });
  for (let k = 0; k < listings.length; k++) {
    const listing = listings[k];
    if (listing.state === "spare") continue;
    const file = await fs.open(listing.path, { readOnly: true });
    try {
      yield* scanSegment(file, listing, k >= lastHeaded);
    } finally {
      await file.close();
    }
  }
}

async function* scanSegment(file: StorageFile, listing: SegmentListing, isLast: boolean): AsyncIterable<ScannedRecord> {
  const base = { segmentId: listing.segmentId, segment: listing.name };
  const segmentHeader = listing.header;
  if (!segmentHeader) {
    yield await headerRecord(file, listing, isLast);
    return;
  }
  const seed = recordCrcSeed(listing.segmentId, segmentHeader.formatVersion);
  const records: ScannedRecord[] = [];
  let batchFirst = 0;
  let batchStart = SEGMENT_HEADER_BYTES;
  /** The walk stopped on a whole, checksum-valid record (a COMMIT that does not match its batch). */
  let stoppedOnIntact = false;
  const end = await scanRecords(file, SEGMENT_HEADER_BYTES, seed, (offset, header, bytes, at) => {
    records.push(scannedRecord(base, offset, header, bytes, at));
    if (header.type === RecordType.COMMIT) {
      const info = decodeCommitPayload(bytes, at);
      if (info.batchStartOffset !== batchStart || info.recordCount !== records.length - 1 - batchFirst) {
        records.pop();
        stoppedOnIntact = true;
        return "commit record does not match its batch";
      }
      records[records.length - 1].commit = info;
      batchFirst = records.length;
      batchStart = offset + COMMIT_RECORD_BYTES;
    }
  });
  const uncommitted = records.length - batchFirst;
  const tail = await tailOf(file, { seeds: [seed], recycled: segmentHeader.recycled }, end, batchStart, uncommitted, isLast);
  const tailStatus = tail.status;
  for (let r = batchFirst; r < records.length; r++) {
    records[r].status = tailStatus;
    records[r].reason = "its batch has no valid commit record";
  }
  yield* records;
  if (end.kind === "bad" && !tail.stale) {
    yield {
      ...base,
      offset: end.offset,
      type: end.header ? (RECORD_TYPE_NAMES[end.header.type] ?? "unknown") : "unknown",
      index: end.header?.index ?? 0,
      term: end.header?.term ?? 0,
      sizeBytes: end.header ? recordBytes(end.header.payloadBytes) : 0,
      payload: new Uint8Array(0),
      status: tailStatus,
      intact: stoppedOnIntact,
      reason: end.reason,
    };
  }
}

/**
 * The status of what follows the last complete batch (as recovery decides it): a torn tail
 * in the last segment unless a valid commit proves acknowledged data damaged, else
 * corruption. `stale`: a recycled segment's bad record is only its earlier life's bytes (no
 * record of its own follows).
 */
async function tailOf(
  file: StorageFile,
  scope: { seeds: number[]; recycled: boolean },
  end: ScanEnd,
  batchStart: number,
  uncommitted: number,
  isLast: boolean,
): Promise<{ status: RecordStatus; stale: boolean }> {
  if (end.kind !== "bad" && uncommitted === 0) return { status: "corrupt", stale: false };
  const survey = await surveyTail(file, batchStart, end.kind === "bad" ? end.offset + 8 : end.offset, scope);
  const stale = scope.recycled && uncommitted === 0 && survey.dataEndOffset <= batchStart;
  if (stale) return { status: "ok", stale };
  return { status: isLast && acknowledgedAfterDamage(survey.commits, batchStart) === undefined ? "torn-tail" : "corrupt", stale };
}

/** The one pseudo-record of a segment whose header is bad: a torn tail if it is the last file and it reads as a spare (see recovery). */
async function headerRecord(file: StorageFile, listing: SegmentListing, isLast: boolean): Promise<ScannedRecord> {
  const torn = isLast && (await asSpare(listing, file)) !== undefined;
  return {
    segmentId: listing.segmentId,
    segment: listing.name,
    offset: 0,
    type: "segment-header",
    index: 0,
    term: 0,
    sizeBytes: SEGMENT_HEADER_BYTES,
    payload: new Uint8Array(0),
    status: torn ? "torn-tail" : "corrupt",
    intact: false,
    reason: listing.reason ?? "bad segment header",
  };
}

/** A whole, checksum-valid record (status ok unless an entry's payload does not decode); copies its payload. */
function scannedRecord(
  base: { segmentId: number; segment: string },
  offset: number,
  header: RecordHeader,
  bytes: Uint8Array,
  at: number,
): ScannedRecord {
  const payload = bytes.slice(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + header.payloadBytes);
  const record: ScannedRecord = {
    ...base,
    offset,
    type: RECORD_TYPE_NAMES[header.type] ?? "unknown",
    index: header.index,
    term: header.term,
    sizeBytes: recordBytes(header.payloadBytes),
    payload,
    status: "ok",
    intact: true,
  };
  if (header.type === RecordType.ENTRY) {
    try {
      record.entry = entryCodec.decode(payload);
    } catch {
      record.status = "corrupt";
      record.reason = "entry payload does not decode";
    }
  }
  return record;
}

/** Per-segment result of a verification. */
export interface VerifiedSegment {
  segmentId: number;
  name: string;
  firstIndex: number;
  /** Highest entry index written in the segment (0 if none). */
  maxEntryIndex: number;
  /** Records in complete batches. */
  records: number;
  /** Offset just past the last complete batch. */
  committedBytes: number;
}

export interface VerifyResult {
  status: "healthy" | "torn-tail" | "corrupt";
  segments: VerifiedSegment[];
  firstIndex: number;
  lastIndex: number;
  entries: number;
  tornTail?: TornTail;
  corruption?: CorruptionDetail;
  bytesChecked: number;
  /** The log's live entries whose type is not ENTRY_NORMAL (for Raft: configuration entries), oldest first. */
  typedEntries: Entry[];
}

/** Progress of a verification: segments done out of all, for a progress bar. */
export type VerifyProgress = (segmentsDone: number, segmentsTotal: number) => void;

/**
 * Replays the whole WAL read-only (exactly what open does, without repairing) and
 * reports healthy, a repairable torn tail, or corruption with its location.
 */
export async function verifyWal(dir: string, fs: FileSystem, onProgress?: VerifyProgress): Promise<VerifyResult> {
  if (!(await fs.isDirectory(dir))) throw walError(WalErrorCode.NOT_A_WAL, `${dir} is not a directory`);
  try {
    const result = await recover(dir, fs, { repair: false, ...(onProgress ? { onProgress } : {}) });
    let typedEntries: Entry[];
    try {
      typedEntries = readTypedEntries(result);
    } finally {
      await closeAll(result.segments, result.spare?.file);
    }
    const verified: VerifyResult = {
      status: result.report.tornTail ? "torn-tail" : "healthy",
      segments: result.segments.map(describe),
      firstIndex: result.report.firstIndex,
      lastIndex: result.report.lastIndex,
      entries: result.report.entries,
      bytesChecked: result.report.bytesReplayed,
      typedEntries,
    };
    if (result.report.tornTail) verified.tornTail = result.report.tornTail;
    return verified;
  } catch (error) {
    if (!(error instanceof WalCorruptionError)) throw error;
    const { segment, path, offset, reason, indexes } = error;
    return {
      status: "corrupt",
      segments: [],
      firstIndex: 0,
      lastIndex: 0,
      entries: 0,
      corruption: { segment, path, offset, reason, indexes },
      bytesChecked: 0,
      typedEntries: [],
    };
  }
}

/**
 * Cuts a torn tail (saving the cut bytes beside the segment, then fsyncing), exactly as
 * open would. Refuses corruption: throws WAL_ERR_CORRUPT and changes nothing.
 * Returns the tail that was cut, or undefined when there was none.
 */
export async function repairTornTail(dir: string, fs: FileSystem): Promise<TornTail | undefined> {
  if (!(await fs.isDirectory(dir))) throw walError(WalErrorCode.NOT_A_WAL, `${dir} is not a directory`);
  // Check first without writing, so corruption leaves the directory untouched.
  const verdict = await verifyWal(dir, fs);
  if (verdict.corruption) throw new WalCorruptionError(verdict.corruption);
  if (!verdict.tornTail) return undefined;
  const result = await recover(dir, fs, { repair: true });
  await closeAll(result.segments, result.spare?.file);
  return result.report.tornTail;
}

/** Reads the live typed entries the replay indexed (few: the index keeps them in a short list). */
function readTypedEntries(result: RecoveryResult): Entry[] {
  const entries: Entry[] = [];
  for (const index of result.index.typedEntryIndexes()) {
    const at = result.index.locate(index);
    const segment = at && result.segments.find((s) => s.segmentId === at.segmentId);
    if (!at || !segment) continue;
    const read = readRecordSync(segment.file, at.offset, 4096, segment.crcSeed);
    // The replay checked every record: a problem now means the file changed under us.
    if ("problem" in read) throw new WalCorruptionError({ segment: segment.name, path: segment.path, offset: at.offset, reason: read.problem, indexes: [index] });
    entries.push(entryCodec.decode(read.bytes.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + read.header.payloadBytes)));
  }
  return entries;
}

function describe(segment: RecoveredSegment): VerifiedSegment {
  return {
    segmentId: segment.segmentId,
    name: segment.name,
    firstIndex: segment.header.firstIndex,
    maxEntryIndex: segment.maxEntryIndex,
    records: segment.recordCount,
    committedBytes: segment.committedEndOffset,
  };
}

async function closeAll(segments: RecoveredSegment[], spare: StorageFile | undefined): Promise<void> {
  const files = segments.map((s) => s.file);
  if (spare) files.push(spare);
  await Promise.all(files.map((file) => file.close().catch(() => undefined)));
}
