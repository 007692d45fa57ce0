/**
 * A flipped bit in a WAL record's header (src/torture/TORTURE.md, fixed bug 2): the record's
 * checksum covers header and payload, so a mismatch does not say which was damaged, and the
 * damaged header's index is never taken as an index the log may have held. What the log
 * may have held is bounded by what is trustworthy: intact records after the damage, later
 * segments' headers, the hard state's commit (storage/damage-assessment.ts, step 4). A
 * repair-mode open and `raftwal wal verify`'s plan give the same bound.
 */
import { describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { openRaftStorage, type RaftStorageOptions } from "../../storage/raft-storage.js";
import { assessWal, planRepair } from "../../storage/damage-assessment.js";
import { scanWal, verifyWal } from "../../storage/wal/inspect.js";
import { entries } from "./raft-storage-helpers.js";
import { cloneDir } from "./wal-helpers.js";

const DIR = "/node";
const WAL = `${DIR}/wal`;
/** Byte 14 of a record header is the sixth byte of its index (bytes 8..15, storage/wal/format.ts): bit 3 adds 2^51. */
const INDEX_HIGH_BYTE = 14;
const options = (fs: MemoryFileSystem, repair = true): RaftStorageOptions => ({
  fs,
  wal: { segmentSizeBytes: 64 * 1024 },
  ...(repair ? { onCorruption: "repair" as const } : {}),
});

/** Entries 1..1000 of 200 bytes in batches of 50 (several 64 KiB segments); commit 200, below the damage. */
async function logOf1000(): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  const storage = await openRaftStorage(DIR, options(fs, false));
  for (let from = 1; from <= 1000; from += 50) await storage.append(entries(from, from + 49, 1, 200));
  await storage.saveHardState({ term: 1, vote: 1, commit: 200 });
  await storage.close();
  return fs;
}

/** Where the record of `type` naming `index` is: its segment file and byte offset. */
async function recordAt(fs: MemoryFileSystem, type: "entry" | "commit", index: number): Promise<{ path: string; offset: number; segment: string }> {
  for await (const record of scanWal(WAL, fs)) {
    if (record.type === type && record.index === index) return { path: `${WAL}/${record.segment}`, offset: record.offset, segment: record.segment };
  }
  throw new Error(`no ${type} record names ${index}`);
}

/** Every bit of the index field (bytes 8..15), and one bit of every other header byte (a different one each). */
function* headerBits(): Generator<{ byte: number; bit: number }> {
  for (let byte = 0; byte < 32; byte++) {
    const isIndex = byte >= 8 && byte < 16;
    for (let bit = 0; bit < 8; bit++) if (isIndex || bit === byte % 8) yield { byte, bit };
  }
}

/** What `raftwal wal verify` would plan for the directory (read-only), as its lost range. */
async function plannedLoss(fs: MemoryFileSystem): Promise<{ fromIndex: number; toIndex: number } | undefined> {
  const verdict = await verifyWal(WAL, fs);
  const wal = await assessWal(WAL, fs, verdict.corruption);
  const plan = planRepair({ wal, hardState: { lost: false, commit: 200 }, snapshot: { index: 0, term: 0, newerDamaged: false } });
  return plan?.lost && { fromIndex: plan.lost.fromIndex, toIndex: plan.lost.toIndex };
}

describe("a flipped bit in a WAL record's header", () => {
  it("the high bit of entry 300's index: the loss ends at the log's real last index, 1000, not at 2^51 + 300", async () => {
    const fs = await logOf1000();
    const record = await recordAt(fs, "entry", 300);
    expect(record.segment).not.toBe((await recordAt(fs, "entry", 1000)).segment); // a sealed segment: the middle of the log
    fs.flipBit(record.path, record.offset + INDEX_HIGH_BYTE, 3);
    await expect(openRaftStorage(DIR, options(fs, false))).rejects.toMatchObject({ code: "WAL_ERR_CORRUPT", indexes: [300] });
    expect(await plannedLoss(fs)).toEqual({ fromIndex: 251, toIndex: 1000 });
    const storage = await openRaftStorage(DIR, options(fs));
    expect(storage.damage()).toEqual({ lostFromIndex: 251, lostToIndex: 1000, hardStateLost: false });
    const log = storage.recovery.damage!.log!;
    expect(log).toMatchObject({ firstLostIndex: 300, lastKnownIndex: 1000 });
    // The damaged header names 2^51 + 300 where the log expected 300: it names no entry.
    expect(log.damagedEntries).toEqual([]);
    expect(log.reason).toContain(`index ${2 ** 51 + 300}`);
    await storage.close();
  });

  const targets = [
    { type: "entry" as const, index: 300, keptTo: 250, where: "in a sealed segment" },
    { type: "commit" as const, index: 300, keptTo: 250, where: "in a sealed segment" },
    { type: "entry" as const, index: 930, keptTo: 900, where: "in an earlier batch of the active segment (951..1000 follows)" },
  ];
  for (const target of targets) {
    it(`a bit anywhere in the header of the ${target.type} record naming ${target.index}, ${target.where}: the same bound for open and plan`, async () => {
      const pristine = await logOf1000();
      const at = await recordAt(pristine, target.type, target.index);
      for (const { byte, bit } of headerBits()) {
        const fs = await cloneDir(pristine, DIR);
        fs.flipBit(at.path, at.offset + byte, bit);
        const where = `${target.type} ${target.index}, bit ${bit} of byte ${byte}`;
        expect(await plannedLoss(fs), where).toEqual({ fromIndex: target.keptTo + 1, toIndex: 1000 });
        const storage = await openRaftStorage(DIR, options(fs));
        expect(storage.damage(), where).toEqual({ lostFromIndex: target.keptTo + 1, lostToIndex: 1000, hardStateLost: false });
        await storage.close();
        // The in-memory file system never leaves the event loop: let the test runner's own messages through.
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
  }
});
