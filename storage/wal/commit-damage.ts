/**
 * Telling a torn last COMMIT from a damaged one (recovery.ts, step 6; FORMAT.md).
 *
 * The last batch of the last segment is whole when its COMMIT record is intact. A crash
 * while the batch was being written leaves a prefix of it (or a subset of its sectors): the
 * COMMIT is then missing or cut, and its place holds what was there before the write,
 * zeros in a new segment, stale bytes of an earlier life in a recycled one. Bits flipped
 * later in a COMMIT that was written whole leave every other byte as it was written.
 *
 * Recovery knows exactly what that COMMIT must be: its batch's start offset and record
 * count, the log's last index after the batch, the segment's checksum seed, PIPELINED or
 * not. So a record that differs from it in at most FLIPPED_BITS_MAX bits, where no cut can
 * explain the difference, was written whole and damaged afterwards: its batch was durable
 * and may have been acknowledged, so it is corruption (repaired from peers), not a torn
 * tail to cut. Before this check such a batch was cut as torn: a node could forget entries
 * it had acknowledged (src/raft/REPAIR.md).
 *
 * What a cut explains, and stays a torn tail:
 *   - the bytes from the first differing one to the end of the record are zeros (a cut into
 *     unwritten space, in any segment);
 *   - every differing byte lies before a sector boundary that crosses the record (the
 *     sector before it was lost, the one after it written: FORMAT.md allows any subset of
 *     a write's sectors; 512-byte boundaries, which include those of larger sectors);
 *   - in a recycled segment, differences that start at the record's checksum or later:
 *     stale bytes there can come within a few bits of the expected ones (an older COMMIT at
 *     the same offset with the same payload), while before the checksum they would have to
 *     match a checksum of this segment's seed, which stale records fail.
 */
import { COMMIT_RECORD_BYTES, encodeCommitRecord, RECORD_CRC_OFFSET } from "./format.js";

/** At most this many flipped bits make a COMMIT "damaged after it was written whole". */
export const FLIPPED_BITS_MAX = 2;

/** What the missing COMMIT of the last (unterminated) batch must be, field by field. */
export interface ExpectedCommit {
  batchStartOffset: number;
  recordCount: number;
  /** The log's last index after the batch (the COMMIT's index field). */
  lastIndex: number;
  /** The segment's recordCrcSeed. */
  seed: number;
}

/** The two encodings the COMMIT may have had: without and with the PIPELINED flag. */
export function expectedCommitRecords(expected: ExpectedCommit): Uint8Array[] {
  return [false, true].map((pipelined) => {
    const bytes = new Uint8Array(COMMIT_RECORD_BYTES);
    encodeCommitRecord(bytes, 0, expected.lastIndex, { batchStartOffset: expected.batchStartOffset, recordCount: expected.recordCount }, expected.seed, pipelined);
    return bytes;
  });
}

/** The smallest sector a write may be torn at (FORMAT.md, System assumptions). */
const SECTOR_BYTES = 512;

/** Where the record lies: its segment's kind and its byte offset in the file. */
export interface CommitPlace {
  /** A recycled segment: stale bytes of an earlier life, not zeros, lie after its records. */
  recycled: boolean;
  fileOffset: number;
}

/**
 * Whether `onDisk` (the COMMIT_RECORD_BYTES where the last batch's COMMIT belongs) is that
 * COMMIT written whole and damaged afterwards (see the top of this file).
 */
export function commitDamagedAfterWrite(onDisk: Uint8Array, expected: readonly Uint8Array[], place: CommitPlace): boolean {
  return onDisk.length >= COMMIT_RECORD_BYTES && expected.some((commit) => flippedNotCut(onDisk, commit, place));
}

function flippedNotCut(onDisk: Uint8Array, expected: Uint8Array, place: CommitPlace): boolean {
  let firstDiffering = -1;
  let lastDiffering = -1;
  let bits = 0;
  for (let i = 0; i < expected.length; i++) {
    const diff = onDisk[i] ^ expected[i];
    if (diff === 0) continue;
    if (firstDiffering < 0) firstDiffering = i;
    lastDiffering = i;
    bits += popcount8(diff);
    if (bits > FLIPPED_BITS_MAX) return false;
  }
  if (firstDiffering < 0) return false;
  if (onDisk.subarray(firstDiffering, expected.length).every((b) => b === 0)) return false;
  const boundary = (SECTOR_BYTES - (place.fileOffset % SECTOR_BYTES)) % SECTOR_BYTES;
  if (boundary > 0 && boundary < expected.length && lastDiffering < boundary) return false;
  return !(place.recycled && firstDiffering >= RECORD_CRC_OFFSET);
}

function popcount8(byte: number): number {
  let count = 0;
  for (let b = byte; b !== 0; b &= b - 1) count++;
  return count;
}
