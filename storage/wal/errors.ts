/** The WAL's typed errors. Match on `code` (storage/errors.ts), never on the message. */
import { RaftwalError, WalErrorCode, type RaftwalErrorCode } from "../errors.js";

/** Where corruption was found: enough to locate it with `raftwal wal dump`. */
export interface CorruptionDetail {
  /** Segment file name (e.g. segment-00000000000000000003.wal). */
  segment: string;
  /** Path of the segment file. */
  path: string;
  /** Byte offset in the segment of the damaged record (0 for the segment header). */
  offset: number;
  /** What is wrong. */
  reason: string;
  /** Entry indexes affected (possibly empty when no entry can be named, e.g. a damaged header). */
  indexes: number[];
}

/** WAL_ERR_CORRUPT: acknowledged data is damaged. Never repaired automatically. */
export class WalCorruptionError extends RaftwalError implements CorruptionDetail {
  readonly segment: string;
  readonly path: string;
  readonly offset: number;
  readonly reason: string;
  readonly indexes: number[];

  constructor(detail: CorruptionDetail, options?: { cause?: unknown }) {
    const which = detail.indexes.length === 0 ? "" : detail.indexes.length === 1 ? `, entry ${detail.indexes[0]}` : `, entries ${detail.indexes.join(", ")}`;
    super(WalErrorCode.CORRUPT, `WAL corrupt: ${detail.segment} at byte offset ${detail.offset}: ${detail.reason}${which}`, options);
    this.segment = detail.segment;
    this.path = detail.path;
    this.offset = detail.offset;
    this.reason = detail.reason;
    this.indexes = detail.indexes;
  }
}

export function walError(code: WalErrorCode | RaftwalErrorCode, message: string, cause?: unknown): RaftwalError {
  return new RaftwalError(code, message, cause === undefined ? undefined : { cause });
}
