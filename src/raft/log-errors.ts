/**
 * The two ways a log position can be out of reach, as RaftwalErrors with the storage
 * codes (the same ones a `RaftLogStorage` throws).
 */
import { ErrorCode, RaftwalError } from "../errors.js";

export function compactedError(index: number, firstIndex: number): RaftwalError {
  return new RaftwalError(ErrorCode.WAL_COMPACTED, `index ${index} is compacted (first index ${firstIndex})`);
}

export function unavailableError(index: number, lastIndex: number): RaftwalError {
  return new RaftwalError(ErrorCode.WAL_UNAVAILABLE, `index ${index} is beyond the last index ${lastIndex}`);
}
