/**
 * Segment recycling: compacted segments are kept (renamed recycled-<id>.wal) and become
 * later segments without their bytes being rewritten. What was written in a file's earlier
 * life stays there as stale bytes; record checksums cover the segment id, so recovery
 * never takes them for live records, and never loses an acknowledged one, whatever step of
 * the mechanism a crash interrupts.
 */
import { posix } from "node:path";
import { describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import {
  FORMAT_VERSION_UNSEEDED,
  SEGMENT_HEADER_BYTES,
  encodeCommitRecord,
  encodeEntryRecord,
  encodeSegmentHeader,
  recordBytes,
} from "../../storage/wal/format.js";
import { encodedEntryBytes } from "../../storage/wal/entry-codec.js";
import { Wal, listSegments, scanWal, segmentFileName, verifyWal, type WalOptions } from "../../storage/wal/index.js";
import { CrashingFileSystem, SimulatedCrash } from "./raft-storage-crashing-fs.js";
import { DIR, applyOp, range, seededRandom, snapshot, type Model, type Op } from "./wal-helpers.js";

const OPTIONS: WalOptions = { segmentSizeBytes: 64 * 1024, recycledSegmentsMax: 2, cacheEntriesMax: 0 };
const EMPTY: Model = { compactedIndex: 0, compactedTerm: 0, entries: [] };

interface Observer {
  started(op: Op): void;
  acknowledged(op: Op): void;
  roundDone?(): Promise<void>;
}

/**
 * Appends in calls of 20 entries of 500 bytes (a segment holds about 6 calls), compacting
 * every other round: every compaction retires a segment, every other round needs a new one.
 */
async function runScenario(wal: Wal, rounds: number, from: number, observe: Observer): Promise<void> {
  let next = from;
  for (let round = 0; round < rounds; round++) {
    const ops: Op[] = [0, 1, 2].map((k) => ({ kind: "append", entries: range(next + 20 * k, next + 20 * k + 19, 1, 500) }));
    next += 60;
    if (round % 2 === 1) ops.push({ kind: "compact", index: next - 11, term: 1 });
    for (const op of ops) {
      observe.started(op);
      await (op.kind === "append" ? wal.append(op.entries) : op.kind === "compact" ? wal.compact(op.index, op.term) : wal.truncateSuffix(op.from));
      observe.acknowledged(op);
    }
    await observe.roundDone?.();
  }
}

/** Ids of the segments whose header says they are recycled files. */
async function recycledSegmentIds(fs: MemoryFileSystem): Promise<number[]> {
  return (await listSegments(DIR, fs)).filter((s) => s.header?.recycled).map((s) => s.segmentId);
}

function equalModels(a: Model, b: Model): boolean {
  const sameEntry = (x: Model["entries"][number], y: Model["entries"][number]): boolean =>
    x.index === y.index && x.term === y.term && x.type === y.type && Buffer.compare(x.data, y.data) === 0;
  return a.compactedIndex === b.compactedIndex && a.compactedTerm === b.compactedTerm && a.entries.length === b.entries.length && a.entries.every((x, k) => sameEntry(x, b.entries[k]));
}

/** A model in a line (deep comparison of thousands of byte arrays by toEqual is slow). */
function summary(model: Model): string {
  const last = model.entries[model.entries.length - 1];
  return `compacted ${model.compactedIndex}/${model.compactedTerm}, ${model.entries.length} entries, last ${last?.index ?? "-"}`;
}

async function recycledNames(fs: MemoryFileSystem): Promise<string[]> {
  return (await fs.list(DIR)).filter((name) => name.startsWith("recycled-"));
}

describe("segment recycling", () => {
  it("reuses a compacted segment under a new id without rewriting its bytes; its stale records never come back", async () => {
    const fs = new MemoryFileSystem();
    let wal = await Wal.open(DIR, { fs, ...OPTIONS });
    let model = EMPTY;
    await runScenario(wal, 2, 1, { started: () => undefined, acknowledged: (op) => (model = applyOp(model, op)) });
    expect(await recycledNames(fs)).toHaveLength(1);
    await runScenario(wal, 2, 121, { started: () => undefined, acknowledged: (op) => (model = applyOp(model, op)) });
    const segments = await listSegments(DIR, fs);
    // The active recycled segment still holds bytes of its earlier life beyond its records.
    const active = segments.find((s) => s.state === "active")!;
    expect(active.header?.recycled).toBe(true);
    let recordsEnd = 0;
    for await (const record of scanWal(DIR, fs)) if (record.segment === active.name) recordsEnd = record.offset + record.sizeBytes;
    expect(fs.currentBytes(active.path).subarray(recordsEnd).some((b) => b !== 0)).toBe(true);
    expect(snapshot(wal)).toEqual(model);
    await wal.close();

    fs.crash(); // only what was synced
    wal = await Wal.open(DIR, { fs, ...OPTIONS });
    expect(wal.recovery.tornTail).toBeUndefined();
    expect(snapshot(wal)).toEqual(model);
    await wal.close();
    expect((await verifyWal(DIR, fs)).status).toBe("healthy");
    for await (const record of scanWal(DIR, fs)) expect(record.status, `${record.segment}:${record.offset}`).toBe("ok");
  });

  it("a crash at any step (recycling, preparing, activating, appending), with or without torn writes, loses no acknowledged record and revives no stale one", async () => {
    const rounds = 8;
    // Count the mutating operations of an uninterrupted run, and check that it recycles.
    const counting = new CrashingFileSystem(new MemoryFileSystem());
    const whole = await Wal.open(DIR, { fs: counting, ...OPTIONS });
    const recycledIds = new Set<number>();
    const roundDone = async (): Promise<void> => void (await recycledSegmentIds(counting.memory)).forEach((id) => recycledIds.add(id));
    await runScenario(whole, rounds, 1, { started: () => undefined, acknowledged: () => undefined, roundDone });
    expect(recycledIds.size).toBeGreaterThanOrEqual(2);
    const operations = counting.operations; // the crashing runs stop before close()
    await whole.close();
    const seed = 0x5eed_2ec;
    console.log(`wal recycling crash points: ${operations} operations x 2 tear modes, seed ${seed}`);
    const random = seededRandom(seed);
    let torn = 0;
    for (let crashAfter = 1; crashAfter <= operations; crashAfter++) {
      for (const tear of [false, true]) {
        const keep = tear ? Math.floor(random() * 20_000) : 0;
        const memory = new MemoryFileSystem();
        const fs = new CrashingFileSystem(memory, crashAfter, { keepUnsyncedBytes: (_path, unsynced) => Math.min(unsynced, keep) });
        let model = EMPTY;
        let inFlight: Op | undefined;
        const observe = {
          started: (op: Op) => (inFlight = op),
          acknowledged: (op: Op) => {
            model = applyOp(model, op);
            inFlight = undefined;
          },
        };
        try {
          const wal = await Wal.open(DIR, { fs, ...OPTIONS });
          await runScenario(wal, rounds, 1, observe);
        } catch (error) {
          if (!(error instanceof SimulatedCrash) && (error as { code?: string }).code !== "WAL_ERR_FAILED") throw error;
        }
        expect(fs.crashed, `crash point ${crashAfter}`).toBe(true);
        const reopened = await Wal.open(DIR, { fs: memory, ...OPTIONS });
        if (reopened.recovery.tornTail) torn++;
        // Exactly the acknowledged calls, or those and the one in flight (if its batch reached the disk whole).
        const found = snapshot(reopened);
        const expected = inFlight && !equalModels(found, model) ? applyOp(model, inFlight) : model;
        expect(equalModels(found, expected), `crash point ${crashAfter}, tear ${keep}: found ${summary(found)}, expected ${summary(expected)}`).toBe(true);
        // The log goes on from there: more appends, a compaction, a clean reopen.
        const last = reopened.lastIndex();
        await reopened.append(range(last + 1, last + 30, 2, 300));
        await reopened.compact(last + 10, 2);
        const after = snapshot(reopened);
        await reopened.close();
        memory.crash();
        const again = await Wal.open(DIR, { fs: memory, ...OPTIONS });
        expect(again.recovery.tornTail).toBeUndefined();
        expect(equalModels(snapshot(again), after), `crash point ${crashAfter}: after going on`).toBe(true);
        await again.close();
      }
    }
    console.log(`wal recycling crash points: ${torn} torn tails cut`);
    expect(torn).toBeGreaterThan(5);
  });

  it("a torn batch in a recycled segment is cut to its own records, not to the stale bytes after it", async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open(DIR, { fs, ...OPTIONS });
    let model = EMPTY;
    await runScenario(wal, 6, 1, { started: () => undefined, acknowledged: (op) => (model = applyOp(model, op)) });
    const active = (await listSegments(DIR, fs)).find((s) => s.state === "active")!;
    expect(active.header?.recycled).toBe(true);
    const failed = range(361, 375, 1, 500);
    fs.failNextSync(active.name);
    await expect(wal.append(failed)).rejects.toMatchObject({ code: "WAL_ERR_FAILED" });
    const batchBytes = failed.reduce((sum, e) => sum + recordBytes(encodedEntryBytes(e)), recordBytes(8));
    fs.crash({ keepUnsyncedBytes: () => batchBytes - 100 }); // all of the batch but its end
    const again = await Wal.open(DIR, { fs, ...OPTIONS });
    expect(snapshot(again)).toEqual(model);
    const tail = again.recovery.tornTail!;
    expect(tail.segment).toBe(active.name);
    expect(tail.bytes).toBeGreaterThan(0);
    expect(tail.bytes).toBeLessThanOrEqual(batchBytes);
    expect(fs.currentBytes(tail.savedTo!).length).toBe(tail.bytes);
    await again.close();
    const third = await Wal.open(DIR, { fs, ...OPTIONS });
    expect(third.recovery.tornTail).toBeUndefined();
    expect(snapshot(third)).toEqual(model);
    await third.close();
  });

  it("a recycled file whose length changed after it was kept never becomes a segment: the rollover fails naming it", async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open(DIR, { fs, ...OPTIONS });
    await runScenario(wal, 2, 1, { started: () => undefined, acknowledged: () => undefined });
    const [recycled] = await recycledNames(fs);
    expect(recycled).toBeDefined();
    // Behind the WAL's back: shorter than a segment header (the soak's power-loss file system once measured one at 0 bytes).
    const file = await fs.open(posix.join(DIR, recycled));
    await file.truncate(20);
    await file.sync();
    await file.close();
    let refusal: unknown;
    for (let next = 121; refusal === undefined && next < 121 + 20 * 20; next += 20) {
      await wal.append(range(next, next + 19, 1, 500)).catch((error: unknown) => (refusal = error));
    }
    expect(refusal).toMatchObject({ code: "WAL_ERR_FAILED" });
    expect(wal.failed()?.message).toMatch(new RegExp(`recycled file .*${recycled} is 20 bytes, not the segment size 65536`));
    await wal.close();
    // Reopened, the WAL removes it and goes on.
    const reopened = await Wal.open(DIR, { fs, ...OPTIONS });
    expect(await recycledNames(fs)).not.toContain(recycled);
    await reopened.append(range(reopened.lastIndex() + 1, reopened.lastIndex() + 200, 1, 500));
    await reopened.close();
  });

  it("recycles nothing with recycledSegmentsMax 0, and keeps at most recycledSegmentsMax", async () => {
    for (const recycledSegmentsMax of [0, 1, 3]) {
      const fs = new MemoryFileSystem();
      const wal = await Wal.open(DIR, { fs, ...OPTIONS, recycledSegmentsMax });
      const recycledIds = new Set<number>();
      let mostKept = 0;
      const roundDone = async (): Promise<void> => {
        (await recycledSegmentIds(fs)).forEach((id) => recycledIds.add(id));
        mostKept = Math.max(mostKept, (await recycledNames(fs)).length);
      };
      await runScenario(wal, 8, 1, { started: () => undefined, acknowledged: () => undefined, roundDone });
      expect(mostKept).toBeLessThanOrEqual(recycledSegmentsMax);
      if (recycledSegmentsMax === 0) expect(recycledIds.size).toBe(0);
      else expect(recycledIds.size).toBeGreaterThan(0);
      await wal.close();
      // Reopening with a smaller bound removes the extra recycled files.
      const smaller = await Wal.open(DIR, { fs, ...OPTIONS, recycledSegmentsMax: 0 });
      expect(await recycledNames(fs)).toEqual([]);
      await smaller.close();
    }
  });
});

describe("a WAL that starts over beside recycled files", () => {
  it("takes a segment id past every recycled file's former id: their stale records never read as live ones", async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open(DIR, { fs, ...OPTIONS });
    await runScenario(wal, 8, 1, { started() {}, acknowledged() {} });
    await wal.close();
    const recycledIds = (await fs.list(DIR)).filter((name) => name.startsWith("recycled-")).map((name) => Number(name.slice(9, 29)));
    expect(recycledIds.length).toBeGreaterThan(0);
    // What a repair does when the whole log is lost: every segment set aside, the recycled files left.
    for (const listing of await listSegments(DIR, fs)) await fs.rename(listing.path, `${listing.path}.damaged`);
    const fresh = await Wal.open(DIR, { fs, ...OPTIONS });
    expect([fresh.firstIndex(), fresh.lastIndex()]).toEqual([1, 0]);
    const [active] = await listSegments(DIR, fs);
    expect(active.segmentId).toBeGreaterThan(Math.max(...recycledIds));
    await fresh.append(range(1, 30, 2, 500));
    await fresh.close();
    const reopened = await Wal.open(DIR, { fs, ...OPTIONS });
    expect(reopened.entries(1, 31, Infinity)).toEqual(range(1, 30, 2, 500));
    await reopened.close();
  });
});

describe("format version 1", () => {
  /** A version-1 segment (no flags; record checksums without the segment id) holding entries [from, to] in one batch. */
  function version1Segment(segmentId: number, from: number, to: number): Uint8Array {
    const image = new Uint8Array(OPTIONS.segmentSizeBytes!);
    image.set(encodeSegmentHeader({ formatVersion: FORMAT_VERSION_UNSEEDED, recycled: false, segmentSizeBytes: image.length, segmentId, firstIndex: from }), 0);
    let at = SEGMENT_HEADER_BYTES;
    for (const e of range(from, to, 1, 200)) at += encodeEntryRecord(image, at, e, encodedEntryBytes(e), 0);
    encodeCommitRecord(image, at, to, { batchStartOffset: SEGMENT_HEADER_BYTES, recordCount: to - from + 1 }, 0);
    return image;
  }

  it("is read; appends go on in a new version-2 segment; compacted version-1 segments are deleted, not recycled", async () => {
    const fs = new MemoryFileSystem();
    await fs.ensureDirectory(DIR);
    for (const [id, from, to] of [[1, 1, 100], [2, 101, 150]]) {
      const file = await fs.open(posix.join(DIR, segmentFileName(id)), { create: true });
      await file.write(version1Segment(id, from, to), 0);
      await file.sync();
      await file.close();
    }
    await fs.syncDirectory(DIR);
    let wal = await Wal.open(DIR, { fs, ...OPTIONS });
    expect([wal.firstIndex(), wal.lastIndex()]).toEqual([1, 150]);
    expect(wal.entries(1, 151, Infinity)).toEqual(range(1, 150, 1, 200));
    expect((await listSegments(DIR, fs)).map((s) => [s.segmentId, s.header?.formatVersion])).toEqual([
      [1, 1],
      [2, 1],
      [3, 2], // activated at open: nothing more is written in version 1
    ]);
    await wal.append(range(151, 160, 1, 200));
    await wal.close();
    wal = await Wal.open(DIR, { fs, ...OPTIONS });
    expect(wal.entries(145, 161, Infinity)).toEqual(range(145, 160, 1, 200));
    await wal.append(range(161, 600, 1, 200)); // rolls over to version-2 segments
    const versions = (await listSegments(DIR, fs)).filter((s) => s.header).map((s) => s.header!.formatVersion);
    expect(versions.slice(0, 2)).toEqual([1, 1]);
    expect(versions.length).toBeGreaterThan(3);
    expect(versions.slice(2).every((v) => v === 2)).toBe(true);
    await wal.compact(590, 1);
    expect((await fs.list(DIR)).some((name) => name === segmentFileName(1) || name === "recycled-00000000000000000001.wal")).toBe(false);
    await wal.close();
    const again = await Wal.open(DIR, { fs, ...OPTIONS });
    expect(again.entries(591, 601, Infinity)).toEqual(range(591, 600, 1, 200));
    await again.close();
  });
});
