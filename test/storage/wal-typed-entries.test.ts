/**
 * The WAL lists the indexes of entries whose type is not 0 (the Raft core's configuration
 * entries), so that a restart finds them without reading the log: the list must follow
 * appends, truncations, compactions and replay exactly.
 */
import { describe, expect, it } from "vitest";
import { MemoryFileSystem } from "../../storage/fs/memory-file-system.js";
import { encodedEntryType, writeEntry, encodedEntryBytes } from "../../storage/wal/entry-codec.js";
import { Wal } from "../../storage/wal/index.js";
import type { Entry } from "../../src/proto/schema.js";
import { DIR, entry, range } from "./wal-helpers.js";

function typed(index: number, term: number): Entry {
  return { ...entry(index, term), type: 1 };
}

async function open(fs: MemoryFileSystem): Promise<Wal> {
  return Wal.open(DIR, { fs, segmentSizeBytes: 64 * 1024 });
}

describe("typed entries in the WAL index", () => {
  it("reads an entry's type from its encoding, whatever the varint sizes", () => {
    for (const [index, term, type] of [[1, 1, 0], [1, 1, 1], [300, 2 ** 40, 1], [2 ** 50, 7, 200], [5, 0, 1]]) {
      const value: Entry = { index, term, type: type as 0, data: new Uint8Array([1, 2, 3]) };
      const bytes = new Uint8Array(encodedEntryBytes(value));
      writeEntry(bytes, 0, value);
      expect(encodedEntryType(bytes, 0, bytes.length)).toBe(type);
    }
  });

  it("follows appends, truncation and compaction, and is rebuilt by replay", async () => {
    const fs = new MemoryFileSystem();
    const wal = await open(fs);
    await wal.append([typed(1, 1), ...range(2, 40, 1)]);
    await wal.append([...range(41, 60, 1), typed(61, 1), ...range(62, 80, 1), typed(81, 1)]);
    expect(wal.typedEntryIndexes()).toEqual([1, 61, 81]);
    await wal.append([...range(75, 90, 2)]); // overwrites 75.. (section 5.3): 81 is gone
    expect(wal.typedEntryIndexes()).toEqual([1, 61]);
    await wal.append([typed(91, 2)]);
    await wal.compact(30, 1);
    expect(wal.typedEntryIndexes()).toEqual([61, 91]);
    await wal.close();
    const reopened = await open(fs);
    expect(reopened.typedEntryIndexes()).toEqual([61, 91]);
    expect(reopened.entries(61, 62, 1 << 20)[0].type).toBe(1);
    await reopened.compact(91, 2);
    expect(reopened.typedEntryIndexes()).toEqual([]);
    await reopened.close();
  });
});
