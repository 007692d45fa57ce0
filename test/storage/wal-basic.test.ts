/** The Wal API: appends, reads, truncation, compaction, group commit, failures, inspection, real disk. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import { entryCodec } from "../../src/proto/schema.js";
import { encodedEntryBytes, writeEntry } from "../../storage/wal/entry-codec.js";
import {
  Wal,
  listSegments,
  repairTornTail,
  scanWal,
  segmentFileName,
  verifyWal,
  type ScannedRecord,
  type WalOptions,
} from "../../storage/wal/index.js";
import { DIR, entry, errorCode, range, seededRandom } from "./wal-helpers.js";

const SMALL: WalOptions = { segmentSizeBytes: 64 * 1024 };

async function open(fs: MemoryFileSystem, options: WalOptions = {}): Promise<Wal> {
  return Wal.open(DIR, { fs, ...SMALL, ...options });
}

async function appendInChunks(wal: Wal, from: number, to: number, term: number, size: number, chunk = 50): Promise<void> {
  for (let i = from; i <= to; i += chunk) await wal.append(range(i, Math.min(to, i + chunk - 1), term, size));
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe("appends and reads", () => {
  it("appends, reads back, and replays after reopen", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    expect([wal.firstIndex(), wal.lastIndex(), wal.compactedIndex(), wal.compactedTerm()]).toEqual([1, 0, 0, 0]);
    await wal.append(range(1, 10, 1));
    await wal.append(range(11, 20, 2));
    expect(wal.lastIndex()).toBe(20);
    expect(wal.term(0)).toBe(0);
    expect(wal.term(10)).toBe(1);
    expect(wal.term(11)).toBe(2);
    expect(wal.entries(5, 8, Infinity)).toEqual(range(5, 7, 1));
    await wal.close();
    const again = await open(fs);
    expect(again.lastIndex()).toBe(20);
    expect(again.entries(1, 21, Infinity)).toEqual([...range(1, 10, 1), ...range(11, 20, 2)]);
    expect(again.recovery).toMatchObject({ segments: 1, entries: 20, firstIndex: 1, lastIndex: 20 });
    expect(again.recovery.tornTail).toBeUndefined();
    await again.close();
  });

  it("the hand-written Entry encoding is byte-for-byte protobufjs's", () => {
    const next = seededRandom(7);
    for (let trial = 0; trial < 300; trial++) {
      const size = trial % 5 === 0 ? 0 : Math.floor(next() * 400);
      const candidate = {
        index: trial % 7 === 0 ? 0 : Math.floor(next() * 2 ** (1 + Math.floor(next() * 52))),
        term: trial % 3 === 0 ? 0 : Math.floor(next() * 2 ** (1 + Math.floor(next() * 52))),
        type: 0 as const,
        data: Uint8Array.from({ length: size }, () => Math.floor(next() * 256)),
      };
      const expected = entryCodec.encode(candidate);
      const actual = new Uint8Array(encodedEntryBytes(candidate));
      expect(writeEntry(actual, 0, candidate)).toBe(actual.length);
      expect(actual).toEqual(Uint8Array.from(expected));
    }
  });

  it("entries() honours bytesMax but always returns at least one entry", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs, { cacheEntriesMax: 0 });
    await wal.append(range(1, 10, 1, 100));
    const each = entryCodec.encode(entry(1, 1, 100)).length;
    expect(wal.entries(1, 11, 0)).toHaveLength(1);
    expect(wal.entries(1, 11, each)).toHaveLength(1);
    expect(wal.entries(1, 11, 3 * each)).toHaveLength(3);
    expect(wal.entries(1, 11, 3 * each + 1)).toHaveLength(3);
    expect(wal.entries(4, 11, Infinity)).toEqual(range(4, 10, 1, 100));
    expect(wal.entries(4, 4, Infinity)).toEqual([]);
    await wal.close();
  });

  it("term() and entries() fail with WAL_ERR_COMPACTED below and WAL_ERR_UNAVAILABLE above the log", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    await wal.append(range(1, 10, 1));
    await wal.compact(4, 1);
    expect(wal.term(4)).toBe(1);
    expect(() => wal.term(3)).toThrow(expect.objectContaining({ code: "WAL_ERR_COMPACTED" }));
    expect(() => wal.term(11)).toThrow(expect.objectContaining({ code: "WAL_ERR_UNAVAILABLE" }));
    expect(() => wal.entries(4, 6, Infinity)).toThrow(expect.objectContaining({ code: "WAL_ERR_COMPACTED" }));
    expect(() => wal.entries(9, 12, Infinity)).toThrow(expect.objectContaining({ code: "WAL_ERR_UNAVAILABLE" }));
    expect(wal.entries(5, 11, Infinity)).toEqual(range(5, 10, 1));
    await wal.close();
    expect(() => wal.term(5)).toThrow(expect.objectContaining({ code: "WAL_ERR_CLOSED" }));
    await expect(wal.append([entry(11, 1)])).rejects.toMatchObject({ code: "WAL_ERR_CLOSED" });
  });

  it("rejects appends that leave a gap or reach into the compacted prefix", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    await wal.append(range(1, 5, 1));
    await expect(wal.append([entry(7, 1)])).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    await expect(wal.append([entry(6, 1), entry(8, 1)])).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    await wal.compact(3, 1);
    await expect(wal.append([entry(3, 2)])).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    await expect(wal.truncateSuffix(3)).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
    expect(wal.failed()).toBeUndefined();
    expect(wal.lastIndex()).toBe(5);
    await wal.close();
  });
});

describe("cache of recent entries", () => {
  it("never serves an entry replaced by an overwrite, truncation or compaction", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs, { cacheEntriesMax: 4 });
    await wal.append(range(1, 10, 1));
    expect(wal.entries(7, 11, Infinity)).toEqual(range(7, 10, 1));
    await wal.append(range(8, 9, 2)); // replaces 8.. (10 goes away)
    expect(wal.entries(7, 10, Infinity)).toEqual([entry(7, 1), entry(8, 2), entry(9, 2)]);
    await wal.truncateSuffix(9);
    await wal.append([entry(9, 3)]);
    expect(wal.entries(1, 10, Infinity)).toEqual([...range(1, 7, 1), entry(8, 2), entry(9, 3)]);
    await wal.compact(12, 3); // beyond the log: everything goes
    await wal.append(range(13, 14, 3));
    expect(wal.entries(13, 15, Infinity)).toEqual(range(13, 14, 3));
    await wal.close();
  });
});

describe("truncation (paper section 5.3)", () => {
  it("an append at or below lastIndex replaces the suffix in one batch, also after reopen", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    await wal.append(range(1, 10, 1));
    const syncsBefore = fs.stats.syncs;
    await wal.append(range(6, 8, 2));
    expect(fs.stats.syncs - syncsBefore).toBe(1);
    expect(wal.lastIndex()).toBe(8);
    expect(wal.entries(1, 9, Infinity)).toEqual([...range(1, 5, 1), ...range(6, 8, 2)]);
    await wal.truncateSuffix(7);
    expect(wal.lastIndex()).toBe(6);
    await wal.close();
    const again = await open(fs);
    expect(again.lastIndex()).toBe(6);
    expect(again.entries(1, 7, Infinity)).toEqual([...range(1, 5, 1), entry(6, 2)]);
    expect(() => again.term(7)).toThrow(expect.objectContaining({ code: "WAL_ERR_UNAVAILABLE" }));
    await again.close();
  });
});

describe("segments and compaction (paper section 7)", () => {
  it("sparse preallocation sets the size without writing zeros and behaves the same", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs, { preallocation: "sparse" });
    const writesAfterOpen = fs.stats.writes;
    await appendInChunks(wal, 1, 1500, 1, 60);
    expect(fs.currentBytes(posix.join(DIR, segmentFileName(1))).length).toBe(64 * 1024);
    // Only batches and headers were written: no zero-filling writes.
    expect(fs.stats.writes - writesAfterOpen).toBeLessThan(40);
    await wal.close();
    const again = await open(fs, { preallocation: "sparse", cacheEntriesMax: 0 });
    expect(again.entries(1, 1501, Infinity)).toEqual(range(1, 1500, 1, 60));
    await again.close();
    await expect(open(fs, { preallocation: "bogus" as never })).rejects.toMatchObject({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" });
  });

  it("rolls over to new segments and reads across them after reopen", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    await appendInChunks(wal, 1, 3000, 1, 60);
    const segments = await listSegments(DIR, fs);
    expect(segments.filter((s) => s.state === "sealed").length).toBeGreaterThan(2);
    expect(segments.filter((s) => s.state === "active")).toHaveLength(1);
    await wal.close();
    const again = await open(fs, { cacheEntriesMax: 0 });
    expect(again.lastIndex()).toBe(3000);
    expect(again.entries(1, 3001, Infinity)).toEqual(range(1, 3000, 1, 60));
    await again.close();
  });

  it("deletes whole compacted segments (and fsyncs the directory); recovery continues from the tail", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    await appendInChunks(wal, 1, 3000, 1, 60);
    const before = await listSegments(DIR, fs);
    const directorySyncs = fs.stats.directorySyncs;
    await wal.compact(2000, 1);
    const after = await listSegments(DIR, fs);
    expect(after.length).toBeLessThan(before.length);
    expect(fs.stats.directorySyncs).toBeGreaterThan(directorySyncs);
    // Every deleted segment held only entries <= 2000; every surviving one is still needed or holds the compact record.
    const remainingFirst = after[0].header!.firstIndex;
    expect(remainingFirst).toBeLessThanOrEqual(2001);
    expect(wal.firstIndex()).toBe(2001);
    fs.crash();
    const again = await open(fs);
    expect([again.firstIndex(), again.lastIndex(), again.compactedTerm()]).toEqual([2001, 3000, 1]);
    expect(again.entries(2001, 3001, Infinity)).toEqual(range(2001, 3000, 1, 60));
    // More compactions and appends over several reopens.
    await appendInChunks(again, 3001, 5000, 2, 60);
    await again.compact(4500, 2);
    await again.close();
    const third = await open(fs);
    expect([third.firstIndex(), third.lastIndex(), third.term(4500), third.term(5000)]).toEqual([4501, 5000, 2, 2]);
    expect((await listSegments(DIR, fs)).length).toBeLessThan(5);
    await third.close();
  });

  it("a compaction beyond the log (snapshot from a leader) empties it; a term mismatch discards it", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    await wal.append(range(1, 10, 1));
    await wal.compact(50, 3);
    expect([wal.firstIndex(), wal.lastIndex(), wal.term(50)]).toEqual([51, 50, 3]);
    await wal.append(range(51, 60, 3));
    await wal.compact(55, 2); // entry 55 has term 3: the whole log goes
    expect([wal.firstIndex(), wal.lastIndex(), wal.compactedTerm()]).toEqual([56, 55, 2]);
    await wal.append(range(56, 58, 4));
    await wal.compact(57, 4); // matches: entry 58 is kept
    expect([wal.firstIndex(), wal.lastIndex()]).toEqual([58, 58]);
    await wal.close();
    const again = await open(fs);
    expect([again.firstIndex(), again.lastIndex(), again.compactedTerm()]).toEqual([58, 58, 4]);
    expect(again.entries(58, 59, Infinity)).toEqual([entry(58, 4)]);
    await again.close();
  });
});

describe("group commit", () => {
  it("N concurrent appends share far fewer fsyncs than N, and each resolves only after its fsync", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs, { segmentSizeBytes: 1024 * 1024 });
    const syncsBefore = fs.stats.syncs;
    const durableAt: number[] = [];
    const appends = Array.from({ length: 200 }, (_, k) =>
      wal.append([entry(k + 1, 1, 32)]).then(() => {
        // Resolved: the entry must be in the durable image already.
        durableAt.push(k + 1);
        expect(fs.durableBytes(posix.join(DIR, segmentFileName(1))).length).toBeGreaterThan(0);
      }),
    );
    await Promise.all(appends);
    const syncs = fs.stats.syncs - syncsBefore;
    expect(syncs).toBeLessThanOrEqual(3);
    expect(durableAt).toHaveLength(200);
    // Nothing acknowledged is lost in a crash right after.
    fs.crash();
    const again = await open(fs, { segmentSizeBytes: 1024 * 1024 });
    expect(again.lastIndex()).toBe(200);
    await again.close();
  });

  it("respects batchEntriesMax and batchBytesMax", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs, { segmentSizeBytes: 1024 * 1024, batchEntriesMax: 10 });
    const before = fs.stats.syncs;
    await Promise.all(Array.from({ length: 100 }, (_, k) => wal.append([entry(k + 1, 1)])));
    expect(fs.stats.syncs - before).toBe(10);
    await wal.close();
    const fs2 = new MemoryFileSystem();
    const wal2 = await open(fs2, { segmentSizeBytes: 1024 * 1024, batchBytesMax: 1000 });
    const before2 = fs2.stats.syncs;
    await Promise.all(Array.from({ length: 100 }, (_, k) => wal2.append([entry(k + 1, 1, 100)])));
    expect(fs2.stats.syncs - before2).toBeGreaterThanOrEqual(100 / 7);
    await wal2.close();
  });

  it("an append is not visible to reads before it is durable", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    const pending = wal.append(range(1, 3, 1));
    expect(wal.lastIndex()).toBe(0);
    await pending;
    expect(wal.lastIndex()).toBe(3);
    await wal.close();
  });
});

describe("failures", () => {
  it("a failed fsync is fatal: every later write fails with WAL_ERR_FAILED; a reopen sees only what was durable", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    await wal.append(range(1, 5, 1));
    fs.failNextSync(segmentFileName(1));
    const failing = wal.append(range(6, 8, 1));
    const queued = wal.append(range(9, 9, 1));
    await expect(failing).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    await expect(queued).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    expect(wal.failed()?.message).toContain("fsync");
    const later = await wal.append(range(6, 6, 1)).catch((error: unknown) => error);
    expect(errorCode(later)).toBe("WAL_ERR_FAILED");
    expect((later as Error).cause).toBe(wal.failed());
    await expect(wal.compact(2, 1)).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    // The in-memory view never advanced past durable data.
    expect(wal.lastIndex()).toBe(5);
    expect(fs.stats.syncs).toBeGreaterThan(0);
    fs.crash();
    const again = await open(fs);
    expect(again.lastIndex()).toBe(5);
    expect(again.entries(1, 6, Infinity)).toEqual(range(1, 5, 1));
    await again.close();
  });

  it("a failed write leaves the writer where it was and is fatal", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    await wal.append(range(1, 5, 1));
    fs.failNextWrite({ pathSuffix: segmentFileName(1), bytesWritten: 40 });
    await expect(wal.append(range(6, 8, 1))).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    expect(wal.lastIndex()).toBe(5);
    await expect(wal.append(range(6, 8, 1))).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    await wal.close();
    // Reopen without a crash: the 40 bytes that landed are a torn tail.
    const again = await open(fs);
    expect(again.lastIndex()).toBe(5);
    expect(again.recovery.tornTail?.bytes).toBeGreaterThan(0);
    await again.append(range(6, 8, 1));
    expect(again.lastIndex()).toBe(8);
    await again.close();
  });

  it("refuses to open a segment file that is not a WAL segment", async () => {
    const fs = new MemoryFileSystem();
    await fs.ensureDirectory(DIR);
    const file = await fs.open(posix.join(DIR, segmentFileName(1)), { create: true });
    await file.write(new TextEncoder().encode("hello, this is a text file and not a segment ".repeat(4)), 0);
    await file.sync();
    await expect(Wal.open(DIR, { fs })).rejects.toMatchObject({ code: "WAL_ERR_NOT_A_WAL" });
  });
});

describe("inspection", () => {
  it("scanWal yields every record with its status; verifyWal and repairTornTail agree with open", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    await wal.append(range(1, 3, 1));
    await wal.append(range(3, 4, 2));
    await wal.compact(2, 1);
    fs.failNextSync(segmentFileName(1));
    await expect(wal.append(range(5, 6, 2))).rejects.toBeDefined();
    // Keep entry 5's record whole and part of entry 6's (the unsynced range runs to the end of the preallocated file).
    fs.crash({ keepUnsyncedBytes: () => 80 });

    const records: ScannedRecord[] = [];
    for await (const record of scanWal(DIR, fs)) records.push(record);
    const summary = records.map((r) => `${r.type}:${r.index}:${r.status}`);
    expect(summary).toEqual([
      "entry:1:ok",
      "entry:2:ok",
      "entry:3:ok",
      "commit:3:ok",
      "truncate-suffix:3:ok",
      "entry:3:ok",
      "entry:4:ok",
      "commit:4:ok",
      "compact:2:ok",
      "commit:4:ok",
      "entry:5:torn-tail",
      "entry:6:torn-tail",
    ]);
    expect(records[5].entry).toEqual(entry(3, 2));
    expect(records[0].offset).toBe(40);

    const progress: Array<[number, number]> = [];
    const verdict = await verifyWal(DIR, fs, (done, total) => progress.push([done, total]));
    expect(progress).toEqual([[1, 1]]);
    expect(verdict.status).toBe("torn-tail");
    expect(verdict.tornTail?.offset).toBe(records[10].offset);
    expect(verdict).toMatchObject({ firstIndex: 3, lastIndex: 4 });
    // Verification changed nothing.
    expect((await verifyWal(DIR, fs)).status).toBe("torn-tail");

    const cut = await repairTornTail(DIR, fs);
    expect(cut?.savedTo).toBeDefined();
    expect((await verifyWal(DIR, fs)).status).toBe("healthy");
    expect(await repairTornTail(DIR, fs)).toBeUndefined();
  });

  it("verifyWal reports corruption with its location, and repairTornTail refuses it without writing", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    await wal.append(range(1, 3, 1));
    await wal.append(range(4, 6, 1));
    await wal.close();
    const path = posix.join(DIR, segmentFileName(1));
    const records: ScannedRecord[] = [];
    for await (const record of scanWal(DIR, fs)) records.push(record);
    const second = records.find((r) => r.type === "entry" && r.index === 2)!;
    fs.flipBit(path, second.offset + 40, 1);
    const verdict = await verifyWal(DIR, fs);
    expect(verdict.status).toBe("corrupt");
    expect(verdict.corruption).toMatchObject({ segment: segmentFileName(1), offset: second.offset, indexes: [2] });
    const image = fs.currentBytes(path);
    await expect(repairTornTail(DIR, fs)).rejects.toMatchObject({ code: "WAL_ERR_CORRUPT" });
    expect(fs.currentBytes(path)).toEqual(image);
    const scanned: ScannedRecord[] = [];
    for await (const record of scanWal(DIR, fs)) scanned.push(record);
    // Entry 1 is intact but its batch lost its commit: recovery would not accept it either.
    expect(scanned.map((r) => `${r.index}:${r.status}`)).toEqual(["1:corrupt", "2:corrupt"]);
    await expect(Wal.open(DIR, { fs })).rejects.toMatchObject({ code: "WAL_ERR_CORRUPT", offset: second.offset, indexes: [2] });
  });

  it("listSegments and verifyWal refuse a missing directory with WAL_ERR_NOT_A_WAL", async () => {
    const fs = new MemoryFileSystem();
    await expect(listSegments("/nope", fs)).rejects.toMatchObject({ code: "WAL_ERR_NOT_A_WAL" });
    await expect(verifyWal("/nope", fs)).rejects.toMatchObject({ code: "WAL_ERR_NOT_A_WAL" });
  });
});

describe("on the real disk (NodeFileSystem)", () => {
  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "raftwal-wal-test-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return join(dir, "wal");
  }

  it("appends concurrently, rolls segments, compacts, and reopens", async () => {
    const dir = await tempDir();
    const fs = new NodeFileSystem();
    const wal = await Wal.open(dir, { fs, segmentSizeBytes: 256 * 1024 });
    await Promise.all(Array.from({ length: 64 }, (_, k) => wal.append([entry(k + 1, 1, 500)])));
    for (let i = 65; i <= 1200; i += 100) await wal.append(range(i, Math.min(1200, i + 99), 2, 500));
    expect(wal.lastIndex()).toBe(1200);
    await wal.compact(900, 2);
    await wal.close();
    const again = await Wal.open(dir, { fs, segmentSizeBytes: 256 * 1024, cacheEntriesMax: 0 });
    expect([again.firstIndex(), again.lastIndex()]).toEqual([901, 1200]);
    expect(again.entries(901, 1201, Infinity)).toEqual(range(901, 1200, 2, 500));
    expect((await verifyWal(dir, fs)).status).toBe("healthy");
    await again.close();
  });

  it("cuts a torn tail on the real disk and keeps the cut bytes", async () => {
    const dir = await tempDir();
    const fs = new NodeFileSystem();
    const wal = await Wal.open(dir, { fs, segmentSizeBytes: 64 * 1024 });
    await wal.append(range(1, 4, 1, 50));
    await wal.close();
    // Garbage after the last batch, as a torn write would leave it.
    const records: ScannedRecord[] = [];
    for await (const record of scanWal(dir, fs)) records.push(record);
    const end = records[records.length - 1].offset + records[records.length - 1].sizeBytes;
    const file = await fs.open(join(dir, segmentFileName(1)));
    await file.write(new Uint8Array([1, 0, 0, 0, 9, 9, 9, 9, 7]), end);
    await file.sync();
    await file.close();
    const again = await Wal.open(dir, { fs, segmentSizeBytes: 64 * 1024 });
    expect(again.lastIndex()).toBe(4);
    expect(again.recovery.tornTail).toMatchObject({ offset: end, bytes: 9 });
    expect(Array.from(await fs.readFile(again.recovery.tornTail!.savedTo!))).toEqual([1, 0, 0, 0, 9, 9, 9, 9, 7]);
    await again.close();
  });
});
