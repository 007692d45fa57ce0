/** The segmented write-ahead log: the public API of storage/wal. */
export { Wal, WAL_DEFAULTS, type WalOptions, type SegmentInfo, type RecoveryReport } from "./wal.js";
export { WalCorruptionError, type CorruptionDetail } from "./errors.js";
export type { TornTail } from "./recovery.js";
export {
  WAL_FORMAT,
  FORMAT_VERSION,
  RecordType,
  RECORD_TYPE_NAMES,
  SEGMENT_HEADER_BYTES,
  RECORD_HEADER_BYTES,
  RECORD_PAYLOAD_BYTES_MAX,
  SEGMENT_SIZE_BYTES_DEFAULT,
  SEGMENT_SIZE_BYTES_MIN,
  SEGMENT_SIZE_BYTES_MAX,
} from "./format.js";
export { segmentFileName, parseSegmentFileName, tornTailFileName } from "./naming.js";
export { crc32 } from "./crc.js";
export type { Preallocation } from "./segment-writer.js";
export {
  listSegments,
  scanWal,
  verifyWal,
  repairTornTail,
  type SegmentListing,
  type ScannedRecord,
  type RecordStatus,
  type VerifyResult,
  type VerifiedSegment,
  type VerifyProgress,
} from "./inspect.js";
