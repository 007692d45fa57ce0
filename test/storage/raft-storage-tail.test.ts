/**
 * The catch-up tail: a snapshot that compacts the log only up to a point behind it
 * (SnapshotTargetInput.compactTo), so that a leader can still send the entries between to a
 * follower a little behind. The tail must be readable, survive a reopen, and never let the
 * log and the snapshot disagree.
 */
import { describe, expect, it } from "vitest";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { openRaftStorage, type RaftStorage, type RaftStorageOptions } from "../../storage/raft-storage.js";
import { snapshotFileName } from "../../storage/snapshot/format.js";
import { entries, receiveSnapshot, snapshotPayload } from "./raft-storage-helpers.js";

const DIR = "/node1";

function options(fs: MemoryFileSystem): RaftStorageOptions {
  return { fs, wal: { segmentSizeBytes: 64 * 1024 } };
}

async function logOf100(fs: MemoryFileSystem) {
  const storage = await openRaftStorage(DIR, options(fs));
  await storage.append(entries(1, 100, 1, 200));
  await storage.saveHardState({ term: 1, vote: 1, commit: 100 });
  return storage;
}

/** An own snapshot at `index` (term 1, one voter) that compacts the log only up to `compactTo`: the entries after it are the tail. */
function snapshotWithTail(storage: RaftStorage, index: number, compactTo: number, payloadBytes = 100) {
  return storage.createSnapshot({ index, config: clusterConfigOf([1]), compactTo }, [snapshotPayload(index, 1, payloadBytes)]);
}

describe("RaftStorage: the catch-up tail behind a snapshot", () => {
  it("keeps the entries between compactTo and the snapshot readable, and across a reopen", async () => {
    const fs = new MemoryFileSystem();
    const storage = await logOf100(fs);
    const meta = await snapshotWithTail(storage, 60, 40, 500);
    expect(meta.index).toBe(60);
    expect([storage.snapshotIndex(), storage.firstIndex(), storage.lastIndex()]).toEqual([60, 41, 100]);
    expect(storage.term(40)).toBe(1);
    expect(storage.entries(41, 61, Number.MAX_SAFE_INTEGER).map((e) => e.index)).toEqual(Array.from({ length: 20 }, (_, i) => 41 + i));
    expect(() => storage.entries(40, 42, Number.MAX_SAFE_INTEGER)).toThrow(expect.objectContaining({ code: "WAL_ERR_COMPACTED" }));
    expect(() => storage.term(39)).toThrow(expect.objectContaining({ code: "WAL_ERR_COMPACTED" }));
    await storage.close();

    const reopened = await openRaftStorage(DIR, options(fs));
    expect([reopened.snapshotIndex(), reopened.firstIndex(), reopened.lastIndex()]).toEqual([60, 41, 100]);
    expect(reopened.recovery.actions).toEqual([]);
    expect(reopened.entries(41, 42, 1)[0]!.index).toBe(41);
    await reopened.close();
  });

  it("a later snapshot moves the tail on; a compactTo at or below the compaction compacts nothing; beyond the snapshot is refused", async () => {
    const fs = new MemoryFileSystem();
    const storage = await logOf100(fs);
    await snapshotWithTail(storage, 50, 30);
    await snapshotWithTail(storage, 70, 20);
    expect([storage.snapshotIndex(), storage.firstIndex()]).toEqual([70, 31]);
    await snapshotWithTail(storage, 90, 80);
    expect([storage.snapshotIndex(), storage.firstIndex()]).toEqual([90, 81]);
    await expect(storage.createSnapshot({ index: 95, config: clusterConfigOf([1]), compactTo: 96 }, [])).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    await expect(storage.createSnapshot({ index: 95, config: clusterConfigOf([1]), compactTo: -1 }, [])).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    expect([storage.snapshotIndex(), storage.firstIndex()]).toEqual([90, 81]);
    await storage.close();
  });

  it("a snapshot installed from the leader discards the tail with the log it replaces when the log does not hold its entry (section 7)", async () => {
    const fs = new MemoryFileSystem();
    const storage = await logOf100(fs);
    await snapshotWithTail(storage, 60, 40);
    await receiveSnapshot(storage, { index: 150, term: 3, config: clusterConfigOf([1]) }, snapshotPayload(150, 3, 300), 100);
    expect([storage.snapshotIndex(), storage.firstIndex(), storage.lastIndex()]).toEqual([150, 151, 150]);
    await storage.close();
    const reopened = await openRaftStorage(DIR, options(fs));
    expect([reopened.snapshotIndex(), reopened.firstIndex(), reopened.lastIndex()]).toEqual([150, 151, 150]);
    await reopened.close();
  });

  it("a corrupt newest snapshot whose entries are still in the tail: open recovers from the older one with the log intact", async () => {
    const fs = new MemoryFileSystem();
    const storage = await logOf100(fs);
    await snapshotWithTail(storage, 50, 30, 1000);
    await snapshotWithTail(storage, 80, 45, 1000);
    await storage.close();
    fs.flipBit(`${DIR}/snap/${snapshotFileName(80, 1)}`, 500);
    // Without the tail (compacted to 80) this open fails with WAL_ERR_SNAPSHOT_CORRUPT (raft-storage.test.ts).
    const reopened = await openRaftStorage(DIR, options(fs));
    expect([reopened.snapshotIndex(), reopened.firstIndex(), reopened.lastIndex()]).toEqual([50, 46, 100]);
    expect(reopened.entries(51, 101, Number.MAX_SAFE_INTEGER)).toHaveLength(50);
    expect(reopened.recovery.warnings.join("\n")).toMatch(/is corrupt[^]*older snapshot at index 50/);
    await reopened.close();
  });
});
