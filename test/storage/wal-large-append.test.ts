/**
 * One append larger than a segment (a follower catching up a long log on small segments)
 * is written as consecutive parts across segments; found by the torture suite, where a
 * node stopped on "one call writes 254024 bytes of records; a segment holds at most 65456".
 */
import { describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { Wal } from "../../storage/wal/index.js";
import { DIR, entry, errorCode, range } from "./wal-helpers.js";

const SEGMENT_BYTES = 64 * 1024;

describe("an append larger than one segment", () => {
  it("is written across several segments and reads back, also after reopening", async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open(DIR, { fs, segmentSizeBytes: SEGMENT_BYTES });
    await wal.append(range(1, 10, 1, 100));
    // About 250 KB of records in one call: four segments' worth.
    const big = range(11, 260, 1, 1000);
    await wal.append(big);
    expect(wal.lastIndex()).toBe(260);
    expect(wal.segmentInfos().length).toBeGreaterThanOrEqual(4);
    expect(wal.entries(11, 261, Infinity).map((e) => e.index)).toEqual(big.map((e) => e.index));
    await wal.close();
    const reopened = await Wal.open(DIR, { fs, segmentSizeBytes: SEGMENT_BYTES });
    expect(reopened.lastIndex()).toBe(260);
    expect(Array.from(reopened.entries(200, 201, Infinity)[0].data)).toEqual(Array.from(entry(200, 1, 1000).data));
    await reopened.close();
  });

  it("truncates a conflicting suffix first, then writes the parts", async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open(DIR, { fs, segmentSizeBytes: SEGMENT_BYTES });
    await wal.append(range(1, 50, 1, 100));
    await wal.append(range(21, 220, 2, 1000));
    expect(wal.lastIndex()).toBe(220);
    expect(wal.term(20)).toBe(1);
    expect(wal.term(21)).toBe(2);
    expect(wal.term(220)).toBe(2);
    await wal.close();
    const reopened = await Wal.open(DIR, { fs, segmentSizeBytes: SEGMENT_BYTES });
    expect([reopened.term(20), reopened.term(21), reopened.lastIndex()]).toEqual([1, 2, 220]);
    await reopened.close();
  });

  it("refuses a single entry larger than a segment", async () => {
    const fs = new MemoryFileSystem();
    const wal = await Wal.open(DIR, { fs, segmentSizeBytes: SEGMENT_BYTES });
    const error = await wal.append([entry(1, 1, 70 * 1024)]).catch((e: unknown) => e);
    expect(errorCode(error)).toBe("RAFTWAL_ERR_INVALID_ARGUMENT");
    expect(wal.lastIndex()).toBe(0);
    await wal.append([entry(1, 1, 10)]);
    expect(wal.lastIndex()).toBe(1);
    await wal.close();
  });
});
