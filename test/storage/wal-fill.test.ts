/**
 * Zero-writing ahead of the writer in new (sparse) segments: while batches are small the
 * space just ahead of the write offset is zero-written in the background, so batches land
 * on blocks already allocated and written; it stops for large batches; and zeros never
 * land on records, even when a batch catches up with a zero write in flight.
 */
import { describe, expect, it } from "vitest";
import type { OpenOptions, StorageFile } from "../../storage/fs/file-system.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { Wal } from "../../storage/wal/index.js";
import { DIR, range } from "./wal-helpers.js";

/** Records every write of zeros to a segment (position, length), and can hold them until released. */
class ZeroWatchingFileSystem extends MemoryFileSystem {
  readonly zeroWrites: Array<{ path: string; position: number; length: number }> = [];
  hold: Promise<void> | undefined;
  held = 0;

  override async open(path: string, options?: OpenOptions): Promise<StorageFile> {
    const file = await super.open(path, options);
    const write = file.write.bind(file);
    file.write = async (data, position) => {
      if (path.endsWith(".wal") && data.length > 0 && data.every((b) => b === 0)) {
        this.zeroWrites.push({ path, position, length: data.length });
        if (this.hold) {
          this.held++;
          await this.hold;
        }
      }
      return write(data, position);
    };
    return file;
  }
}

const MiB = 1024 * 1024;

describe("zeros written ahead", () => {
  it("auto: small batches get zeros written ahead of them; large batches stop it; everything reads back", async () => {
    const fs = new ZeroWatchingFileSystem();
    const wal = await Wal.open(DIR, { fs, segmentSizeBytes: 4 * MiB });
    for (let i = 1; i <= 300; i++) await wal.append(range(i, i, 1, 200)); // ~70 KB in batches of one entry
    const small = fs.zeroWrites.length;
    expect(small).toBeGreaterThan(0);
    // 1,000 concurrent calls of 2 KiB: batches of about 1 MB; more than a segment in all.
    for (let round = 0; round < 6; round++) {
      const from = wal.lastIndex() + 1;
      await Promise.all(Array.from({ length: 1000 }, (_, k) => wal.append(range(from + k, from + k, 1, 2048))));
    }
    const segments = new Set(fs.zeroWrites.map((w) => w.path));
    const latest = wal.segmentInfos().at(-1)!;
    expect(segments.has(`${DIR}/${latest.name}`)).toBe(false); // a segment begun under large batches gets none
    await wal.close();
    const again = await Wal.open(DIR, { fs, segmentSizeBytes: 4 * MiB, cacheEntriesMax: 0 });
    expect(again.entries(1, 301, Infinity)).toEqual(range(1, 300, 1, 200));
    expect(again.lastIndex()).toBe(6300);
    await again.close();
  });

  it("a batch that reaches a zero write in flight waits for it: the zeros never land on its records", async () => {
    const fs = new ZeroWatchingFileSystem();
    const options = { fs, segmentSizeBytes: MiB, preallocation: "zeros" as const };
    const wal = await Wal.open(DIR, options);
    await wal.append(range(1, 1, 1, 100));
    let release!: () => void;
    fs.hold = new Promise((resolve) => (release = resolve));
    // Appends until a zero write is held in flight ahead of the writer.
    let next = 2;
    while (fs.held === 0) await wal.append(range(next, next, 1, 100)).then(() => next++);
    // A batch of about 620 KB reaches into the zeros being written (at most 512 KiB ahead).
    const big = range(next, next + 599, 1, 1000);
    let done = false;
    const appended = wal.append(big).then(() => (done = true));
    for (let k = 0; k < 20; k++) await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    fs.hold = undefined;
    release();
    await appended;
    await wal.close();
    fs.crash();
    const again = await Wal.open(DIR, { ...options, cacheEntriesMax: 0 });
    expect(again.lastIndex()).toBe(next + 599);
    expect(again.entries(next, next + 600, Infinity)).toEqual(big);
    await again.close();
  });
});
