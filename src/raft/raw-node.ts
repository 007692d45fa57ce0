/**
 * The host-facing side of the core: builds Readies and takes them back (like etcd's
 * rawnode.go). This is where the persistence contract (top of types.ts) is enforced:
 *
 *   - ready() hands out every unstable entry, the pending snapshot and its chunks,
 *     and the hard state, and moves the withheld messages (outbox.ts) into a hidden
 *     record of this Ready; none of them is in `ready.messages`.
 *   - advance() is the host's statement that all of it is durable (and the committed
 *     entries applied). Only then are the withheld messages released, the unstable
 *     entries dropped (storage now serves them), and the leader's own match index
 *     moved to what it has persisted (thesis section 10.2.1).
 *   - committedEntries may include entries of the same Ready: the host persists
 *     entries (step 4) before it applies (step 5), so they are durable when applied.
 */
import { copyClusterConfig, type ClusterConfig, type HardState, type Message, type SnapshotMeta } from "../proto/schema.js";
import { isVoter } from "./cluster-config.js";
import type { ConfigChange } from "./config-change.js";
import { invariant } from "./invariant.js";
import { sendingSnapshot } from "./leader.js";
import type { Raft } from "./raft.js";
import type { PeerProgress, ProposalPosition, RaftCore, Ready, SoftState } from "./types.js";

/** What advance() needs to know about the Ready it confirms. */
interface Outstanding {
  ready: Ready;
  withheld: Message[];
  /** The applied index once this Ready is applied. */
  appliedTo: number;
}

export class RawNode implements RaftCore {
  private previousSoftState: SoftState;
  private previousHardState: HardState;
  private outstanding: Outstanding | undefined = undefined;

  constructor(private readonly raft: Raft) {
    this.previousSoftState = raft.softState();
    this.previousHardState = raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  step(message: Message): void {
    this.raft.step(message);
  }

  propose(data: Uint8Array): ProposalPosition {
    return this.raft.propose([data]);
  }

  proposeBatch(data: Uint8Array[]): ProposalPosition {
    return this.raft.propose(data);
  }

  proposeConfigChange(change: ConfigChange): ProposalPosition {
    return this.raft.proposeConfigChange(change);
  }

  clusterConfig(): { index: number; config: ClusterConfig } {
    const current = this.raft.log.configs.current();
    return { index: current.index, config: copyClusterConfig(current.config) };
  }

  recovering(): { lostFromIndex: number; targetIndex: number; hardStateLost: boolean } | undefined {
    const state = this.raft.recovery;
    return state && { lostFromIndex: state.lostFromIndex, targetIndex: state.targetIndex, hardStateLost: state.hardStateLost };
  }

  clusterConfigAt(index: number): ClusterConfig {
    return copyClusterConfig(this.raft.log.configs.at(index));
  }

  readIndex(requestId: Uint8Array): void {
    this.raft.readIndex(requestId);
  }

  transferLeadership(to: number): void {
    this.raft.transferLeadership(to);
  }

  reportUnreachable(peer: number): void {
    this.raft.reportUnreachable(peer);
  }

  reportSnapshot(peer: number, ok: boolean): void {
    this.raft.reportSnapshot(peer, ok);
  }

  snapshotTaken(meta: SnapshotMeta): void {
    this.raft.snapshotTaken(meta);
  }

  softState(): SoftState {
    return this.raft.softState();
  }

  hardState(): HardState {
    return this.raft.hardState();
  }

  progress(): PeerProgress[] {
    const raft = this.raft;
    if (raft.role !== "leader") return [];
    const ids = [...raft.progress.keys()].sort((a, b) => a - b);
    return ids.map((id) => {
      const progress = raft.progress.get(id)!;
      const voter = isVoter(raft.clusterConfig, id);
      return { id, voter, match: progress.match, next: progress.next, state: progress.state, recentActive: progress.recentActive };
    });
  }

  sendingSnapshot(): boolean {
    return sendingSnapshot(this.raft);
  }

  commitIndex(): number {
    return this.raft.log.committed;
  }

  appliedIndex(): number {
    return this.raft.log.applied;
  }

  private softStateChanged(): boolean {
    const raft = this.raft;
    const previous = this.previousSoftState;
    return raft.role !== previous.role || raft.lead !== previous.leader || raft.term !== previous.term;
  }

  private hardStateChanged(): boolean {
    const raft = this.raft;
    const previous = this.previousHardState;
    return raft.term !== previous.term || raft.vote !== previous.vote || raft.log.committed !== previous.commit;
  }

  /** A command: builds the batched appends and heartbeats that became due, and takes every sendable message. */
  takeMessages(): Message[] {
    this.raft.flush();
    return this.raft.outbox.takeSendable();
  }

  /** A query: changes nothing (batched sends still to be built count as something to hand out). */
  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const raft = this.raft;
    const log = raft.log;
    return (
      raft.hasSendsDue() ||
      raft.outbox.hasSendable() ||
      raft.outbox.hasWithheld() ||
      log.unstable.hasEntriesToPersist() ||
      log.unstable.hasSnapshotToPersist() ||
      raft.snapshotReceiver.hasChunksToPersist() ||
      log.hasEntriesToApply() ||
      raft.readStates.length > 0 ||
      raft.clusterConfigChanged ||
      this.hardStateChanged() ||
      this.softStateChanged()
    );
  }

  ready(): Ready {
    invariant(this.outstanding === undefined, "ready() called again before advance() of the previous Ready");
    const raft = this.raft;
    raft.flush();
    const log = raft.log;
    const unstable = log.unstable;
    const ready: Ready = {
      entries: unstable.entriesToPersist(),
      snapshotChunks: raft.snapshotReceiver.takeChunksToPersist(),
      messages: raft.outbox.takeSendable(),
      committedEntries: log.entriesToApply(raft.config.committedBytesPerReadyMax),
      readStates: raft.readStates,
    };
    raft.readStates = [];
    if (unstable.hasSnapshotToPersist()) ready.snapshot = unstable.snapshot;
    if (this.softStateChanged()) {
      ready.softState = raft.softState();
      this.previousSoftState = ready.softState;
    }
    if (this.hardStateChanged()) ready.hardState = raft.hardState();
    if (raft.clusterConfigChanged) {
      ready.clusterConfig = copyClusterConfig(raft.clusterConfig);
      raft.clusterConfigChanged = false;
    }
    unstable.acceptInProgress();
    const committed = ready.committedEntries;
    if (committed.length > 0) {
      log.acceptApplying(committed[committed.length - 1].index);
      raft.reduceUncommittedBytes(committed);
    }
    this.outstanding = { ready, withheld: raft.outbox.takeWithheld(), appliedTo: log.applying };
    return ready;
  }

  advance(ready: Ready): void {
    const outstanding = this.outstanding;
    invariant(outstanding !== undefined && outstanding.ready === ready, "advance() must be given the Ready last returned by ready()");
    this.outstanding = undefined;
    const raft = this.raft;
    const log = raft.log;
    if (ready.snapshot !== undefined) log.stableSnapshotTo(ready.snapshot.index);
    if (ready.entries.length > 0) {
      const last = ready.entries[ready.entries.length - 1];
      log.stableTo(last.index, last.term);
    }
    log.appliedTo(outstanding.appliedTo);
    if (ready.hardState !== undefined) this.previousHardState = ready.hardState;
    raft.onPersisted(this.previousHardState);
    raft.outbox.release(outstanding.withheld, raft.id, (message) => raft.step(message));
  }
}
