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
