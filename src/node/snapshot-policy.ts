/**
 * When a node snapshots its state machine and compacts its log (RaftNode.maybeSnapshot).
 *
 * Every `snapshotEveryEntries` applied entries, or once about `snapshotEveryWalBytes` of
 * entries went into the WAL. But a leader that is sending its snapshot to a follower waits:
 * a new snapshot would replace the one being sent (the storage serves only the newest, so
 * the transfer starts over) and compact the entries right after it, which the follower
 * needs once it has installed it (so the wait lasts until the follower has acknowledged the
 * entries the leader had at the install: RaftCore.sendingSnapshot). Under a steady load
 * whose snapshot interval is shorter than a transfer, every transfer would start over and
 * the follower never catch up. etcd pauses compaction the same way while it sends a
 * snapshot. The wait is bounded: after SNAPSHOT_WAIT_INTERVALS_MAX intervals' worth the
 * snapshot is taken anyway, so that a transfer that cannot finish does not let the log grow
 * without bound.
 *
 * The log is compacted only up to a point behind the snapshot (compactionPoint): the
 * entries in between are a catch-up tail, which a leader sends to a follower that is only
 * a little behind (it restarted, or its connection dropped, around a compaction) instead
 * of its whole snapshot. etcd keeps 5,000 entries (SnapshotCatchUpEntries).
 */

/** A snapshot held back for a transfer is taken anyway at this many times its interval. */
export const SNAPSHOT_WAIT_INTERVALS_MAX = 4;

export type SnapshotDecision = "not-due" | "take" | "wait-for-transfer";

export interface SnapshotDue {
  entriesSinceSnapshot: number;
  walBytesSinceSnapshot: number;
  everyEntries: number;
  everyWalBytes: number;
  /** Whether this node, as leader, is sending its snapshot to a follower it hears from (asked only when a snapshot is due). */
  sendingSnapshot: () => boolean;
}

export function snapshotDecision(due: SnapshotDue): SnapshotDecision {
  if (due.entriesSinceSnapshot <= 0) return "not-due";
  const entriesDue = due.entriesSinceSnapshot >= due.everyEntries;
  const bytesDue = due.walBytesSinceSnapshot >= due.everyWalBytes;
  if (!entriesDue && !bytesDue) return "not-due";
  const overdue =
    due.entriesSinceSnapshot >= SNAPSHOT_WAIT_INTERVALS_MAX * due.everyEntries || due.walBytesSinceSnapshot >= SNAPSHOT_WAIT_INTERVALS_MAX * due.everyWalBytes;
  return !overdue && due.sendingSnapshot() ? "wait-for-transfer" : "take";
}

export interface CatchUpTail {
  /** The snapshot's index. */
  snapshotIndex: number;
  /** Entries to keep behind it, and at most about this many bytes of them. */
  catchUpEntries: number;
  catchUpBytes: number;
  /** Entries and WAL bytes since the snapshot before: their mean sizes the byte bound. */
  entriesSinceSnapshot: number;
  walBytesSinceSnapshot: number;
}

/** Where to compact the log behind a snapshot at `snapshotIndex`: the highest index to discard (at least 0). */
export function compactionPoint(tail: CatchUpTail): number {
  let entries = tail.catchUpEntries;
  if (tail.entriesSinceSnapshot > 0 && tail.walBytesSinceSnapshot > 0) {
    const meanEntryBytes = tail.walBytesSinceSnapshot / tail.entriesSinceSnapshot;
    entries = Math.min(entries, Math.floor(tail.catchUpBytes / meanEntryBytes));
  }
  return Math.max(0, tail.snapshotIndex - Math.max(0, entries));
}
