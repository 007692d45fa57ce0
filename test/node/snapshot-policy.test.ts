/** The node's snapshot policy (src/node/snapshot-policy.ts), as a pure decision. */
import { describe, expect, it } from "vitest";
import { compactionPoint, SNAPSHOT_WAIT_INTERVALS_MAX, snapshotDecision, type SnapshotDue } from "../../src/node/snapshot-policy.js";

const due = (over: Partial<SnapshotDue>): SnapshotDue => ({
  entriesSinceSnapshot: 0,
  walBytesSinceSnapshot: 0,
  everyEntries: 100,
  everyWalBytes: 1000,
  sendingSnapshot: () => false,
  ...over,
});

describe("snapshot policy", () => {
  it("snapshots every N applied entries or M bytes of WAL, whichever comes first", () => {
    expect(snapshotDecision(due({ entriesSinceSnapshot: 99, walBytesSinceSnapshot: 999 }))).toBe("not-due");
    expect(snapshotDecision(due({ entriesSinceSnapshot: 100 }))).toBe("take");
    expect(snapshotDecision(due({ entriesSinceSnapshot: 1, walBytesSinceSnapshot: 1000 }))).toBe("take");
    // Nothing applied since the last snapshot: nothing to snapshot, whatever the bytes say.
    expect(snapshotDecision(due({ entriesSinceSnapshot: 0, walBytesSinceSnapshot: 5000 }))).toBe("not-due");
  });

  it("holds a due snapshot back while the leader sends its snapshot, and asks only when one is due", () => {
    let asked = 0;
    const sending = () => {
      asked++;
      return true;
    };
    expect(snapshotDecision(due({ entriesSinceSnapshot: 50, sendingSnapshot: sending }))).toBe("not-due");
    expect(asked).toBe(0);
    expect(snapshotDecision(due({ entriesSinceSnapshot: 100, sendingSnapshot: sending }))).toBe("wait-for-transfer");
    expect(snapshotDecision(due({ entriesSinceSnapshot: 1, walBytesSinceSnapshot: 2500, sendingSnapshot: sending }))).toBe("wait-for-transfer");
    expect(asked).toBe(2);
  });

  it("takes a held-back snapshot anyway once it is overdue by the bound, in entries or in bytes", () => {
    const sending = () => true;
    const entriesBound = SNAPSHOT_WAIT_INTERVALS_MAX * 100;
    const bytesBound = SNAPSHOT_WAIT_INTERVALS_MAX * 1000;
    expect(snapshotDecision(due({ entriesSinceSnapshot: entriesBound - 1, sendingSnapshot: sending }))).toBe("wait-for-transfer");
    expect(snapshotDecision(due({ entriesSinceSnapshot: entriesBound, sendingSnapshot: sending }))).toBe("take");
    expect(snapshotDecision(due({ entriesSinceSnapshot: 1, walBytesSinceSnapshot: bytesBound - 1, sendingSnapshot: sending }))).toBe("wait-for-transfer");
    expect(snapshotDecision(due({ entriesSinceSnapshot: 1, walBytesSinceSnapshot: bytesBound, sendingSnapshot: sending }))).toBe("take");
  });

  it("compacts behind the snapshot, keeping a tail of N entries, fewer when their mean size exceeds the byte bound", () => {
    const tail = { snapshotIndex: 10_000, catchUpEntries: 5_000, catchUpBytes: 64 * 1024 * 1024, entriesSinceSnapshot: 10_000, walBytesSinceSnapshot: 10_000 * 300 };
    expect(compactionPoint(tail)).toBe(5_000);
    // 64 KiB entries: 64 MiB hold 1,024 of them.
    expect(compactionPoint({ ...tail, walBytesSinceSnapshot: 10_000 * 64 * 1024 })).toBe(10_000 - 1_024);
    // No tail; a tail longer than the log; nothing measured since the last snapshot (the entry count alone).
    expect(compactionPoint({ ...tail, catchUpEntries: 0 })).toBe(10_000);
    expect(compactionPoint({ ...tail, snapshotIndex: 300 })).toBe(0);
    expect(compactionPoint({ ...tail, entriesSinceSnapshot: 0, walBytesSinceSnapshot: 0 })).toBe(5_000);
  });
});
