/**
 * Writing segment files: making a spare ready (a new sparse file, or a recycled one; synced,
 * its name made durable by a directory fsync), activating it (header written durably before
 * any record), appending batches (one durable write each, up to two in flight), and writing
 * zeros ahead of the write offset of a new segment.
 *
 * An append that fails leaves the writer as it was before the call (the write offset
 * moves back to where the failed batch started), then reports the error. The caller (the Wal) treats any write
 * or fsync failure as fatal: a failed fsync is never retried.
 */
import { strict as assert } from "node:assert";
import { posix } from "node:path";
import type { DurableWriteHint, FileSystem, StorageFile } from "../fs/file-system.js";
import { FORMAT_VERSION, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, encodeSegmentHeader, recordCrcSeed } from "./format.js";
import { WalErrorCode } from "../errors.js";
import { walError } from "./errors.js";
import { segmentFileName } from "./naming.js";

/** Zero bytes written per call while zero-filling. */
const PREALLOCATE_CHUNK_BYTES = 1024 * 1024;
let zeroChunk: Uint8Array | undefined;

/**
 * Writes `length` zero bytes at `position`. Real zeros, not a sparse extension: a durable
 * write over blocks that are already allocated and written need not update file metadata,
 * which makes each later batch's write cheaper.
 */
export async function writeZeros(file: StorageFile, position: number, length: number): Promise<void> {
  zeroChunk ??= new Uint8Array(PREALLOCATE_CHUNK_BYTES);
  for (let done = 0; done < length; ) {
    const count = Math.min(PREALLOCATE_CHUNK_BYTES, length - done);
    await file.write(count === zeroChunk.length ? zeroChunk : zeroChunk.subarray(0, count), position + done);
    done += count;
  }
}

/** A segment file made ready ahead of use: a blank header, durable, with a durable name. */
export interface SpareSegment {
  segmentId: number;
  name: string;
  path: string;
  file: StorageFile;
  sizeBytes: number;
  /** The file held an earlier segment: stale records follow the header (its header says so once activated). */
  recycled?: boolean;
  /** Bytes from the start known to be written (zeros or stale records) and durable: the whole file when recycled. */
  filledBytes: number;
}

/**
 * When the space ahead of the write offset of a new (not recycled) segment is zero-written:
 * "auto" (default) while batches are small, "zeros" always, "sparse" never (blocks are
 * allocated as batches land). See Wal: zero-writing ahead makes a small batch's durable
 * write cheaper; for large batches the extra write volume costs more than it saves.
 */
export type Preallocation = "auto" | "zeros" | "sparse";

/**
 * Creates `segment-<id>.wal` of `sizeBytes` (sparse: only its size is set), zero-writes
 * its first `prefillBytes`, makes that durable, then syncs the directory.
 */
export async function createSpareSegment(fs: FileSystem, dir: string, segmentId: number, sizeBytes: number, prefillBytes: number): Promise<SpareSegment> {
  const name = segmentFileName(segmentId);
  const path = posix.join(dir, name);
  const file = await fs.open(path, { create: true, exclusive: true });
  const filledBytes = Math.min(prefillBytes, sizeBytes);
  try {
    await file.truncate(sizeBytes);
    await writeZeros(file, 0, filledBytes);
    await file.sync();
    await fs.syncDirectory(dir);
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
  return { segmentId, name, path, file, sizeBytes, recycled: false, filledBytes };
}

/**
 * Makes the recycled file `recycledName` (a compacted segment kept for reuse) the spare
 * `segment-<segmentId>.wal`, without rewriting its data: its old records stay as stale
 * bytes, which fail the new segment's checksums. Steps, each durable before the next:
 * blank the header and the first record's place (so it reads as a spare, and its old
 * header can never name the wrong segment under the new name), then rename it and fsync
 * the directory. A crash in between leaves either a recycled file (ignored by recovery,
 * reused later) or a spare.
 *
 * Only files of the segment size are kept for reuse (SegmentSupply), so a file of another
 * length changed after it was kept: it is left as it is and the preparation fails
 * (WAL_ERR_FAILED, naming the file and both sizes). File sizes are not trusted (FORMAT.md):
 * one shorter than a segment header must never become a segment whose header says so.
 */
export async function prepareRecycledSpare(fs: FileSystem, dir: string, recycledName: string, segmentId: number, segmentSizeBytes: number): Promise<SpareSegment> {
  const from = posix.join(dir, recycledName);
  const name = segmentFileName(segmentId);
  const path = posix.join(dir, name);
  const old = await fs.open(from);
  try {
    const sizeBytes = await old.size();
    if (sizeBytes !== segmentSizeBytes) {
      throw walError(WalErrorCode.FAILED, `recycled file ${from} is ${sizeBytes} bytes, not the segment size ${segmentSizeBytes}: it changed after it was kept for reuse, so it is not made ${name} (reopening the WAL removes it)`);
    }
    // Made ready in the background while the active segment takes writes: through the pool.
    await old.writeDurable(new Uint8Array(SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES), 0, { callerIdle: false });
  } finally {
    await old.close();
  }
  await fs.rename(from, path);
  await fs.syncDirectory(dir);
  // Opened under its new name: a file object keeps the path it was opened with.
  const file = await fs.open(path);
  return { segmentId, name, path, file, sizeBytes: segmentSizeBytes, recycled: true, filledBytes: segmentSizeBytes };
}

/** A zero write in flight ahead of the write offset. */
interface Fill {
  fromOffset: number;
  settled: Promise<void>;
}

/** The segment being appended to. */
export class ActiveSegment {
  /**
   * Bytes from the start known to be written and durable (zeros ahead of the records):
   * a batch below it overwrites allocated, written blocks. Invariant: a zero write is only
   * ever issued at or after the write offset, and a batch is only issued once no zero
   * write in flight overlaps it (fillInTheWay), so zeros never land on records.
   */
  private filledEndBytes: number;
  private fill: Fill | undefined;
  /**
   * No more zero writes in this segment: a batch went beyond the filled space or had to
   * wait for a zero write (the writer is faster than the filler), or the segment is being
   * sealed or closed.
   */
  private fillingStopped = false;

  /**
   * Invariant: SEGMENT_HEADER_BYTES <= writeOffset <= sizeBytes; bytes from writeOffset on
   * hold no record of this segment (zero, or a recycled file's stale records).
   */
  private writeOffsetBytes: number;

  constructor(
    readonly segmentId: number,
    readonly name: string,
    readonly path: string,
    readonly file: StorageFile,
    /** Preallocated size; batches must fit in it. */
    readonly sizeBytes: number,
    /** Index the log's next entry had when this segment was activated. */
    readonly firstIndex: number,
    writeOffset: number,
    /** The running CRC its records start from (recordCrcSeed of its id and format version). */
    readonly crcSeed: number,
    filledBytes: number,
  ) {
    // Never expected to fail: a spare always has the segment size (prepareRecycledSpare checks a recycled one).
    assert.ok(writeOffset >= SEGMENT_HEADER_BYTES && writeOffset <= sizeBytes, `write offset inside the segment (${name}: write offset ${writeOffset}, size ${sizeBytes} bytes)`);
    this.writeOffsetBytes = writeOffset;
    this.filledEndBytes = filledBytes;
  }

  /** Turns a spare into the active segment: writes its header durably before any record. */
  static async activate(spare: SpareSegment, firstIndex: number): Promise<ActiveSegment> {
    const header = encodeSegmentHeader({
      formatVersion: FORMAT_VERSION,
      recycled: spare.recycled === true,
      segmentSizeBytes: spare.sizeBytes,
      segmentId: spare.segmentId,
      firstIndex,
    });
    // Nothing else can be written to the log until this header is durable.
    await spare.file.writeDurable(header, 0, { callerIdle: true });
    const seed = recordCrcSeed(spare.segmentId);
    return new ActiveSegment(spare.segmentId, spare.name, spare.path, spare.file, spare.sizeBytes, firstIndex, SEGMENT_HEADER_BYTES, seed, spare.filledBytes);
  }

  /** Where the next batch goes: just past the batches written or being written. */
  writeOffset(): number {
    return this.writeOffsetBytes;
  }

  remainingBytes(): number {
    return this.sizeBytes - this.writeOffsetBytes;
  }

  /**
   * Starts writing `batch` durably at the write offset and moves the offset past it, so the
   * next batch can be written while this one is in flight. Resolves once durable. On
   * failure the space from the failed batch on is given back (`rewind`): the writer is
   * where it was before it (the bytes may or may not be on disk: the WAL is then failed and
   * recovery decides, by checksums and commit records).
   */
  async appendBatch(batch: Uint8Array, hint: DurableWriteHint): Promise<void> {
    assert.ok(batch.length <= this.remainingBytes(), "batch fits in the segment");
    assert.ok(this.fillInTheWay(batch.length) === undefined, "no zero write in flight under a batch");
    const offset = this.writeOffsetBytes;
    this.writeOffsetBytes = offset + batch.length;
    if (this.writeOffsetBytes > this.filledEndBytes) this.fillingStopped = true;
    try {
      // One durable write (O_DSYNC on the real disk) instead of a write and an fdatasync
      // (measured: about 10% more appends/s for 1 appender); made on the calling thread when
      // the hint says the WAL is idle (storage/fs/node-file-system.ts says why).
      await this.file.writeDurable(batch, offset, hint);
    } catch (error) {
      this.writeOffsetBytes = Math.min(this.writeOffsetBytes, offset);
      throw error;
    }
  }

  /**
   * Starts zero-writing the next `chunkBytes` after the filled space, durably and in the
   * background, unless `aheadBytes` after the write offset are filled already, a zero write
   * is in flight, or filling stopped. Returns the write's promise (its failure is the
   * caller's to report), or undefined when nothing was started.
   */
  fillAhead(aheadBytes: number, chunkBytes: number): Promise<void> | undefined {
    if (this.fill || this.fillingStopped) return undefined;
    const from = Math.max(this.filledEndBytes, this.writeOffsetBytes);
    const to = Math.min(this.sizeBytes, from + chunkBytes);
    if (from >= Math.min(this.sizeBytes, this.writeOffsetBytes + aheadBytes) || to <= from) return undefined;
    const settled = writeZeros(this.file, from, to - from)
      .then(() => this.file.sync())
      .then(
      () => {
        this.filledEndBytes = to;
        this.fill = undefined;
      },
      (error: unknown) => {
        this.fill = undefined;
        throw error;
      },
    );
    this.fill = { fromOffset: from, settled };
    return settled;
  }

  /** The zero write in flight that a batch of `bytes` at the write offset would overlap: the batch must wait for it. */
  fillInTheWay(bytes: number): Promise<void> | undefined {
    return this.fill && this.writeOffsetBytes + bytes > this.fill.fromOffset ? this.fill.settled : undefined;
  }

  /** Bytes after the write offset known to be zero-written and durable. */
  filledAheadBytes(): number {
    return Math.max(0, this.filledEndBytes - this.writeOffsetBytes);
  }

  /** Starts no more zero writes in this segment. */
  stopFilling(): void {
    this.fillingStopped = true;
  }

  /** Stops filling and waits until no zero write is in flight (before the segment is sealed or closed); a failure was reported by fillAhead's promise. */
  async stopFillingAndSettle(): Promise<void> {
    this.fillingStopped = true;
    await this.fill?.settled.catch(() => undefined);
  }
}
