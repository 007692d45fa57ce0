/**
 * Two batches in flight: the second is written while the first is not yet durable, and
 * its COMMIT says so (PIPELINED). A crash can then tear the first and leave the second
 * whole; neither was acknowledged, so recovery must call that a torn tail, and still call
 * damage followed by anything else corruption.
 */
import { posix } from "node:path";
import { describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { encodedEntryBytes } from "../../storage/wal/entry-codec.js";
import {
  COMMIT_FLAG_PIPELINED,
  RECORD_HEADER_BYTES,
  RecordType,
  SEGMENT_HEADER_BYTES,
  decodeRecordHeader,
  emptyRecordHeader,
  encodeCommitRecord,
  encodeEntryRecord,
  recordBytes,
  recordCrcSeed,
} from "../../storage/wal/format.js";
import { Wal, segmentFileName, verifyWal } from "../../storage/wal/index.js";
import type { Entry } from "../../src/proto/schema.js";
import { CrashingFileSystem, SimulatedCrash } from "./raft-storage-crashing-fs.js";
import { DIR, range } from "./wal-helpers.js";

const SEGMENT = posix.join(DIR, segmentFileName(1));
const OPTIONS = { segmentSizeBytes: 1024 * 1024 };

/** The records of a segment image in file order (type, flags, offset), up to zero space. */
function records(bytes: Uint8Array): Array<{ type: number; flags: number; offset: number }> {
  const out: Array<{ type: number; flags: number; offset: number }> = [];
  const header = emptyRecordHeader();
  for (let at = SEGMENT_HEADER_BYTES; at + RECORD_HEADER_BYTES <= bytes.length && decodeRecordHeader(bytes, at, header) === "ok"; at += recordBytes(header.payloadBytes)) {
    out.push({ type: header.type, flags: header.flags, offset: at });
  }
  return out;
}

/** A batch image (entries, then a COMMIT) as the WAL writes it at `offset` of segment 1. */
function batchImage(entries: Entry[], offset: number, pipelined: boolean): Uint8Array {
  const seed = recordCrcSeed(1);
  const bytes = entries.reduce((sum, e) => sum + recordBytes(encodedEntryBytes(e)), recordBytes(8));
  const image = new Uint8Array(bytes);
  let at = 0;
  for (const e of entries) at += encodeEntryRecord(image, at, e, encodedEntryBytes(e), seed);
  encodeCommitRecord(image, at, entries[entries.length - 1].index, { batchStartOffset: offset, recordCount: entries.length }, seed, pipelined);
  return image;
}

/** A log of entries 1..10 (durable), then two more batches written by hand after it: 11..15 and 16..20. */
async function logWithTwoMoreBatches(secondPipelined: boolean, third = false): Promise<{ fs: MemoryFileSystem; first: number; second: number }> {
  const fs = new MemoryFileSystem();
  const wal = await Wal.open(DIR, { fs, ...OPTIONS });
  await wal.append(range(1, 10, 1, 300));
  await wal.close();
  const end = records(fs.currentBytes(SEGMENT)).at(-1)!.offset + recordBytes(8);
  const one = batchImage(range(11, 15, 1, 300), end, false);
  const two = batchImage(range(16, 20, 1, 300), end + one.length, secondPipelined);
  fs.overwrite(SEGMENT, end, one);
  fs.overwrite(SEGMENT, end + one.length, two);
  if (third) fs.overwrite(SEGMENT, end + one.length + two.length, batchImage(range(21, 22, 1, 300), end + one.length + two.length, true));
  return { fs, first: end, second: end + one.length };
}

describe("two batches in flight", () => {
  it("a queue large enough is written as two batches at once; the second's COMMIT is PIPELINED", async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open(DIR, { fs, ...OPTIONS });
    // 200 concurrent calls of 1 KiB: about 210 KB queued at once.
    await Promise.all(Array.from({ length: 200 }, (_, k) => wal.append(range(k + 1, k + 1, 1, 1024))));
    expect(wal.lastIndex()).toBe(200);
    await wal.close();
    const commits = records(fs.currentBytes(SEGMENT)).filter((r) => r.type === RecordType.COMMIT);
    expect(commits).toHaveLength(2);
    expect(commits.map((c) => c.flags)).toEqual([0, COMMIT_FLAG_PIPELINED]);
    const again = await Wal.open(DIR, { fs, ...OPTIONS });
    expect(again.entries(1, 201, Infinity)).toEqual(range(1, 200, 1, 1024));
    await again.close();
  });

  it("a torn batch followed by one whole PIPELINED batch is a torn tail: both are cut", async () => {
    for (const damage of ["its end", "all of it"] as const) {
      const { fs, first, second } = await logWithTwoMoreBatches(true);
      // The crash kept the second batch but not all of the first (with its COMMIT).
      const from = damage === "all of it" ? first : second - 512;
      fs.overwrite(SEGMENT, from, new Uint8Array(second - from));
      expect((await verifyWal(DIR, fs)).status).toBe("torn-tail");
      const wal = await Wal.open(DIR, { fs, ...OPTIONS });
      expect(wal.lastIndex(), `lost ${damage}`).toBe(10);
      expect(wal.recovery.tornTail).toMatchObject({ offset: first });
      expect(wal.recovery.tornTail!.bytes).toBeGreaterThan(second - first);
      await wal.append(range(11, 12, 2, 50));
      await wal.close();
      const again = await Wal.open(DIR, { fs, ...OPTIONS });
      expect(again.recovery.tornTail).toBeUndefined();
      expect(again.lastIndex()).toBe(12);
      await again.close();
    }
  });

  it("a damaged batch followed by a whole batch that was not PIPELINED, or by two, is corruption", async () => {
    for (const [pipelined, third] of [
      [false, false],
      [true, true],
    ] as const) {
      const { fs, first } = await logWithTwoMoreBatches(pipelined, third);
      fs.overwrite(SEGMENT, first + 600, new Uint8Array(512));
      expect((await verifyWal(DIR, fs)).status).toBe("corrupt");
      await expect(Wal.open(DIR, { fs, ...OPTIONS })).rejects.toMatchObject({ code: "WAL_ERR_CORRUPT" });
    }
  });

  it("a failed batch fails the batch in flight after it too, and everything queued", async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open(DIR, { fs, ...OPTIONS });
    await wal.append(range(1, 3, 1, 100));
    fs.failNextSync(segmentFileName(1));
    const calls = Array.from({ length: 200 }, (_, k) => wal.append(range(k + 4, k + 4, 1, 1024)).then(() => "ok", (e: unknown) => (e as { code?: string }).code));
    const outcomes = await Promise.all(calls);
    expect(new Set(outcomes)).toEqual(new Set(["WAL_ERR_FAILED"]));
    expect(wal.lastIndex()).toBe(3);
    fs.crash();
    const again = await Wal.open(DIR, { fs, ...OPTIONS });
    // Whatever reached the disk is a prefix of the calls: never a later batch without an earlier one.
    expect(again.lastIndex()).toBeGreaterThanOrEqual(3);
    expect(again.entries(1, again.lastIndex() + 1, Infinity)).toEqual([...range(1, 3, 1, 100), ...range(4, again.lastIndex(), 1, 1024)]);
    await again.close();
  });
});

describe("two batches in flight, crash at every step", () => {
  /** Rounds of 120 concurrent 1 KiB appends (about 130 KB: two batches in flight), across rollovers of 256 KiB segments. */
  async function concurrentRounds(wal: Wal, acknowledged: Set<number>): Promise<void> {
    let next = 1;
    for (let round = 0; round < 4; round++) {
      const calls = Array.from({ length: 120 }, (_, k) => {
        const index = next + k;
        return wal.append(range(index, index, 1, 1024)).then(() => void acknowledged.add(index));
      });
      next += 120;
      await Promise.all(calls);
    }
  }

  it("recovers every acknowledged entry and only a prefix of the calls, whatever operation the crash follows", async () => {
    const options = { segmentSizeBytes: 256 * 1024, cacheEntriesMax: 0 };
    const counting = new CrashingFileSystem(new MemoryFileSystem());
    const whole = await Wal.open(DIR, { fs: counting, ...options });
    await concurrentRounds(whole, new Set());
    const operations = counting.operations;
    await whole.close();
    let torn = 0;
    for (let crashAfter = 1; crashAfter <= operations; crashAfter++) {
      for (const keep of [0, 3000]) {
        const memory = new MemoryFileSystem();
        const fs = new CrashingFileSystem(memory, crashAfter, { keepUnsyncedBytes: (_path, unsynced) => Math.min(unsynced, keep) });
        const acknowledged = new Set<number>();
        try {
          await concurrentRounds(await Wal.open(DIR, { fs, ...options }), acknowledged);
        } catch (error) {
          if (!(error instanceof SimulatedCrash) && (error as { code?: string }).code !== "WAL_ERR_FAILED") throw error;
        }
        const wal = await Wal.open(DIR, { fs: memory, ...options });
        if (wal.recovery.tornTail) torn++;
        const last = wal.lastIndex();
        for (const index of acknowledged) expect(index, `crash point ${crashAfter}: entry ${index} was acknowledged`).toBeLessThanOrEqual(last);
        const found = wal.entries(1, last + 1, Infinity);
        expect(found.every((e, k) => e.index === k + 1 && Buffer.compare(e.data, range(k + 1, k + 1, 1, 1024)[0].data) === 0), `crash point ${crashAfter}`).toBe(true);
        await wal.close();
      }
    }
    console.log(`two batches in flight: ${operations} crash points x 2, ${torn} torn tails cut`);
    expect(torn).toBeGreaterThan(3);
  });
});
