/**
 * The leader's view of one follower (like etcd's tracker/progress.go).
 *
 * - probe: the leader does not know where the follower's log matches its own. It
 *   sends one append at a time and waits for the answer (or the next heartbeat
 *   response) before sending another (section 5.3, "the leader decrements nextIndex
 *   and retries").
 * - replicate: the follower acknowledged; the leader pipelines appends optimistically,
 *   advancing `next` as it sends, bounded by the in-flight window.
 * - snapshot: the follower needs entries the leader has compacted; the leader sends
 *   the snapshot in chunks (section 7) and no appends.
 */
import type { SnapshotMeta } from "../proto/schema.js";
import { Inflights } from "./inflights.js";
import { fail, invariant } from "./invariant.js";

export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * The leader's side of one chunked snapshot transfer: a window of up to
 * SNAPSHOT_CHUNKS_IN_FLIGHT_MAX chunks is sent ahead of the follower's acknowledgements.
 * Invariant: 0 <= offset <= sentOffset <= meta.sizeBytes.
 */
export interface SnapshotTransfer {
  meta: SnapshotMeta;
  /** The follower's next expected offset, as last reported (resume point after a loss). */
  offset: number;
  /** Offset of the next chunk to send. */
  sentOffset: number;
  /** The last chunk (done) was sent and not yet acknowledged. */
  doneSent: boolean;
  /** Leader ticks without progress while chunks are in flight; the window is resent after an election timeout. */
  idleTicks: number;
}

export class Progress {
  /**
   * Highest index known to be replicated on the follower (matchIndex, Figure 2).
   * Invariant: match < next.
   */
  match = 0;
  /** Index of the next entry to send (nextIndex, Figure 2). */
  next: number;
  state: ProgressState = "probe";
  /** In probe state: an append was sent; wait for its answer or a heartbeat response. */
  probeSent = false;
  /** In snapshot state: the snapshot's index. */
  pendingSnapshot = 0;
  snapshotTransfer: SnapshotTransfer | undefined = undefined;
  /** Heard from within the current election timeout (CheckQuorum, thesis section 6.2). */
  recentActive = false;
  /**
   * Leader ticks since a snapshot transfer to this follower started or the follower last
   * answered one; kept across transfers (one may start over: a newer snapshot, a dropped
   * connection). Infinity when none ever did.
   */
  ticksSinceSnapshotAnswer = Number.POSITIVE_INFINITY;
  /**
   * Set when the follower installs a snapshot: the leader's last index then. Until the
   * follower's match reaches it, it catches up with the entries after the snapshot, and a
   * compaction past them would send it another snapshot (sendingSnapshot). 0: none.
   */
  catchUpToIndex = 0;
  /** Highest commit index sent to the follower. */
  sentCommit = 0;
  readonly inflights: Inflights;

  constructor(next: number, inflightMessagesMax: number, inflightBytesMax: number) {
    this.next = next;
    this.inflights = new Inflights(inflightMessagesMax, inflightBytesMax);
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTransfer = undefined;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(meta: SnapshotMeta): void {
    this.resetState("snapshot");
    this.pendingSnapshot = meta.index;
    this.snapshotTransfer = { meta, offset: 0, sentOffset: 0, doneSent: false, idleTicks: 0 };
    this.ticksSinceSnapshotAnswer = 0;
  }

  /** The follower acknowledged entries up to `index`; returns whether that was news. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    invariant(this.match < this.next, "progress: match < next");
    return updated;
  }

  /**
   * The follower rejected an append whose previous index was `rejected`; `matchHint`
   * is where the leader should probe next (fast backup). Returns false for a stale
   * rejection that must be ignored.
   */
  maybeDecreaseTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      // Stale if the rejected index is already known to match.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe: only the answer to the outstanding probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    invariant(this.match < this.next && this.next >= 1, "progress: match < next");
    return true;
  }

  /** Records that an append with `entryCount` entries ending at `lastIndex` was sent. */
  sentEntries(entryCount: number, lastIndex: number, bytes: number): void {
    if (this.state === "replicate") {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    } else {
      fail("sentEntries in snapshot state");
    }
  }

  /** Whether the leader must hold back appends to this follower now. */
  isPaused(): boolean {
    if (this.state === "probe") return this.probeSent;
    if (this.state === "replicate") return this.inflights.full();
    return true;
  }
}
