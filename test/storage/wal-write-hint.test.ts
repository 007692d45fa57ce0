/**
 * The WAL tells the file system when nothing could overlap a durable write (`callerIdle`):
 * the real disk then writes it on the calling thread instead of through the thread pool
 * (storage/fs/node-file-system.ts). A wrong hint would silently turn every write into a
 * pool write (or block a busy caller); the argument is required, so a wrapper cannot drop
 * it, and these tests pin what the WAL passes.
 */
import { describe, expect, it } from "vitest";
import type { DurableWriteHint, OpenOptions, StorageFile } from "../../storage/fs/file-system.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { SEGMENT_HEADER_BYTES } from "../../storage/wal/format.js";
import { Wal } from "../../storage/wal/index.js";
import { DIR, entry, range } from "./wal-helpers.js";

interface DurableWrite {
  path: string;
  bytes: number;
  hint: DurableWriteHint | undefined;
}

/** Memory file system recording every durable write and the hint it came with. */
class HintRecordingFileSystem extends MemoryFileSystem {
  readonly durableWrites: DurableWrite[] = [];

  override async open(path: string, options?: OpenOptions): Promise<StorageFile> {
    const file = await super.open(path, options);
    const writeDurable = file.writeDurable.bind(file);
    file.writeDurable = (data, position, hint) => {
      this.durableWrites.push({ path, bytes: data.length, hint });
      return writeDurable(data, position, hint);
    };
    return file;
  }
}

describe("the WAL's durable-write hint", () => {
  it("a lone append, and the header of a new segment, are written with the caller idle", async () => {
    const fs = new HintRecordingFileSystem();
    const wal = await Wal.open(DIR, { fs, segmentSizeBytes: 64 * 1024 });
    fs.durableWrites.length = 0;
    await wal.append([entry(1, 1)]);
    await wal.append(range(2, 3, 1));
    expect(fs.durableWrites.map((w) => w.hint?.callerIdle)).toEqual([true, true]);
    // Fill the first segment so the next append rolls over: the new header is written idle too.
    await wal.append(range(4, 35, 1, 1500));
    await wal.append(range(36, 50, 1, 1500));
    const headers = fs.durableWrites.filter((w) => w.bytes === SEGMENT_HEADER_BYTES);
    expect(headers.length).toBeGreaterThanOrEqual(1);
    expect(headers.every((w) => w.hint?.callerIdle === true)).toBe(true);
    await wal.close();
  });

  it("batches written while another is in flight or queued carry callerIdle false, and every batch carries a hint", async () => {
    const fs = new HintRecordingFileSystem();
    const wal = await Wal.open(DIR, { fs, segmentSizeBytes: 4 * 1024 * 1024 });
    fs.durableWrites.length = 0;
    // 200 concurrent appends of 1 KiB: a queue of about 210 KB is written as two batches
    // (the second encoded while the first is written), then the callers of one batch
    // append again while the other is in flight.
    let next = 1;
    const appender = async (): Promise<void> => {
      for (let round = 0; round < 3; round++) await wal.append([entry(next++, 1, 1024)]);
    };
    await Promise.all(Array.from({ length: 200 }, appender));
    const batches = fs.durableWrites.filter((w) => w.bytes > SEGMENT_HEADER_BYTES);
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(batches.every((w) => w.hint !== undefined)).toBe(true);
    expect(batches.some((w) => w.hint!.callerIdle === false)).toBe(true);
    expect(wal.lastIndex()).toBe(600);
    await wal.close();
  });
});
