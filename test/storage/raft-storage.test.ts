import { describe, expect, it } from "vitest";
import { createRaft, type RaftLogStorage } from "../../src/raft/index.js";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { HardStateFile } from "../../storage/hard-state.js";
import { openRaftStorage, type RaftStorage, type RaftStorageOptions } from "../../storage/raft-storage.js";
import { SnapshotStore } from "../../storage/snapshot-store.js";
import { snapshotFileName } from "../../storage/snapshot/format.js";
import { listSegments, verifyWal } from "../../storage/wal/index.js";
import { CrashingFileSystem, SimulatedCrash } from "./raft-storage-crashing-fs.js";
import { chunksOf, decodeText, entries, entry, readSnapshotBytes, receiveSnapshot, snapshotPayload } from "./raft-storage-helpers.js";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";

const DIR = "/node1";
const SMALL_SEGMENTS = { segmentSizeBytes: 64 * 1024 };

function options(fs: MemoryFileSystem | CrashingFileSystem, extra: Partial<RaftStorageOptions> = {}): RaftStorageOptions {
  return { fs, wal: SMALL_SEGMENTS, ...extra };
}

/**
 * RaftStorage does not name the core's interface (storage/ imports nothing from the core):
 * it fits RaftLogStorage structurally. This assignment is the check; `npm test` type-checks
 * the tests before it runs them, so a signature that drifts apart fails the build.
 */
const asCoreStorage = (storage: RaftStorage): RaftLogStorage => storage;

describe("RaftStorage", () => {
  it("a brand-new directory is empty: zero hard state, no snapshot, firstIndex 1, lastIndex 0", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    expect(storage.hardState()).toEqual({ term: 0, vote: 0, commit: 0 });
    expect(storage.snapshotMeta()).toEqual({ index: 0, term: 0, config: clusterConfigOf([]), sizeBytes: 0 });
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(0)]).toEqual([1, 0, 0]);
    expect(() => storage.term(1)).toThrow(expect.objectContaining({ code: "WAL_ERR_UNAVAILABLE" }));
    expect(await fs.list(DIR)).toEqual(["hardstate", "snap", "wal"]);
    expect(storage.recovery.hardState.fileExisted).toBe(false);
    await storage.close();
  });

  it("serves the Raft core as its RaftLogStorage: a core started on it sees its log and hard state", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.append(entries(1, 3, 2));
    await storage.saveHardState({ term: 2, vote: 1, commit: 3 });
    const core = createRaft({ id: 1, voters: [1], storage: asCoreStorage(storage), random: () => 0.5 });
    expect(core.hardState()).toEqual({ term: 2, vote: 1, commit: 3 });
    expect(core.commitIndex()).toBe(3);
    await storage.close();
  });

  it("appends, saves the hard state and reads it all back after a crash", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.saveHardState({ term: 2, vote: 1, commit: 0 });
    await storage.append(entries(1, 20, 2));
    await storage.saveHardState({ term: 2, vote: 1, commit: 15 });
    expect(storage.entries(5, 8, Infinity).map((e) => e.index)).toEqual([5, 6, 7]);
    fs.crash();
    const reopened = await openRaftStorage(DIR, options(fs));
    expect(reopened.hardState()).toEqual({ term: 2, vote: 1, commit: 15 });
    expect(reopened.lastIndex()).toBe(20);
    expect(reopened.entries(1, 21, Infinity).map((e) => decodeText(e.data))).toEqual(entries(1, 20, 2).map((e) => decodeText(e.data)));
    expect(reopened.entries(1, 21, 1)).toHaveLength(1); // at least one entry, whatever bytesMax
  });

  it("overwrites a conflicting uncommitted suffix, but never a committed entry, and refuses gaps (section 5.3)", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.saveHardState({ term: 3, vote: 0, commit: 0 });
    await storage.append(entries(1, 10, 2));
    await storage.saveHardState({ term: 3, vote: 0, commit: 5 });
    await storage.append(entries(7, 8, 3));
    expect([storage.lastIndex(), storage.term(6), storage.term(7), storage.term(8)]).toEqual([8, 2, 3, 3]);
    await expect(storage.append(entries(5, 6, 3))).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    await expect(storage.append(entries(10, 11, 3))).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    fs.crash();
    const reopened = await openRaftStorage(DIR, options(fs));
    expect(reopened.lastIndex()).toBe(8);
    expect(reopened.term(8)).toBe(3);
  });

  it("refuses a hard state whose commit is ahead of the log, a lower term, or a second vote in a term", async () => {
    const storage = await openRaftStorage(DIR, options(new MemoryFileSystem()));
    await storage.append(entries(1, 3, 1));
    await storage.saveHardState({ term: 4, vote: 2, commit: 3 });
    await expect(storage.saveHardState({ term: 4, vote: 2, commit: 4 })).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    await expect(storage.saveHardState({ term: 3, vote: 2, commit: 3 })).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    await expect(storage.saveHardState({ term: 4, vote: 3, commit: 3 })).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    await storage.saveHardState({ term: 5, vote: 3, commit: 3 });
    expect(storage.hardState()).toEqual({ term: 5, vote: 3, commit: 3 });
    expect(storage.failed()).toBeUndefined(); // refused arguments are not failures
  });

  it("recovers from a snapshot plus the log tail after it", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.append(entries(1, 100, 1));
    await storage.saveHardState({ term: 1, vote: 1, commit: 100 });
    const data = snapshotPayload(60, 1, 300_000);
    const meta = await storage.createSnapshot({ index: 60, config: clusterConfigOf([1, 2, 3]) }, chunksOf(data, 10_000));
    expect(meta).toEqual({ index: 60, term: 1, config: clusterConfigOf([1, 2, 3]), sizeBytes: data.length });
    await storage.append(entries(101, 120, 2));
    fs.crash();
    const reopened = await openRaftStorage(DIR, options(fs));
    expect(reopened.snapshotMeta()).toEqual(meta);
    expect([reopened.firstIndex(), reopened.lastIndex(), reopened.term(60), reopened.term(101)]).toEqual([61, 120, 1, 2]);
    expect(() => reopened.term(59)).toThrow(expect.objectContaining({ code: "WAL_ERR_COMPACTED" }));
    expect(() => reopened.entries(60, 62, Infinity)).toThrow(expect.objectContaining({ code: "WAL_ERR_COMPACTED" }));
    expect(reopened.entries(61, 121, Infinity).map((e) => e.index)).toEqual(Array.from({ length: 60 }, (_, k) => 61 + k));
    expect(Buffer.compare(await readSnapshotBytes(reopened), data)).toBe(0);
    expect(Buffer.compare(Buffer.from(reopened.readSnapshotChunk(1000, 500)), Buffer.from(data.subarray(1000, 1500)))).toBe(0);
  });

  it("after a snapshot, whole segments whose entries are all covered are retired, and recovery is still right", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    for (let from = 1; from <= 600; from += 50) await storage.append(entries(from, from + 49, 1, 1000));
    await storage.saveHardState({ term: 1, vote: 1, commit: 600 });
    const before = (await listSegments(`${DIR}/wal`, fs)).filter((s) => s.header); // spares have no header
    expect(before.length).toBeGreaterThan(5);
    await storage.createSnapshot({ index: 400, config: clusterConfigOf([1]) }, [snapshotPayload(400, 1, 1000)]);
    const after = await listSegments(`${DIR}/wal`, fs);
    const survivors = new Set(after.map((s) => s.name));
    // A sealed segment is deleted exactly when every entry in it is <= 400; the active one stays.
    for (let k = 0; k < before.length - 1; k++) {
      const lastInSegment = before[k + 1].header!.firstIndex - 1;
      expect(survivors.has(before[k].name), `${before[k].name} holds entries up to ${lastInSegment}`).toBe(lastInSegment > 400);
    }
    expect(survivors.has(before[before.length - 1].name)).toBe(true);
    expect(before.filter((s) => !survivors.has(s.name)).length).toBeGreaterThan(2);
    const names = await fs.list(`${DIR}/wal`);
    expect(names.filter((name) => name.startsWith("segment-"))).toEqual(after.map((s) => s.name));
    // Retired segments are kept for reuse (up to 4 by default), the others deleted.
    const retired = before.filter((s) => !survivors.has(s.name)).length;
    expect(names.filter((name) => name.startsWith("recycled-"))).toHaveLength(Math.min(4, retired));
    fs.crash();
    const reopened = await openRaftStorage(DIR, options(fs));
    expect([reopened.firstIndex(), reopened.lastIndex(), reopened.snapshotMeta().index]).toEqual([401, 600, 400]);
    expect(decodeText(reopened.entries(401, 402, Infinity)[0].data)).toBe("entry 401 term 1");
    expect(decodeText(reopened.entries(600, 601, Infinity)[0].data)).toBe("entry 600 term 1");
  });

  it("installs a leader's snapshot beyond the last index: the log is discarded and continues after it", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.append(entries(1, 10, 1));
    await storage.saveHardState({ term: 3, vote: 0, commit: 4 });
    const data = snapshotPayload(50, 3, 150_000);
    const meta = await receiveSnapshot(storage, { index: 50, term: 3, config: clusterConfigOf([1, 2, 3]) }, data, 32 * 1024);
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(50)]).toEqual([51, 50, 3]);
    await storage.saveHardState({ term: 3, vote: 0, commit: 50 });
    await storage.append(entries(51, 55, 3));
    fs.crash();
    const reopened = await openRaftStorage(DIR, options(fs));
    expect(reopened.snapshotMeta()).toEqual(meta);
    expect([reopened.firstIndex(), reopened.lastIndex(), reopened.hardState().commit]).toEqual([51, 55, 50]);
    expect(Buffer.compare(await readSnapshotBytes(reopened), data)).toBe(0);
  });

  it("installs a snapshot inside the log: keeps the entries after it only when the terms match (section 7)", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.append(entries(1, 10, 2));
    await receiveSnapshot(storage, { index: 6, term: 2, config: clusterConfigOf([1]) }, snapshotPayload(6, 2, 100), 64);
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([7, 10]);
    await receiveSnapshot(storage, { index: 8, term: 5, config: clusterConfigOf([1]) }, snapshotPayload(8, 5, 100), 64);
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(8)]).toEqual([9, 8, 5]);
    await expect(receiveSnapshot(storage, { index: 7, term: 5, config: clusterConfigOf([1]) }, new Uint8Array(0), 64)).rejects.toMatchObject({
      code: "RAFTWAL_ERR_INVALID_ARGUMENT",
    });
  });

  it("refuses a snapshot above the commit index or with the wrong term", async () => {
    const storage = await openRaftStorage(DIR, options(new MemoryFileSystem()));
    await storage.append(entries(1, 10, 2));
    await storage.saveHardState({ term: 2, vote: 0, commit: 5 });
    await expect(storage.createSnapshot({ index: 6, config: clusterConfigOf([1]) }, [])).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    await expect(storage.createSnapshot({ index: 5, term: 1, config: clusterConfigOf([1]) }, [])).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    expect(await storage.createSnapshot({ index: 5, term: 2, config: clusterConfigOf([1]) }, [])).toMatchObject({ index: 5, term: 2 });
  });

  it("a crash at every step of createSnapshot and installSnapshot recovers to the state before or after it", async () => {
    for (const action of ["create", "install"] as const) {
      let crashed = true;
      for (let crashAfter = 1; crashed; crashAfter++) {
        const memory = new MemoryFileSystem();
        const setup = await openRaftStorage(DIR, options(memory));
        await setup.append(entries(1, 30, 1, 2000));
        await setup.saveHardState({ term: 1, vote: 1, commit: 30 });
        await setup.close();
        const fs = new CrashingFileSystem(memory, Infinity);
        const storage = await openRaftStorage(DIR, options(fs));
        fs.crashAfterOperations = fs.operations + crashAfter;
        crashed = false;
        try {
          if (action === "create") await storage.createSnapshot({ index: 20, config: clusterConfigOf([1]) }, chunksOf(snapshotPayload(20, 1, 5000), 1000));
          else await receiveSnapshot(storage, { index: 40, term: 2, config: clusterConfigOf([1]) }, snapshotPayload(40, 2, 5000), 1000);
          memory.crash();
        } catch (error) {
          let cause: unknown = error;
          while (cause instanceof Error && !(cause instanceof SimulatedCrash) && cause.cause) cause = cause.cause;
          expect(cause, String(error)).toBeInstanceOf(SimulatedCrash);
          crashed = true;
        }
        const reopened = await openRaftStorage(DIR, options(memory));
        const state = [reopened.snapshotMeta().index, reopened.firstIndex(), reopened.lastIndex()];
        if (action === "create") {
          // A crash between the durable snapshot and the compaction keeps the whole log behind it: a longer catch-up tail.
          expect([[0, 1, 30], [20, 1, 30], [20, 21, 30]], `crash after ${crashAfter}`).toContainEqual(state);
          if (!crashed) expect(state).toEqual([20, 21, 30]);
          expect(reopened.term(30)).toBe(1);
        } else {
          expect([[0, 1, 30], [40, 41, 40]], `crash after ${crashAfter}`).toContainEqual(state);
          if (!crashed) expect(state).toEqual([40, 41, 40]);
        }
        if (state[0] > 0) expect(Buffer.compare(await readSnapshotBytes(reopened), snapshotPayload(state[0], action === "create" ? 1 : 2, 5000))).toBe(0);
        await reopened.close();
      }
    }
  });

  it("completes an install interrupted between the durable snapshot and the WAL compaction, and says so", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.append(entries(1, 10, 1));
    await storage.close();
    // The snapshot file is durable, the WAL never heard of it.
    const store = await SnapshotStore.open(`${DIR}/snap`, { fs });
    const writer = await store.createWriter({ index: 50, term: 4, config: clusterConfigOf([1]) });
    await writer.write(snapshotPayload(50, 4, 10));
    await writer.finish();
    const reopened = await openRaftStorage(DIR, options(fs));
    expect([reopened.firstIndex(), reopened.lastIndex(), reopened.term(50)]).toEqual([51, 50, 4]);
    expect(reopened.recovery.actions.join()).toMatch(/interrupted snapshot install/);
  });

  it("a corrupt newest snapshot not yet compacted into: recovers from the older one, with a warning", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.append(entries(1, 100, 1));
    await storage.saveHardState({ term: 1, vote: 1, commit: 100 });
    await storage.createSnapshot({ index: 50, config: clusterConfigOf([1]) }, [snapshotPayload(50, 1, 1000)]);
    await storage.close();
    // A newer snapshot became durable, then the node crashed before compacting; later its file rotted.
    const store = await SnapshotStore.open(`${DIR}/snap`, { fs });
    const writer = await store.createWriter({ index: 80, term: 1, config: clusterConfigOf([1]) });
    await writer.write(snapshotPayload(80, 1, 1000));
    await writer.finish();
    await store.close();
    fs.flipBit(`${DIR}/snap/${snapshotFileName(80, 1)}`, 500);
    const reopened = await openRaftStorage(DIR, options(fs));
    expect(reopened.snapshotMeta().index).toBe(50);
    expect([reopened.firstIndex(), reopened.lastIndex()]).toEqual([51, 100]);
    expect(reopened.recovery.warnings.join("\n")).toMatch(new RegExp(`${snapshotFileName(80, 1)} is corrupt[^]*older snapshot at index 50`));
  });

  it("a corrupt newest snapshot whose entries are already compacted away is an error, not a silent rollback", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.append(entries(1, 100, 1));
    await storage.saveHardState({ term: 1, vote: 1, commit: 100 });
    await storage.createSnapshot({ index: 50, config: clusterConfigOf([1]) }, [snapshotPayload(50, 1, 1000)]);
    await storage.createSnapshot({ index: 80, config: clusterConfigOf([1]) }, [snapshotPayload(80, 1, 1000)]);
    await storage.close();
    fs.flipBit(`${DIR}/snap/${snapshotFileName(80, 1)}`, 500);
    await expect(openRaftStorage(DIR, options(fs))).rejects.toMatchObject({
      code: "WAL_ERR_SNAPSHOT_CORRUPT",
      message: expect.stringMatching(/compacted up to index 80[^]*covers only up to 50[^]*corrupt/),
    });
  });

  it("a damaged hard-state file fails open with WAL_ERR_HARD_STATE_CORRUPT", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.append(entries(1, 2, 1));
    await storage.saveHardState({ term: 1, vote: 1, commit: 2 });
    await storage.close();
    fs.flipBit(`${DIR}/hardstate/hardstate`, 14);
    await expect(openRaftStorage(DIR, options(fs))).rejects.toMatchObject({ code: "WAL_ERR_HARD_STATE_CORRUPT" });
  });

  it("a hard-state commit ahead of the log found at open is reported as corruption", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.append(entries(1, 2, 1));
    await storage.close();
    await (await HardStateFile.open(fs, `${DIR}/hardstate`)).save({ term: 1, vote: 0, commit: 9 });
    await expect(openRaftStorage(DIR, options(fs))).rejects.toMatchObject({ code: "WAL_ERR_CORRUPT", message: expect.stringMatching(/commit index 9/) });
  });

  it("a failed fsync in any part makes the whole storage refuse writes; a reopen sees only what was durable", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.append(entries(1, 5, 1));
    fs.failNextSync("hardstate.tmp");
    await expect(storage.saveHardState({ term: 1, vote: 1, commit: 5 })).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    expect(storage.failed()).toBeDefined();
    await expect(storage.append([entry(6, 1)])).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    fs.crash();
    const reopened = await openRaftStorage(DIR, options(fs));
    expect([reopened.lastIndex(), reopened.hardState().commit]).toEqual([5, 0]);
  });

  it("a hard state saved behind its Ready's entries or snapshot is raised at open: term to the last entry's, commit to the snapshot's", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.saveHardState({ term: 2, vote: 3, commit: 0 });
    await storage.append(entries(1, 4, 2));
    await storage.append(entries(5, 6, 5)); // the crash comes before the Ready's hard state (term 5)
    fs.crash();
    const reopened = await openRaftStorage(DIR, options(fs));
    expect(reopened.hardState()).toEqual({ term: 5, vote: 0, commit: 0 });
    expect(reopened.recovery.actions.join()).toMatch(/raised the term from 2 to the last entry's term 5/);
    await receiveSnapshot(reopened, { index: 9, term: 5, config: clusterConfigOf([1]) }, snapshotPayload(9, 5, 10), 4); // crash before its hard state
    fs.crash();
    const again = await openRaftStorage(DIR, options(fs));
    expect(again.hardState()).toEqual({ term: 5, vote: 0, commit: 9 });
    await again.saveHardState({ term: 5, vote: 0, commit: 9 }); // the raised state, made durable by this save
    await again.close();
    const third = await openRaftStorage(DIR, options(fs));
    expect(third.hardState()).toEqual({ term: 5, vote: 0, commit: 9 });
    expect(third.recovery.actions).toEqual([]);
  });

  it("a torn tail in the WAL is cut at open and reported among the actions", async () => {
    const fs = new MemoryFileSystem();
    const storage = await openRaftStorage(DIR, options(fs));
    await storage.append(entries(1, 5, 1));
    await storage.close();
    const verified = await verifyWal(`${DIR}/wal`, fs);
    const active = verified.segments[verified.segments.length - 1];
    fs.overwrite(`${DIR}/wal/${active.name}`, active.committedBytes, new Uint8Array([1, 0, 0, 0, 9, 9]));
    const reopened = await openRaftStorage(DIR, options(fs));
    expect(reopened.lastIndex()).toBe(5);
    expect(reopened.recovery.actions.join()).toMatch(new RegExp(`cut a torn tail of 6 bytes from ${active.name} at byte offset ${active.committedBytes}`));
  });

  it("rejects writes after close", async () => {
    const storage = await openRaftStorage(DIR, options(new MemoryFileSystem()));
    await storage.close();
    await expect(storage.append([entry(1, 1)])).rejects.toMatchObject({ code: "WAL_ERR_CLOSED" });
  });
});
