/** MemoryStorage: the in-memory RaftLogStorage and its host-side writers. */
import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../src/raft/index.js";
import { entry, storageWithTerms } from "./helpers.js";
import { clusterConfigOf } from "../../src/raft/cluster-config.js";

function terms(storage: MemoryStorage): number[] {
  const out: number[] = [];
  for (let i = storage.firstIndex(); i <= storage.lastIndex(); i++) out.push(storage.term(i));
  return out;
}

describe("MemoryStorage", () => {
  it("append truncates a conflicting suffix first, and refuses a gap", () => {
    const storage = storageWithTerms([1, 1, 1, 1]);
    storage.append([entry(3, 2), entry(4, 2), entry(5, 2)]);
    expect(terms(storage)).toEqual([1, 1, 2, 2, 2]);
    storage.append([entry(2, 3)]);
    expect(terms(storage)).toEqual([1, 3]);
    expect(() => storage.append([entry(9, 3)])).toThrow(expect.objectContaining({ code: "RAFTWAL_ERR_INVALID_ARGUMENT" }));
    // Reference: section 5.3 (delete the conflicting entry and all that follow it)
  });

  it("term and entries report compacted and unavailable ranges with their codes", () => {
    const storage = storageWithTerms([1, 1, 2, 2]);
    storage.createSnapshot({ index: 2, term: 1, config: clusterConfigOf([1]), sizeBytes: 0 }, new Uint8Array(0));
    storage.compact(2);
    expect(storage.firstIndex()).toBe(3);
    expect(storage.term(2)).toBe(1);
    expect(() => storage.term(1)).toThrow(expect.objectContaining({ code: "RAFT_ERR_LOG_COMPACTED" }));
    expect(() => storage.term(5)).toThrow(expect.objectContaining({ code: "RAFT_ERR_LOG_UNAVAILABLE" }));
    expect(() => storage.entries(2, 4, 100)).toThrow(expect.objectContaining({ code: "RAFT_ERR_LOG_COMPACTED" }));
    // Reference: section 7 (log compaction)
  });

  it("entries stops at bytesMax but returns at least one entry", () => {
    const storage = new MemoryStorage();
    storage.append([1, 2, 3, 4].map((i) => ({ index: i, term: 1, type: 0 as const, data: new Uint8Array(10) })));
    expect(storage.entries(1, 5, 25).length).toBe(2);
    expect(storage.entries(1, 5, 1).length).toBe(1);
    expect(storage.entries(1, 5, 1000).length).toBe(4);
  });

  it("applySnapshot keeps later entries when the entry at the snapshot index matches, else discards the log", () => {
    const keep = storageWithTerms([1, 1, 1, 1]);
    keep.applySnapshot({ index: 2, term: 1, config: clusterConfigOf([1]), sizeBytes: 1 }, new Uint8Array([7]));
    expect([keep.firstIndex(), keep.lastIndex()]).toEqual([3, 4]);
    expect(keep.readSnapshotChunk(0, 10)).toEqual(new Uint8Array([7]));
    const discard = storageWithTerms([1, 1, 1, 1]);
    discard.applySnapshot({ index: 3, term: 2, config: clusterConfigOf([1]), sizeBytes: 0 }, new Uint8Array(0));
    expect([discard.firstIndex(), discard.lastIndex(), discard.term(3)]).toEqual([4, 3, 2]);
    // Reference: section 7, Figure 13 steps 6-7
  });

  it("clone is independent of the original", () => {
    const storage = storageWithTerms([1, 1]);
    const copy = storage.clone();
    storage.append([entry(3, 1)]);
    storage.setHardState({ term: 5, vote: 1, commit: 2 });
    expect(copy.lastIndex()).toBe(2);
    expect(copy.hardState().term).toBe(1);
  });
});
