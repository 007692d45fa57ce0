/**
 * Recovery: torn tails are cut (and saved), corruption of acknowledged data is refused
 * with its location, and nothing damaged is ever returned.
 */
import { posix } from "node:path";
import { describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { Wal, WalCorruptionError, segmentFileName, SEGMENT_HEADER_BYTES } from "../../storage/wal/index.js";
import { COMMIT_RECORD_BYTES } from "../../storage/wal/format.js";
import { DIR, cloneDir, entry, errorCode, range } from "./wal-helpers.js";

const SEGMENT = posix.join(DIR, segmentFileName(1));
const OPTIONS = { segmentSizeBytes: 64 * 1024 };

/** Three committed batches of two entries each (indexes 1..6), plus the byte ranges of each batch. */
async function smallLog(): Promise<{ fs: MemoryFileSystem; batchEnds: number[] }> {
  const fs = new MemoryFileSystem();
  const wal = await Wal.open(DIR, { fs, ...OPTIONS });
  const batchEnds: number[] = [];
  for (let b = 0; b < 3; b++) {
    await wal.append([entry(2 * b + 1, 1, 5 + b), entry(2 * b + 2, 1, 9)]);
    batchEnds.push(lastNonZero(fs.currentBytes(SEGMENT)));
  }
  await wal.close();
  return { fs, batchEnds };
}

function lastNonZero(bytes: Uint8Array): number {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return end + ((8 - (end % 8)) % 8);
}

describe("torn tail", () => {
  it("cut at every byte of the last batch: recovery keeps exactly the complete batches and saves the cut bytes", async () => {
    // Build the prefix (two committed batches), then write the last batch with a failing
    // fsync, crash keeping `cut` of its unsynced bytes, and reopen.
    const build = async (): Promise<{ fs: MemoryFileSystem; start: number; batch: Uint8Array }> => {
      const fs = new MemoryFileSystem();
      const wal = await Wal.open(DIR, { fs, ...OPTIONS });
      await wal.append(range(1, 3, 1, 20));
      await wal.append(range(4, 5, 2, 33));
      const start = lastNonZero(fs.currentBytes(SEGMENT));
      fs.failNextSync(segmentFileName(1));
      await expect(wal.append(range(6, 8, 2, 41))).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
      const end = lastNonZero(fs.currentBytes(SEGMENT));
      return { fs, start, batch: fs.currentBytes(SEGMENT).slice(start, end) };
    };
    const reference = await build();
    const batchBytes = reference.batch.length;
    expect(batchBytes).toBeGreaterThan(150);
    for (let cut = 0; cut <= batchBytes; cut++) {
      const { fs, start, batch } = await build();
      fs.crash({ keepUnsyncedBytes: () => cut });
      const wal = await Wal.open(DIR, { fs, ...OPTIONS });
      // Bytes after the last non-zero one change nothing: the batch is then complete.
      const complete = batch.subarray(cut).every((b) => b === 0);
      const expected = complete ? [...range(1, 3, 1, 20), ...range(4, 5, 2, 33), ...range(6, 8, 2, 41)] : [...range(1, 3, 1, 20), ...range(4, 5, 2, 33)];
      expect(wal.lastIndex(), `cut ${cut}`).toBe(expected.length);
      expect(wal.entries(1, wal.lastIndex() + 1, Infinity)).toEqual(expected);
      const landed = lastNonZero(batch.subarray(0, cut));
      if (complete || landed === 0) {
        expect(wal.recovery.tornTail, `cut ${cut}`).toBeUndefined();
      } else {
        const torn = wal.recovery.tornTail!;
        expect(torn, `cut ${cut}`).toBeDefined();
        expect(torn.offset).toBe(start);
        expect(torn.savedTo).toBe(`${SEGMENT}.torn-${start}`);
        const saved = fs.currentBytes(torn.savedTo!);
        expect(saved.length).toBeGreaterThan(0);
        expect(saved).toEqual(batch.subarray(0, saved.length));
        // The cut range is zero again in the segment, durably.
        expect(fs.durableBytes(SEGMENT).subarray(start, start + batchBytes).every((b) => b === 0)).toBe(true);
      }
      // The log is writable again and the next reopen is clean.
      await wal.append([entry(wal.lastIndex() + 1, 3)]);
      await wal.close();
      const again = await Wal.open(DIR, { fs, ...OPTIONS });
      expect(again.recovery.tornTail).toBeUndefined();
      expect(again.lastIndex()).toBe(expected.length + 1);
      await again.close();
    }
  });

  it("a second tear at the same offset keeps both copies of the cut bytes", async () => {
    const fs = new MemoryFileSystem();
    // Sparse: no zeros written ahead in the background, so the failing sync is the batch's.
    let wal = await Wal.open(DIR, { fs, ...OPTIONS, preallocation: "sparse" });
    await wal.append(range(1, 3, 1));
    for (let round = 0; round < 2; round++) {
      fs.failNextSync(segmentFileName(1));
      await expect(wal.append(range(4, 6, 1 + round, 30))).rejects.toBeDefined();
      fs.crash({ keepUnsyncedBytes: () => 50 });
      wal = await Wal.open(DIR, { fs, ...OPTIONS, preallocation: "sparse" });
      expect(wal.lastIndex()).toBe(3);
    }
    const torn = (await fs.list(DIR)).filter((name) => name.includes(".torn-"));
    expect(torn).toHaveLength(2);
    expect(torn[1]).toBe(`${torn[0]}.1`);
    await wal.close();
  });

  it("a torn segment header (activation interrupted) is a spare, not corruption", async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open(DIR, { fs, ...OPTIONS });
    await wal.append(range(1, 3, 1));
    await wal.close();
    // Fake an interrupted activation of segment 2: a durable preallocated file with half a header.
    const path = posix.join(DIR, segmentFileName(2));
    const file = await fs.open(path, { create: true });
    await file.write(new Uint8Array(OPTIONS.segmentSizeBytes), 0);
    await file.write(new Uint8Array([0x52, 0x41, 0x46, 0x54, 0x57]), 0);
    await file.sync();
    await fs.syncDirectory(DIR);
    const again = await Wal.open(DIR, { fs, ...OPTIONS });
    expect(again.lastIndex()).toBe(3);
    expect(again.recovery.tornTail?.offset).toBe(0);
    expect(again.recovery.tornTail?.segment).toBe(segmentFileName(2));
    await again.close();
  });
});

describe("bit flips", () => {
  it("a flipped bit (every bit of every byte) in committed records is always detected and names the right entries", async () => {
    const { fs, batchEnds } = await smallLog();
    const bytes = fs.currentBytes(SEGMENT);
    // Which entry (or batch) each byte belongs to, from a clean scan.
    const clean = await Wal.open(DIR, { fs: await cloneDir(fs), ...OPTIONS });
    expect(clean.lastIndex()).toBe(6);
    await clean.close();
    const batchOf = (position: number): number => batchEnds.findIndex((end) => position < end);
    // The last batch's COMMIT record: a flip there reads as a torn tail only when the record
    // then looks cut, its bytes from the flipped one on all zero (commit-damage.ts).
    const lastCommit = batchEnds[2] - COMMIT_RECORD_BYTES;
    const looksCut = (position: number, bit: number): boolean => {
      if (position < lastCommit) return false;
      const record = bytes.slice(lastCommit, batchEnds[2]);
      record[position - lastCommit] ^= 1 << bit;
      return record.subarray(position - lastCommit).every((b) => b === 0);
    };
    let corruptions = 0;
    let tornTails = 0;
    for (let position = SEGMENT_HEADER_BYTES; position < batchEnds[2]; position++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = await cloneDir(fs);
        copy.flipBit(SEGMENT, position, bit);
        const batch = batchOf(position);
        const batchEntries = [2 * batch + 1, 2 * batch + 2];
        try {
          const wal = await Wal.open(DIR, { fs: copy, ...OPTIONS });
          // Only a flip that makes the last COMMIT look cut may be taken for a torn tail; that batch is then gone.
          expect(looksCut(position, bit), `flip at ${position} bit ${bit} taken for a torn tail`).toBe(true);
          expect(wal.lastIndex()).toBe(4);
          expect(wal.recovery.tornTail?.offset).toBe(batchEnds[1]);
          expect(wal.entries(1, 5, Infinity)).toEqual(smallLogEntries().slice(0, 4));
          tornTails++;
          await wal.close();
        } catch (error) {
          if (!(error instanceof WalCorruptionError)) throw error;
          expect(error.code).toBe("WAL_ERR_CORRUPT");
          expect(error.segment).toBe(segmentFileName(1));
          expect(error.offset).toBeLessThanOrEqual(position);
          expect(error.indexes.some((i) => batchEntries.includes(i)), `flip at ${position}: ${error.message}`).toBe(true);
          expect(looksCut(position, bit), `flip at ${position} bit ${bit}`).toBe(false);
          corruptions++;
        }
      }
    }
    expect(corruptions).toBeGreaterThan(0);
    // Exactly the flips that clear the record's last set bit (here its record count's).
    let cutLooking = 0;
    for (let position = lastCommit; position < batchEnds[2]; position++) for (let bit = 0; bit < 8; bit++) cutLooking += looksCut(position, bit) ? 1 : 0;
    expect(cutLooking).toBeGreaterThan(0);
    expect(tornTails).toBe(cutLooking);
    expect(tornTails).toBeLessThan(4);
  });

  it("entries() never returns an entry whose record fails its checksum", async () => {
    const { fs } = await smallLog();
    const wal = await Wal.open(DIR, { fs, ...OPTIONS, cacheEntriesMax: 0 });
    expect(wal.entries(1, 7, Infinity)).toEqual(smallLogEntries());
    // Damage entry 3's payload behind the WAL's back (media corruption after open).
    const bytes = fs.currentBytes(SEGMENT);
    const at = findEntryPayload(bytes, 3);
    fs.flipBit(SEGMENT, at + 2, 5);
    expect(() => wal.entries(1, 7, Infinity)).toThrowError(WalCorruptionError);
    try {
      wal.entries(3, 4, Infinity);
    } catch (error) {
      expect((error as WalCorruptionError).indexes).toEqual([3]);
      expect(errorCode(error)).toBe("WAL_ERR_CORRUPT");
    }
    expect(wal.entries(4, 7, Infinity)).toEqual(smallLogEntries().slice(3));
    await wal.close();
  });

  it("a segment missing from the middle is corruption", async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open(DIR, { fs, ...OPTIONS });
    for (let i = 0; i < 40; i++) await wal.append(range(i * 100 + 1, i * 100 + 100, 1, 40));
    await wal.close();
    const names = await wal.listSegmentNames();
    expect(names.length).toBeGreaterThan(3);
    await fs.remove(posix.join(DIR, names[1]));
    await expect(Wal.open(DIR, { fs, ...OPTIONS })).rejects.toMatchObject({ code: "WAL_ERR_CORRUPT" });
  });
});

function smallLogEntries() {
  return [entry(1, 1, 5), entry(2, 1, 9), entry(3, 1, 6), entry(4, 1, 9), entry(5, 1, 7), entry(6, 1, 9)];
}

/** Byte offset of the payload of entry `index` in a segment image (scans record headers). */
function findEntryPayload(bytes: Uint8Array, index: number): number {
  let at = SEGMENT_HEADER_BYTES;
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  while (bytes[at] !== 0) {
    const length = view.getUint32(at + 4, true);
    if (bytes[at] === 1 && view.getUint32(at + 8, true) === index) return at + 32;
    at += 32 + Math.ceil(length / 8) * 8;
  }
  throw new Error(`entry ${index} not found`);
}
