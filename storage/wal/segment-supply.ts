/**
 * Where the WAL's next segment comes from, and where compacted segments go.
 *
 * Compacted segments are recycled, not deleted (up to `recycledSegmentsMax` of them): each
 * is renamed `recycled-<its id>.wal` and later becomes a new segment without rewriting its
 * data. Overwriting blocks that are already allocated and written is what makes a later
 * durable write cheap (no block allocation to journal), so a recycled segment needs no
 * preallocation write at all. Only when none is kept is a new file made (createSpareSegment:
 * sparse, with a zero-written start when the WAL asks for one). Either way the next segment
 * is made ready in the background, well before the active one is full, so that rollover only
 * writes the new header.
 *
 * Stale records of a recycled file's earlier life are told from live ones by their
 * checksum, which covers the id of the segment each record was written to (format version
 * 2). Format 1 segments (whose checksums do not) are deleted, never recycled.
 */
import { strict as assert } from "node:assert";
import { posix } from "node:path";
import type { FileSystem, StorageFile } from "../fs/file-system.js";
import { listRecycledFiles, parseRecycledFileName, recycledFileName } from "./naming.js";
import { createSpareSegment, prepareRecycledSpare, type SpareSegment } from "./segment-writer.js";

export interface SegmentSupplyOptions {
  segmentSizeBytes: number;
  /** Most compacted segments kept for reuse. */
  recycledSegmentsMax: number;
}

/** A compacted segment handed to `retire`. */
export interface RetiredSegment {
  segmentId: number;
  path: string;
  file: StorageFile;
  /** Format 2 and the configured size: it can become a later segment. */
  recyclable: boolean;
}

export class SegmentSupply {
  /** Names of the recycled files kept, oldest first. */
  private readonly recycled: string[];
  private spare: { segmentId: number; ready: Promise<SpareSegment | Error> } | undefined;

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly options: SegmentSupplyOptions,
    recycled: string[],
    spare: SpareSegment | undefined,
  ) {
    this.recycled = recycled;
    if (spare) this.spare = { segmentId: spare.segmentId, ready: Promise.resolve(spare) };
  }

  /**
   * Takes stock of `dir`: keeps up to recycledSegmentsMax recycled files of the configured
   * size and removes the others (then fsyncs the directory). `spare` is the one recovery found.
   */
  static async open(fs: FileSystem, dir: string, options: SegmentSupplyOptions, spare: SpareSegment | undefined): Promise<SegmentSupply> {
    const kept: string[] = [];
    let removed = false;
    for (const name of await listRecycledFiles(dir, fs)) {
      const path = posix.join(dir, name);
      const file = await fs.open(path, { readOnly: true });
      const sizeBytes = await file.size().finally(() => file.close());
      if (kept.length < options.recycledSegmentsMax && sizeBytes === options.segmentSizeBytes) {
        kept.push(name);
      } else {
        await fs.remove(path);
        removed = true;
      }
    }
    if (removed) await fs.syncDirectory(dir);
    return new SegmentSupply(fs, dir, options, kept, spare);
  }

  /**
   * Starts making `segment-<segmentId>.wal` ready in the background, unless that has
   * started: a recycled file if one is kept, else a new file whose first `prefillBytes` are
   * zero-written.
   */
  prepare(segmentId: number, prefillBytes: number): void {
    if (this.spare) {
      assert.equal(this.spare.segmentId, segmentId, "one spare at a time, for the segment after the active one");
      return;
    }
    const recycledName = this.recycled.shift();
    const ready =
      recycledName !== undefined
        ? prepareRecycledSpare(this.fs, this.dir, recycledName, segmentId, this.options.segmentSizeBytes)
        : createSpareSegment(this.fs, this.dir, segmentId, this.options.segmentSizeBytes, prefillBytes);
    this.spare = { segmentId, ready: ready.catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))) };
  }

  /**
   * The lowest segment id never used in this directory as far as the supply sees: past the
   * spare's and every recycled file's former id. A WAL that starts over (a new directory, or
   * one whose segments repair set aside) starts here: a recycled file's stale records carry
   * checksums seeded with its former id, so that id must never name a live segment again.
   */
  firstUnusedSegmentId(): number {
    const recycledIds = this.recycled.map((name) => parseRecycledFileName(name) ?? 0);
    return Math.max(this.spare?.segmentId ?? 1, ...recycledIds.map((id) => id + 1));
  }

  /** The spare `segment-<segmentId>.wal`, ready (made now if not prepared). Throws what preparing it threw. */
  async take(segmentId: number, prefillBytes: number): Promise<SpareSegment> {
    this.prepare(segmentId, prefillBytes);
    const spare = await this.spare!.ready;
    this.spare = undefined;
    if (spare instanceof Error) throw spare;
    return spare;
  }

  /**
   * Retires compacted segments (their files are closed here): each is kept for reuse,
   * renamed `recycled-<id>.wal`, while fewer than recycledSegmentsMax are kept and it is
   * recyclable; otherwise it is removed. Then one directory fsync makes the names durable.
   */
  async retire(segments: RetiredSegment[]): Promise<void> {
    if (segments.length === 0) return;
    for (const segment of segments) {
      await segment.file.close().catch(() => undefined);
      if (segment.recyclable && this.recycled.length < this.options.recycledSegmentsMax) {
        const name = recycledFileName(segment.segmentId);
        await this.fs.rename(segment.path, posix.join(this.dir, name));
        this.recycled.push(name);
      } else {
        await this.fs.remove(segment.path);
      }
    }
    await this.fs.syncDirectory(this.dir);
  }

  /** Closes the spare's file, once its preparation has finished. */
  async close(): Promise<void> {
    const spare = await this.spare?.ready;
    this.spare = undefined;
    if (spare && !(spare instanceof Error)) await spare.file.close().catch(() => undefined);
  }
}
