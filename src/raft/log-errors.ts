/**
 * The two ways a log position can be out of reach, as the core's own codes. The core's
 * log throws them, and so does MemoryStorage (the core's in-memory storage); the
 * storage engine (storage/) has its own codes for the same cases.
 */
import { RaftErrorCode, RaftwalError } from "./errors.js";

export function compactedError(index: number, firstIndex: number): RaftwalError {
  return new RaftwalError(RaftErrorCode.LOG_COMPACTED, `index ${index} is compacted (first index ${firstIndex})`);
}

export function unavailableError(index: number, lastIndex: number): RaftwalError {
  return new RaftwalError(RaftErrorCode.LOG_UNAVAILABLE, `index ${index} is beyond the last index ${lastIndex}`);
}
