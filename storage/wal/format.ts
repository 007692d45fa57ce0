/**
 * The on-disk format of the raftwal write-ahead log: pure encoding and decoding of
 * bytes, no I/O. Everything else in storage/wal builds on the layouts below.
 *
 * A WAL is a directory of segment files, `segment-<id, 20 decimal digits>.wal`, ids
 * increasing by one. Each segment starts with a segment header; records follow back to
 * back, each aligned to 8 bytes. A new segment's unwritten space is zero; a recycled one
 * (a compacted segment reused under a new id, flag RECYCLED) holds stale records of its
 * earlier life there, which fail their checksum because every record's CRC covers the id
 * of the segment it was written to. All integers are little-endian.
 *
 * Segment header (SEGMENT_HEADER_BYTES = 40):
 *
 *    0       1       2       3       4       5       6       7       8
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 *  0 | Magic "RAFTWAL\0"                                             |
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 *  8 | Format version (u16)  | Flags (u16)       | Segment size (u32)|
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 * 16 | Segment id (u64)                                              |
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 * 24 | First index (u64): the log's lastIndex + 1 when it was opened  |
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 * 32 | Header CRC-32 of bytes 0..32 (u32) | Reserved (u32, 0)        |
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 *
 * Flags: bit 0 RECYCLED (the file held an earlier segment); other bits zero. A header of
 * 40 zero bytes marks a prepared segment that was never activated (a spare made ready
 * ahead of time so that rollover does not stall appends). Format version 1 (read, never
 * written) had no flags and records checksummed without the segment id.
 *
 * Record (RECORD_HEADER_BYTES = 32, then the payload, then zero padding to 8):
 *
 *    0       1       2       3       4       5       6       7       8
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 *  0 | Type  | Flags | Reserved (0)  | Payload length (u32, bytes)   |
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 *  8 | Index (u64)                                                   |
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 * 16 | Term (u64)                                                    |
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 * 24 | Reserved (u32, 0)             | CRC-32 (u32)                  |
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 * 32 | Payload ...                       | zero padding to 8 bytes   |
 *    +-------+-------+-------+-------+-------+-------+-------+-------+
 *
 * The CRC covers the segment id (u64, as 8 little-endian bytes), then the record header
 * (with the CRC field taken as zero) and the payload: bytes 0..32+length. Padding and
 * reserved bytes must be zero. Type 0 is invalid, so zero (unwritten) space never parses
 * as a record.
 *
 * | type | name            | index              | term          | payload                               |
 * |------|-----------------|--------------------|---------------|---------------------------------------|
 * | 1    | ENTRY           | entry index        | entry term    | protobuf `Entry` (same index and term)|
 * | 2    | TRUNCATE_SUFFIX | first index dropped| 0             | none                                  |
 * | 3    | COMPACT         | compacted index    | its term      | none                                  |
 * | 4    | COMMIT          | lastIndex after it | 0             | batch start offset u32, records u32   |
 *
 * A COMMIT record ends every batch (one durable write); its payload names the
 * byte offset of the batch's first record in this segment and how many records precede
 * it in the batch, so recovery can check that the batch is whole. Its flag PIPELINED
 * (bit 0 of Flags, the only record flag) says the batch was written while the previous one
 * was still in flight. Records after the last valid COMMIT of the last segment are a torn
 * tail, and so is a damaged batch followed only by one whole PIPELINED batch, unless the
 * bad record is that batch's COMMIT damaged after it was written whole (commit-damage.ts);
 * anything bad before it is corruption. Checksums: CRC-32 IEEE (reflected polynomial 0xEDB88320), see crc.ts.
 */
import { strict as assert } from "node:assert";
import type { Entry } from "../../src/proto/schema.js";
import { crc32 } from "./crc.js";
import { writeEntry } from "./entry-codec.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** "RAFTWAL\0": tells a raftwal segment from any other file. */
export const SEGMENT_MAGIC = new Uint8Array([0x52, 0x41, 0x46, 0x54, 0x57, 0x41, 0x4c, 0x00]);
/** Bumped on any incompatible change of the layouts above. 2: record CRCs cover the segment id; header flags. */
export const FORMAT_VERSION = 2;
/** The first format: no header flags, record CRCs without the segment id. Still read (and appended to). */
export const FORMAT_VERSION_UNSEEDED = 1;
/** Header flag: the file held an earlier segment, so stale records of that one may follow this segment's records. */
export const SEGMENT_FLAG_RECYCLED = 1;
/**
 * COMMIT record flag: the batch was written while the batch before it was not yet known to
 * be durable (two batches in flight). Such a batch can be whole on disk after a crash that
 * tore the batch before it; it was never acknowledged, since acknowledgements go in order.
 */
export const COMMIT_FLAG_PIPELINED = 1;
/** Bytes of the segment header. A multiple of RECORD_ALIGNMENT_BYTES so records stay aligned. */
export const SEGMENT_HEADER_BYTES = 40;
/** Bytes of a record header. */
export const RECORD_HEADER_BYTES = 32;
/** Byte offset of the CRC field in a record header: its last 4 bytes, just before the payload. */
export const RECORD_CRC_OFFSET = RECORD_HEADER_BYTES - 4;
/** Every record starts at a multiple of this (a power of two; sectors are multiples of it, so headers do not straddle sectors). */
export const RECORD_ALIGNMENT_BYTES = 8;
/** Bytes of a COMMIT record's payload: batch start offset (u32) and record count (u32). */
export const COMMIT_PAYLOAD_BYTES = 8;
/** Bytes of a whole COMMIT record on disk (header and payload; no padding). */
export const COMMIT_RECORD_BYTES = RECORD_HEADER_BYTES + COMMIT_PAYLOAD_BYTES;
/** Largest payload of one record, in bytes: bounds the allocation made for a record whose length field is damaged. Half the default segment, so one entry always fits. */
export const RECORD_PAYLOAD_BYTES_MAX = 32 * MiB;
/** Smallest segment, in bytes: small enough for tests to roll segments often. */
export const SEGMENT_SIZE_BYTES_MIN = 64 * KiB;
/** Largest segment, in bytes: record offsets in a segment must fit the u32 fields and the in-memory Uint32Array index. */
export const SEGMENT_SIZE_BYTES_MAX = 1 * GiB;
/** Default segment size, in bytes (as hashicorp/raft-wal): few files, cheap whole-segment deletion. */
export const SEGMENT_SIZE_BYTES_DEFAULT = 64 * MiB;
/** Largest index or term: JavaScript numbers are exact below 2^53. */
export const INDEX_MAX = Number.MAX_SAFE_INTEGER;

export const RecordType = {
  /** Never written: zero (unwritten, preallocated) space. */
  INVALID: 0,
  ENTRY: 1,
  TRUNCATE_SUFFIX: 2,
  COMPACT: 3,
  COMMIT: 4,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];
export const RECORD_TYPE_NAMES: Record<number, string> = {
  1: "entry",
  2: "truncate-suffix",
  3: "compact",
  4: "commit",
};

// Relations between the constants, checked at load.
assert.equal(RECORD_ALIGNMENT_BYTES & (RECORD_ALIGNMENT_BYTES - 1), 0, "alignment must be a power of two");
assert.equal(SEGMENT_HEADER_BYTES % RECORD_ALIGNMENT_BYTES, 0, "segment header keeps records aligned");
assert.equal(RECORD_HEADER_BYTES % RECORD_ALIGNMENT_BYTES, 0, "record header keeps payloads aligned");
assert.ok(SEGMENT_SIZE_BYTES_MAX < 2 ** 32, "offsets in a segment fit a u32");
assert.ok(SEGMENT_SIZE_BYTES_MIN <= SEGMENT_SIZE_BYTES_DEFAULT && SEGMENT_SIZE_BYTES_DEFAULT <= SEGMENT_SIZE_BYTES_MAX);
assert.ok(SEGMENT_SIZE_BYTES_MIN % RECORD_ALIGNMENT_BYTES === 0 && SEGMENT_SIZE_BYTES_MAX % RECORD_ALIGNMENT_BYTES === 0);
assert.ok(
  SEGMENT_HEADER_BYTES + recordBytes(RECORD_PAYLOAD_BYTES_MAX) + COMMIT_RECORD_BYTES <= SEGMENT_SIZE_BYTES_DEFAULT,
  "a largest record and its commit fit a default segment",
);

/** A machine-readable summary of the format, for the README and the inspection tool. */
export const WAL_FORMAT = {
  segmentFileName: "segment-<id, 20 decimal digits>.wal",
  tornTailFileName: "<segment file>.torn-<byte offset>",
  recycledFileName: "recycled-<former segment id, 20 decimal digits>.wal",
  magic: "RAFTWAL\\0",
  formatVersion: FORMAT_VERSION,
  formatVersionsRead: [FORMAT_VERSION_UNSEEDED, FORMAT_VERSION],
  segmentFlags: { RECYCLED: SEGMENT_FLAG_RECYCLED },
  commitFlags: { PIPELINED: COMMIT_FLAG_PIPELINED },
  byteOrder: "little-endian",
  segmentHeaderBytes: SEGMENT_HEADER_BYTES,
  recordHeaderBytes: RECORD_HEADER_BYTES,
  recordAlignmentBytes: RECORD_ALIGNMENT_BYTES,
  recordPayloadBytesMax: RECORD_PAYLOAD_BYTES_MAX,
  segmentSizeBytes: { min: SEGMENT_SIZE_BYTES_MIN, default: SEGMENT_SIZE_BYTES_DEFAULT, max: SEGMENT_SIZE_BYTES_MAX },
  checksum: "CRC-32 IEEE 802.3 (reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF); a record's covers its segment id first (8 bytes LE)",
  recordTypes: { ENTRY: 1, TRUNCATE_SUFFIX: 2, COMPACT: 3, COMMIT: 4 },
  entryPayload: "protobuf raftwal.Entry (src/proto/raftwal.proto)",
} as const;

/** Total bytes a record with `payloadBytes` of payload occupies, padding included. */
export function recordBytes(payloadBytes: number): number {
  return RECORD_HEADER_BYTES + alignUp(payloadBytes);
}

export function alignUp(bytes: number): number {
  return (bytes + RECORD_ALIGNMENT_BYTES - 1) & ~(RECORD_ALIGNMENT_BYTES - 1);
}

// ---- integers --------------------------------------------------------------------

const TWO_32 = 2 ** 32;

function writeU32(buffer: Uint8Array, offset: number, value: number): void {
  buffer[offset] = value;
  buffer[offset + 1] = value >>> 8;
  buffer[offset + 2] = value >>> 16;
  buffer[offset + 3] = value >>> 24;
}

function readU32(buffer: Uint8Array, offset: number): number {
  return (buffer[offset] | (buffer[offset + 1] << 8) | (buffer[offset + 2] << 16) | (buffer[offset + 3] << 24)) >>> 0;
}

function writeU64(buffer: Uint8Array, offset: number, value: number): void {
  writeU32(buffer, offset, value % TWO_32);
  writeU32(buffer, offset + 4, Math.floor(value / TWO_32));
}

/** A u64 as a number, or -1 when it is 2^53 or more (never written by us: damage). */
function readU64(buffer: Uint8Array, offset: number): number {
  const high = readU32(buffer, offset + 4);
  if (high >= 0x20_0000) return -1;
  return high * TWO_32 + readU32(buffer, offset);
}

function isZero(buffer: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buffer[i] !== 0) return false;
  return true;
}

// ---- segment header ---------------------------------------------------------------

export interface SegmentHeader {
  formatVersion: number;
  /** The file held an earlier segment: stale records (checksummed under another id) may follow this one's. */
  recycled: boolean;
  /** The file's size when it was created, in bytes (informational: file sizes are not trusted). */
  segmentSizeBytes: number;
  segmentId: number;
  /** The log's lastIndex + 1 when this segment became the active one. */
  firstIndex: number;
}

export function encodeSegmentHeader(header: SegmentHeader): Uint8Array {
  assert.ok(Number.isSafeInteger(header.segmentId) && header.segmentId >= 1, "segment id");
  assert.ok(Number.isSafeInteger(header.firstIndex) && header.firstIndex >= 1, "first index");
  assert.ok(header.segmentSizeBytes >= 0 && header.segmentSizeBytes < TWO_32, "segment size");
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  bytes.set(SEGMENT_MAGIC, 0);
  bytes[8] = header.formatVersion & 0xff;
  bytes[9] = header.formatVersion >>> 8;
  bytes[10] = header.recycled ? SEGMENT_FLAG_RECYCLED : 0;
  writeU32(bytes, 12, header.segmentSizeBytes);
  writeU64(bytes, 16, header.segmentId);
  writeU64(bytes, 24, header.firstIndex);
  writeU32(bytes, 32, crc32(bytes.subarray(0, 32)));
  return bytes;
}

export type SegmentHeaderDecoding =
  | { kind: "ok"; header: SegmentHeader }
  /** All zero: a segment made ready (a spare) but never activated. */
  | { kind: "blank" }
  | { kind: "bad"; reason: string };

export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeaderDecoding {
  if (bytes.length < SEGMENT_HEADER_BYTES) {
    return isZero(bytes, 0, bytes.length) ? { kind: "blank" } : { kind: "bad", reason: `header cut short (${bytes.length} bytes)` };
  }
  if (isZero(bytes, 0, SEGMENT_HEADER_BYTES)) return { kind: "blank" };
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) {
    if (bytes[i] !== SEGMENT_MAGIC[i]) return { kind: "bad", reason: "bad magic (not a raftwal segment)" };
  }
  const storedCrc = readU32(bytes, 32);
  if (crc32(bytes.subarray(0, 32)) !== storedCrc) return { kind: "bad", reason: "segment header checksum mismatch" };
  const formatVersion = bytes[8] | (bytes[9] << 8);
  if (formatVersion !== FORMAT_VERSION && formatVersion !== FORMAT_VERSION_UNSEEDED) return { kind: "bad", reason: `unsupported format version ${formatVersion}` };
  const flags = bytes[10] | (bytes[11] << 8);
  const knownFlags = formatVersion === FORMAT_VERSION ? SEGMENT_FLAG_RECYCLED : 0;
  if ((flags & ~knownFlags) !== 0 || !isZero(bytes, 36, 40)) return { kind: "bad", reason: "reserved header bytes not zero" };
  const segmentId = readU64(bytes, 16);
  const firstIndex = readU64(bytes, 24);
  if (segmentId < 1 || firstIndex < 1) return { kind: "bad", reason: "segment id or first index out of range" };
  const recycled = (flags & SEGMENT_FLAG_RECYCLED) !== 0;
  return { kind: "ok", header: { formatVersion, recycled, segmentSizeBytes: readU32(bytes, 12), segmentId, firstIndex } };
}

/**
 * The running CRC every record of a segment starts from: the CRC-32 of its id as 8
 * little-endian bytes (0 for format version 1, whose records do not cover the id). Binding
 * records to their segment is what lets a recycled file be overwritten in place: what is
 * left of its earlier life fails the checksum instead of passing for this segment's data.
 */
export function recordCrcSeed(segmentId: number, formatVersion: number = FORMAT_VERSION): number {
  if (formatVersion === FORMAT_VERSION_UNSEEDED) return 0;
  const id = new Uint8Array(8);
  writeU64(id, 0, segmentId);
  return crc32(id);
}

// ---- records ------------------------------------------------------------------------

/** A decoded record header; reused across calls by the scanners to avoid allocation. */
export interface RecordHeader {
  type: number;
  /** COMMIT_FLAG_PIPELINED on a COMMIT record; 0 otherwise. */
  flags: number;
  payloadBytes: number;
  index: number;
  term: number;
  crc: number;
}

export function emptyRecordHeader(): RecordHeader {
  return { type: 0, flags: 0, payloadBytes: 0, index: 0, term: 0, crc: 0 };
}

/**
 * Writes a record (header, payload, zero padding) into `target` at `offset`; returns the
 * bytes written. `seed` is the segment's `recordCrcSeed`.
 */
export function encodeRecord(
  target: Uint8Array,
  offset: number,
  type: RecordType,
  index: number,
  term: number,
  payload: Uint8Array,
  seed: number,
): number {
  assert.ok(payload.length <= RECORD_PAYLOAD_BYTES_MAX, "record payload too large");
  target.set(payload, offset + RECORD_HEADER_BYTES);
  return sealRecord(target, offset, type, 0, index, term, payload.length, seed);
}

/** Writes an ENTRY record whose payload is the protobuf `Entry` (encoded in place); returns the bytes written. */
export function encodeEntryRecord(target: Uint8Array, offset: number, entry: Entry, payloadBytes: number, seed: number): number {
  const end = writeEntry(target, offset + RECORD_HEADER_BYTES, entry);
  if (end - offset - RECORD_HEADER_BYTES !== payloadBytes) assert.fail(`entry ${entry.index} encodes to ${end - offset - RECORD_HEADER_BYTES} bytes, not ${payloadBytes}`);
  return sealRecord(target, offset, RecordType.ENTRY, 0, entry.index, entry.term, payloadBytes, seed);
}

/**
 * Completes a record whose payload is already at offset + RECORD_HEADER_BYTES: writes
 * the header, zero padding, and the CRC (from `seed`) over header (CRC field zero) and payload.
 */
function sealRecord(target: Uint8Array, offset: number, type: RecordType, flags: number, index: number, term: number, payloadBytes: number, seed: number): number {
  // One combined check per record (this runs for every entry of every batch).
  if (!(payloadBytes <= RECORD_PAYLOAD_BYTES_MAX && index >= 0 && index <= INDEX_MAX && term >= 0 && term <= INDEX_MAX)) {
    assert.fail(`record out of range: payload ${payloadBytes} bytes, index ${index}, term ${term}`);
  }
  const total = recordBytes(payloadBytes);
  target[offset] = type;
  target[offset + 1] = flags;
  target[offset + 2] = 0;
  target[offset + 3] = 0;
  writeU32(target, offset + 4, payloadBytes);
  writeU64(target, offset + 8, index);
  writeU64(target, offset + 16, term);
  writeU32(target, offset + 24, 0);
  writeU32(target, offset + RECORD_CRC_OFFSET, 0);
  const crc = crc32(target.subarray(offset, offset + RECORD_HEADER_BYTES + payloadBytes), seed);
  writeU32(target, offset + RECORD_CRC_OFFSET, crc);
  target.fill(0, offset + RECORD_HEADER_BYTES + payloadBytes, offset + total);
  return total;
}

export type HeaderStatus = "ok" | "zero" | "bad";

/**
 * Parses the 32-byte record header at `offset` into `out`. "zero": the whole header is
 * zero (unwritten space). "bad": the header cannot be a record (`out` is unreliable).
 * The CRC is not checked here (it needs the payload): see `checkRecord`.
 */
export function decodeRecordHeader(bytes: Uint8Array, offset: number, out: RecordHeader): HeaderStatus {
  const type = bytes[offset];
  if (type === RecordType.INVALID) return isZero(bytes, offset, offset + RECORD_HEADER_BYTES) ? "zero" : "bad";
  if (type > RecordType.COMMIT) return "bad";
  const flags = bytes[offset + 1];
  if ((flags & ~(type === RecordType.COMMIT ? COMMIT_FLAG_PIPELINED : 0)) !== 0 || bytes[offset + 2] !== 0 || bytes[offset + 3] !== 0) return "bad";
  if (readU32(bytes, offset + 24) !== 0) return "bad";
  const payloadBytes = readU32(bytes, offset + 4);
  if (payloadBytes > RECORD_PAYLOAD_BYTES_MAX) return "bad";
  const index = readU64(bytes, offset + 8);
  const term = readU64(bytes, offset + 16);
  if (index < 0 || term < 0) return "bad";
  out.type = type;
  out.flags = flags;
  out.payloadBytes = payloadBytes;
  out.index = index;
  out.term = term;
  out.crc = readU32(bytes, offset + RECORD_CRC_OFFSET);
  return "ok";
}

/**
 * Checks a whole record whose header `header` was decoded from `bytes` at `offset`
 * (the record must be entirely inside `bytes`): checksum (from the segment's `seed`), zero
 * padding, and the type-specific shape. Returns undefined when valid, else the reason.
 * Writes to the CRC field while checking and restores it: `bytes` must be the caller's own buffer.
 */
export function checkRecord(bytes: Uint8Array, offset: number, header: RecordHeader, seed: number): string | undefined {
  const payloadEnd = offset + RECORD_HEADER_BYTES + header.payloadBytes;
  // One pass over header and payload with the CRC field as zero (restored after).
  const crcAt = offset + RECORD_CRC_OFFSET;
  bytes[crcAt] = bytes[crcAt + 1] = bytes[crcAt + 2] = bytes[crcAt + 3] = 0;
  const crc = crc32(bytes.subarray(offset, payloadEnd), seed);
  writeU32(bytes, offset + RECORD_CRC_OFFSET, header.crc);
  if (crc !== header.crc) return "checksum mismatch";
  if (!isZero(bytes, payloadEnd, offset + recordBytes(header.payloadBytes))) return "padding not zero";
  switch (header.type) {
    case RecordType.ENTRY:
      if (header.index < 1) return "entry index 0";
      return undefined;
    case RecordType.TRUNCATE_SUFFIX:
      return header.payloadBytes === 0 && header.index >= 1 && header.term === 0 ? undefined : "malformed truncate-suffix record";
    case RecordType.COMPACT:
      return header.payloadBytes === 0 ? undefined : "malformed compact record";
    case RecordType.COMMIT:
      return header.payloadBytes === COMMIT_PAYLOAD_BYTES && header.term === 0 ? undefined : "malformed commit record";
    default:
      return "unknown record type";
  }
}

/** The COMMIT payload. */
export interface CommitInfo {
  /** Byte offset in the segment of the batch's first record. */
  batchStartOffset: number;
  /** Records in the batch before this COMMIT. */
  recordCount: number;
}

export function encodeCommitPayload(info: CommitInfo): Uint8Array {
  const bytes = new Uint8Array(COMMIT_PAYLOAD_BYTES);
  writeU32(bytes, 0, info.batchStartOffset);
  writeU32(bytes, 4, info.recordCount);
  return bytes;
}

/** Decodes the COMMIT payload of the record at `recordOffset`. */
export function decodeCommitPayload(bytes: Uint8Array, recordOffset: number): CommitInfo {
  const at = recordOffset + RECORD_HEADER_BYTES;
  return { batchStartOffset: readU32(bytes, at), recordCount: readU32(bytes, at + 4) };
}

/**
 * Writes a COMMIT record at `offset` of `target`; returns its size. `pipelined`: the batch
 * is written while the previous batch is not yet known to be durable (COMMIT_FLAG_PIPELINED).
 */
export function encodeCommitRecord(target: Uint8Array, offset: number, lastIndex: number, info: CommitInfo, seed: number, pipelined = false): number {
  target.set(encodeCommitPayload(info), offset + RECORD_HEADER_BYTES);
  return sealRecord(target, offset, RecordType.COMMIT, pipelined ? COMMIT_FLAG_PIPELINED : 0, lastIndex, 0, COMMIT_PAYLOAD_BYTES, seed);
}
