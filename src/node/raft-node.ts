/**
 * RaftNode: the Raft core, the storage engine, the TCP transport and a timer, wired
 * together for one node of a cluster. This is what an application embeds.
 *
 * The node follows the core's host loop (src/raft/types.ts) to the letter:
 *   - messages the core releases are sent at once (`takeMessages()`), so heartbeats,
 *     appends and vote requests never wait for the disk;
 *   - each Ready is made durable (snapshot chunks, snapshot, entries, hard state) before
 *     `advance()`, and only `advance()` releases the messages that depend on it
 *     (a vote granted, an append acknowledged: Raft paper, Figure 2);
 *   - committed entries are applied in order, then `advance()`.
 *
 * Durability contract of the node (what is fsynced before what):
 *   - A proposal's promise resolves only after its entry is committed (durable on a
 *     majority, each of them having fsynced its WAL) and applied here.
 *   - Term and vote are fsynced (hard-state file replaced atomically, directory synced)
 *     before any message that depends on them leaves.
 *   - The commit index is volatile state in the paper (Figure 2): a change of commit alone
 *     is written lazily (with the next term/vote change, before every snapshot, when a
 *     leader's snapshot is installed, and at close) to spare an fsync per Ready. After a
 *     crash the node re-learns it from the leader; it never goes backwards past a snapshot.
 *   - A failed write or fsync stops the node loudly (`failure()`, the `onFatal` handlers,
 *     an error log line); it is never retried.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { RaftErrorCode, RaftwalError, RaftwalErrorCode } from "../raft/errors.js";
import { EntryType, type ClusterConfig, type Member } from "../proto/schema.js";
import { describeClusterConfig, isVoter, memberOf } from "../raft/cluster-config.js";
import type { ConfigChange } from "../raft/config-change.js";
import { decodeConfigEntry } from "../raft/config-log.js";
import { NotLeaderError } from "../raft/not-leader-error.js";
import type { Entry, HardState, Message, ProposalPosition, RaftCore, Ready, SnapshotMeta, SoftState } from "../raft/types.js";
import type { RaftStorage } from "../../storage/raft-storage.js";
import type { NodeTransport } from "../transport/node-transport.js";
import { closedError, NodeErrorCode } from "./errors.js";
import { silentLogger, type Logger } from "./logger.js";
import { membershipView, nodeMembership, PendingConfigChanges, type MembershipView } from "./membership.js";
import { NodeMetrics } from "./metrics.js";
import {
  electionTimeoutTicksOf,
  MEMBERSHIP_TIMEOUT_MS_DEFAULT,
  ON_STORAGE_CORRUPTION_DEFAULT,
  PROPOSAL_TIMEOUT_MS_DEFAULT,
  READ_TIMEOUT_MS_DEFAULT,
  SNAPSHOT_CATCH_UP_BYTES_DEFAULT,
  SNAPSHOT_EVERY_ENTRIES_DEFAULT,
  SNAPSHOT_EVERY_WAL_BYTES_DEFAULT,
  TICK_MS_DEFAULT,
  snapshotCatchUpEntriesDefault,
  type NodeStatus,
  type PeerAddress,
  type RaftNodeOptions,
} from "./options.js";
import { LatencyTrace, type LatencySample } from "./latency-trace.js";
import { LeaderWaiters } from "./leader-waiters.js";
import { PendingProposals } from "./pending-proposals.js";
import { PendingReads } from "./pending-reads.js";
import type { StateMachine } from "./state-machine.js";
import { storageUsage, type StorageUsage } from "./storage-usage.js";
import { NodeFileSystem } from "../../storage/fs/node-file-system.js";
import { memberAddress, openNodeParts, transportPeers } from "./startup.js";
import type { OwnMember } from "./own-member.js";
import { compactionPoint, snapshotDecision } from "./snapshot-policy.js";
import { initialElectionTickAdvance } from "./election-tick-advance.js";

/** Bytes a WAL record adds to an entry's data (record header, protobuf framing, padding): an estimate for the policy. */
const WAL_RECORD_OVERHEAD_BYTES_ESTIMATE = 56;

export class RaftNode<Result = unknown> {
  readonly metrics = new NodeMetrics();
  /** Where a write spends its time, on the leader and on a follower (RaftNodeOptions.latencyTrace); undefined when off. */
  readonly latencyTrace: LatencyTrace | undefined;
  private readonly proposals = new PendingProposals<Result | undefined>();
  private readonly reads = new PendingReads();
  private readonly configChanges = new PendingConfigChanges();
  private readonly leaderWaiters = new LeaderWaiters();
  /** A repair of storage damage in progress: since when, and what the core last said it still lacks. */
  private repair: { startedMs: number; state: NonNullable<ReturnType<RaftCore["recovering"]>> } | undefined;
  /** Ticks left before a node that learned of its removal stops (its last messages go out first). */
  private removalCountdownTicks: number | undefined;
  private readonly fatalHandlers: Array<(error: Error) => void> = [];
  private ticker: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  /** A snapshot being written in the background (at most one). */
  private snapshotting: Promise<void> | undefined;
  /** A due snapshot is waiting for a snapshot transfer (logged and counted once per wait). */
  private snapshotWaiting = false;
  private stopped = false;
  /** Set by close(): new requests are refused while those in flight finish. */
  private closing: Promise<void> | undefined;
  private kickScheduled = false;
  private fatal: Error | undefined;
  private applied: number;
  /** The configuration at the applied index: its members stay peers until a later one is applied (transportPeers). */
  private appliedConfig: ClusterConfig;
  /** The hard state of the last advanced Ready: its commit is covered by the durable log. */
  private advancedHardState: HardState;
  private soft: SoftState;
  /** Entry bytes written to the WAL since the last snapshot (an estimate, reset at start). */
  private walBytesSinceSnapshot = 0;

  private constructor(
    private readonly options: RaftNodeOptions<Result>,
    private readonly core: RaftCore,
    private readonly storage: RaftStorage,
    private readonly transport: NodeTransport,
    private readonly ownMember: OwnMember,
    private readonly logger: Logger,
  ) {
    this.applied = storage.snapshotMeta().index;
    this.latencyTrace = options.latencyTrace ? new LatencyTrace() : undefined;
    this.appliedConfig = core.clusterConfigAt(this.applied);
    this.advancedHardState = storage.hardState();
    this.soft = core.softState();
    const state = core.recovering();
    if (state) {
      this.repair = { startedMs: performance.now(), state };
      if (state.lostFromIndex > 0) this.metrics.repairsStarted.inc({ part: "log" });
      if (state.hardStateLost) this.metrics.repairsStarted.inc({ part: "hard_state" });
      this.metrics.repairing.set(1);
    }
  }

  /** Opens the data directory, restores the state machine, starts the transport and the ticker. */
  static async create<Result>(options: RaftNodeOptions<Result>): Promise<RaftNode<Result>> {
    const logger = (options.logger ?? silentLogger).child({ node: options.id });
    const { storage, core, transport, start, ownMember } = await openNodeParts(options, logger);
    const node = new RaftNode(options, core, storage, transport, ownMember, logger);
    try {
      await node.start();
    } catch (error) {
      await storage.close().catch(() => undefined);
      throw error;
    }
    const { config, index } = core.clusterConfig();
    logger.info("node started", {
      start,
      snapshotIndex: storage.snapshotMeta().index,
      lastIndex: storage.lastIndex(),
      term: storage.hardState().term,
      configuration: `${describeClusterConfig(config)} (index ${index})`,
      tornTail: storage.recovery.wal.tornTail ?? null,
    });
    return node;
  }

  private async start(): Promise<void> {
    this.transport.onMessage((message) => {
      this.latencyTrace?.received(message);
      this.guard(() => this.core.step(message));
    });
    this.transport.onUnreachable((peer) => this.guard(() => this.core.reportUnreachable(peer)));
    this.transport.onSnapshotDropped((peer) => this.guard(() => this.core.reportSnapshot(peer, false)));
    this.transport.onRefused((peer, refusal, removed) => this.refusedBy(peer, refusal, removed));
    this.metrics.attachTransport(() => this.transport.stats());
    await this.transport.start();
    this.advanceElectionTicks();
    this.ticker = setInterval(() => this.tick(), this.options.tickMs ?? TICK_MS_DEFAULT);
    this.kick();
  }

  /** At start, without a leader: the first campaign after a few ticks, not a whole election timeout (election-tick-advance.ts). */
  private advanceElectionTicks(): void {
    if (this.options.initialElectionTickAdvance === false) return;
    const ticks = initialElectionTickAdvance(this.core, this.options.id, electionTimeoutTicksOf(this.options));
    for (let i = 0; i < ticks; i++) this.guard(() => this.core.tick());
  }

  /** The address the transport listens on (useful with port 0). */
  address(): PeerAddress {
    return this.transport.address();
  }

  // ---- the host loop ---------------------------------------------------------------------

  private tick(): void {
    if (this.removalCountdownTicks !== undefined && --this.removalCountdownTicks <= 0) {
      void this.stop(new RaftwalError(NodeErrorCode.REMOVED, `node ${this.options.id} was removed from the cluster`));
      return;
    }
    const now = performance.now();
    this.proposals.expire(now);
    this.reads.expire(now);
    this.guard(() => this.core.tick());
    // A snapshot held back for a transfer is taken once the transfer (and the follower's
    // catch-up after it) ends, even when no write comes to run the check after a Ready (an
    // idle cluster would keep the longer log).
    // Not while a Ready is handled: entries applied from it may be above the commit index
    // written so far, which the snapshot must not pass; the check after that Ready runs anyway.
    if (this.snapshotWaiting && !this.stopped && this.pumping === undefined) this.maybeSnapshot();
  }

  /**
   * Feeds one event to the core. The core throws only on a broken invariant or when its
   * storage cannot serve the log (a damaged record): neither is safe to carry on from, so
   * the node stops loudly instead of serving with a core in an unknown state.
   */
  private guard(event: () => void): void {
    if (this.stopped) return;
    try {
      event();
    } catch (error) {
      void this.stop(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.kick();
  }

  /**
   * Schedules one flush for everything that happens in this turn of the event loop:
   * proposals and messages that arrive together leave in one append per follower and
   * one Ready (batching), not one each.
   */
  private kick(): void {
    if (this.stopped || this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.stopped) return;
    let pumpNeeded: boolean;
    try {
      this.send(this.core.takeMessages());
      pumpNeeded = !this.pumping && this.core.hasReady();
    } catch (error) {
      void this.stop(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (pumpNeeded) {
      this.pumping = this.pump().finally(() => {
        this.pumping = undefined;
        // Events that arrived while the last Ready was being persisted may have made a new one.
        this.kick();
      });
    }
  }

  private send(messages: Message[]): void {
    this.latencyTrace?.sending(messages);
    this.transport.send(messages);
  }

  /** Handles Readies one at a time (only one may be outstanding) until there are none. */
  private async pump(): Promise<void> {
    try {
      while (!this.stopped && this.core.hasReady()) await this.handleReady(this.core.ready());
    } catch (error) {
      await this.stop(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Steps 3 to 6 of the host loop (src/raft/types.ts) for one Ready. */
  private async handleReady(ready: Ready): Promise<void> {
    if (ready.softState) this.observe(ready.softState);
    if (ready.clusterConfig) this.observeClusterConfig(ready.clusterConfig);
    this.send(ready.messages);
    const started = performance.now();
    const persisted = this.persist(ready).then(() => this.metrics.persistSeconds.observe((performance.now() - started) / 1000));
    persisted.catch(() => undefined); // awaited in apply(); this only keeps it from counting as unhandled meanwhile
    await this.apply(ready, persisted);
    this.core.advance(ready);
    if (ready.hardState) this.advancedHardState = ready.hardState;
    this.send(this.core.takeMessages());
    for (const readState of ready.readStates) this.reads.confirmed(readState.requestId, readState.index, this.applied);
    if (this.repair) await this.followRepair();
    this.maybeSnapshot();
  }

  /**
   * While repairing storage damage: once the core is whole again (recovery.ts), the
   * directory's REPAIRING mark is removed durably; the repair is logged and counted.
   */
  private async followRepair(): Promise<void> {
    const repair = this.repair!;
    const state = this.core.recovering();
    if (state) {
      repair.state = state;
      return;
    }
    await this.storage.markRepaired();
    this.repair = undefined;
    const seconds = (performance.now() - repair.startedMs) / 1000;
    this.metrics.repairsCompleted.inc();
    this.metrics.repairSeconds.set(seconds);
    this.metrics.repairing.set(0);
    this.logger.info("storage repaired from peers", {
      lostFromIndex: repair.state.lostFromIndex,
      repairedUpTo: repair.state.targetIndex,
      hardStateLost: repair.state.hardStateLost,
      fetchedFrom: this.core.softState().leader,
      term: this.core.softState().term,
      seconds: Math.round(seconds * 1000) / 1000,
    });
  }

  /** Step 4: make the Ready durable, in the order the core requires. */
  private async persist(ready: Ready): Promise<void> {
    for (const chunk of ready.snapshotChunks) await this.storage.writeSnapshotChunk(chunk);
    if (ready.snapshot) await this.storage.installSnapshot(ready.snapshot);
    if (ready.entries.length > 0) {
      this.latencyTrace?.walAppendIssued(ready.entries);
      await this.storage.append(ready.entries);
      this.latencyTrace?.walSynced(ready.entries);
      for (const entry of ready.entries) this.walBytesSinceSnapshot += entry.data.length + WAL_RECORD_OVERHEAD_BYTES_ESTIMATE;
    }
    if (ready.hardState) {
      const durable = this.storage.hardState();
      // Term and vote: durable before anything that depends on them is sent (Figure 2).
      // Commit alone is volatile (Figure 2) and written lazily; but never leave it below
      // an installed snapshot, so a restart's commit covers the snapshot.
      const termOrVote = ready.hardState.term !== durable.term || ready.hardState.vote !== durable.vote;
      if (termOrVote || ready.snapshot) await this.storage.saveHardState(ready.hardState);
    }
  }

  /**
   * Step 5, overlapped with step 4 (`persisted`): the disk and the state machine work in
   * parallel. Committed entries are applied in order; the first one the durable log does
   * not hold yet waits for this Ready's writes, and so does a snapshot to restore (it
   * comes first). Resolves once everything is applied and persisted.
   */
  private async apply(ready: Ready, persisted: Promise<void>): Promise<void> {
    let heldThrough = this.durablyHeldThrough(ready);
    this.latencyTrace?.markEntries(ready.committedEntries, "committed");
    if (ready.snapshot) {
      await persisted;
      await this.restoreFromSnapshot(ready.snapshot);
    }
    for (const entry of ready.committedEntries) {
      if (entry.index > heldThrough) {
        await persisted;
        heldThrough = Number.POSITIVE_INFINITY;
      }
      await this.applyEntry(entry);
    }
    await persisted;
    this.metrics.committed.inc(ready.committedEntries.length);
    this.metrics.appliedIndex.set(this.applied);
    this.reads.appliedTo(this.applied);
  }

  /**
   * The highest index the durable log already holds for good before this Ready's writes:
   * below both the storage's last index and the first entry this Ready writes (which may
   * truncate from there); committed entries are never truncated (Leader Completeness, 5.4).
   * Nothing is held while a snapshot is being installed (it replaces the log).
   */
  private durablyHeldThrough(ready: Ready): number {
    if (ready.snapshot) return 0;
    const last = this.storage.lastIndex();
    return ready.entries.length > 0 ? Math.min(last, ready.entries[0].index - 1) : last;
  }

  private async restoreFromSnapshot(snapshot: SnapshotMeta): Promise<void> {
    await this.options.stateMachine.restore(this.storage.readSnapshot(), snapshot);
    await this.ownMember.observe(snapshot.config);
    this.applied = snapshot.index;
    const unknownFate = () => new RaftwalError(RaftErrorCode.PROPOSAL_DROPPED, "a snapshot from the leader replaced this node's log; the proposal's fate is unknown");
    this.proposals.skippedTo(snapshot.index, unknownFate);
    this.configChanges.snapshotInstalled(snapshot.index, snapshot.config, unknownFate);
    this.appliedConfig = snapshot.config;
    this.updatePeers();
    this.noticeRemoval(snapshot.config, snapshot.index);
    this.metrics.snapshotsInstalled.inc();
    this.logger.info("installed a snapshot from the leader", { index: snapshot.index, term: snapshot.term });
  }

  private async applyEntry(entry: Entry): Promise<void> {
    if (entry.index !== this.applied + 1) {
      throw new Error(`apply order broken: entry ${entry.index} after applied index ${this.applied}`);
    }
    if (entry.type === EntryType.CLUSTER_CONFIG) {
      const config = decodeConfigEntry(entry);
      await this.ownMember.observe(config);
      this.applied = entry.index;
      this.configApplied(entry.index, entry.term, config);
      return;
    }
    // An entry with empty data is a leader's no-op (Raft paper, section 8): not for the application.
    const result = entry.data.length > 0 ? await this.options.stateMachine.apply(entry) : undefined;
    this.applied = entry.index;
    this.latencyTrace?.markEntries([entry], "applied");
    this.metrics.applied.inc();
    this.proposals.applied(entry.index, entry.term, result);
  }

  /**
   * Snapshot and compact (whole segments behind the snapshot's catch-up tail are deleted)
   * when the policy says so (snapshot-policy.ts: every `snapshotEveryEntries` applied
   * entries or about `snapshotEveryWalBytes` of WAL, held back, within a bound, while
   * sending a snapshot).
   */
  private maybeSnapshot(): void {
    if (this.snapshotting) return;
    const everyEntries = this.options.snapshotEveryEntries ?? SNAPSHOT_EVERY_ENTRIES_DEFAULT;
    // snapshotIndex(), not snapshotMeta(), which copies the configuration: this runs after every Ready.
    const entriesSinceSnapshot = this.applied - this.storage.snapshotIndex();
    const decision = snapshotDecision({
      entriesSinceSnapshot,
      walBytesSinceSnapshot: this.walBytesSinceSnapshot,
      everyEntries,
      everyWalBytes: this.options.snapshotEveryWalBytes ?? SNAPSHOT_EVERY_WAL_BYTES_DEFAULT,
      sendingSnapshot: () => this.core.sendingSnapshot(),
    });
    if (decision === "wait-for-transfer" && !this.snapshotWaiting) {
      this.snapshotWaiting = true;
      this.metrics.snapshotsHeldBack.inc();
      this.logger.info("snapshot held back while this leader sends its snapshot to a follower", { applied: this.applied });
    }
    if (decision !== "take") return;
    this.snapshotWaiting = false;
    const index = this.applied;
    const config = this.core.clusterConfigAt(index);
    // The state machine captures its state now (the StateMachine contract), so applying goes
    // on while the snapshot is written: the pump never waits for it.
    const data = this.options.stateMachine.snapshot();
    const compactTo = compactionPoint({
      snapshotIndex: index,
      catchUpEntries: this.options.snapshotCatchUpEntries ?? snapshotCatchUpEntriesDefault(everyEntries),
      catchUpBytes: this.options.snapshotCatchUpBytes ?? SNAPSHOT_CATCH_UP_BYTES_DEFAULT,
      entriesSinceSnapshot,
      walBytesSinceSnapshot: this.walBytesSinceSnapshot,
    });
    this.walBytesSinceSnapshot = 0;
    this.snapshotting = this.writeSnapshot(index, compactTo, config, data)
      .catch((error: unknown) => this.stop(error instanceof Error ? error : new Error(String(error))))
      .finally(() => {
        this.snapshotting = undefined;
      });
  }

  /** Writes a snapshot in the background, then lets the core compact behind it. */
  private async writeSnapshot(index: number, compactTo: number, config: ClusterConfig, data: ReturnType<StateMachine<Result>["snapshot"]>): Promise<void> {
    // The storage only snapshots durably committed entries: write the lazy commit first.
    await this.storage.saveHardState(this.advancedHardState);
    const meta = await this.storage.createSnapshot({ index, config, compactTo }, data);
    // A newer snapshot from the leader may have been installed meanwhile: nothing to tell then.
    if (meta.index !== index || this.stopped) return;
    this.guard(() => this.core.snapshotTaken(meta));
    this.metrics.snapshots.inc();
    this.logger.info("snapshot taken", { index: meta.index, term: meta.term, sizeBytes: meta.sizeBytes });
  }

  /** The configuration in force changed (on append: thesis 4.1): connect to new members. */
  private observeClusterConfig(config: ClusterConfig): void {
    this.updatePeers();
    this.logger.info("configuration changed", { configuration: describeClusterConfig(config) });
  }

  /** The transport's peers: the members in force and those of the applied configuration (startup.ts, transportPeers). */
  private updatePeers(): void {
    this.transport.setPeers(transportPeers(this.core.clusterConfig().config, this.appliedConfig, this.options.id));
  }

  /** A committed configuration was applied: membership requests waiting for it complete; members it removed are dropped. */
  private configApplied(index: number, term: number, config: ClusterConfig): void {
    this.appliedConfig = config;
    this.updatePeers();
    this.configChanges.applied(index, term, config);
    this.metrics.configChanges.inc();
    this.noticeRemoval(config, index);
  }

  /**
   * A committed configuration lists this node as removed (ids are never reused, so that
   * list is final): it stops after an election timeout, so that its last messages (a
   * leader's hand-over, acknowledgements) still go out.
   */
  private noticeRemoval(config: ClusterConfig, index: number): void {
    if (!config.removed.includes(this.options.id) || this.removalCountdownTicks !== undefined) return;
    this.removalCountdownTicks = electionTimeoutTicksOf(this.options);
    this.logger.warn("this node was removed from the cluster; it stops taking part", { configIndex: index, configuration: describeClusterConfig(config) });
  }

  /**
   * A peer refused this node's handshake. When it says this node was removed, that comes
   * from its committed configuration (ids are never reused): this node missed its own
   * removal, and stops as if it had applied it.
   */
  private refusedBy(peer: number, refusal: string, removed: boolean): void {
    this.logger.warn("a peer refused this node's connection", { peer, refusal });
    if (!removed || this.removalCountdownTicks !== undefined) return;
    this.removalCountdownTicks = 1;
    this.logger.warn("this node was removed from the cluster (told by a member); it stops taking part", { peer });
  }

  private observe(soft: SoftState): void {
    const previous = this.soft;
    this.soft = soft;
    if (soft.leader !== previous.leader) {
      this.leaderWaiters.leaderKnown(soft.leader);
      this.metrics.leaderChanges.inc();
      this.logger.info("leader changed", { leader: soft.leader, term: soft.term, role: soft.role });
    }
    if (soft.role === "candidate" && previous.role !== "candidate") this.metrics.elections.inc();
    if (previous.role === "leader" && soft.role !== "leader") this.reads.rejectUnconfirmed(() => this.notLeader());
    this.metrics.term.set(soft.term);
    this.metrics.isLeader.set(soft.role === "leader" ? 1 : 0);
  }

  // ---- the embedding API ------------------------------------------------------------------

  /**
   * Proposes a command. Resolves with the state machine's result for it once it is
   * committed and applied on this node; rejects with NotLeaderError (carrying the
   * leader's id and address when known), a timeout (the command may still commit), or
   * a closed/stopped error. While no leader is known (just started, an election), it
   * first waits for one, up to `proposalTimeoutMs` (leader-waiters.ts). `trace`: a sample
   * of `latencyTrace` (when on) to record this proposal's stages in.
   */
  propose(command: Uint8Array, trace?: LatencySample): Promise<Result | undefined> {
    if (this.stopped || this.closing) return Promise.reject(closedError(this.fatal));
    if (command.length === 0) return Promise.reject(new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, "a command must not be empty (empty entries are leader no-ops)"));
    const timeoutMs = this.options.proposalTimeoutMs ?? PROPOSAL_TIMEOUT_MS_DEFAULT;
    if (this.core.softState().leader === 0) return this.afterLeaderKnown("proposal", timeoutMs, () => this.proposeNow(command, timeoutMs, trace));
    return this.proposeNow(command, timeoutMs, trace);
  }

  private proposeNow(command: Uint8Array, timeoutMs: number, trace: LatencySample | undefined): Promise<Result | undefined> {
    if (this.stopped || this.closing) return Promise.reject(closedError(this.fatal));
    let position;
    try {
      position = this.core.propose(command);
    } catch (error) {
      this.metrics.proposalsFailed.inc({ reason: (error as RaftwalError).code ?? "error" });
      if ((error as RaftwalError).code === RaftErrorCode.NOT_LEADER) return Promise.reject(this.notLeader());
      return Promise.reject(error);
    }
    this.metrics.proposals.inc();
    if (trace) this.latencyTrace?.proposed(trace, position.index);
    const done = this.proposals.add(position.index, position.term, timeoutMs, performance.now());
    this.kick();
    return done;
  }

  /**
   * Resolves once a linearizable read may be served from the local state machine: the
   * leader confirmed its leadership with a heartbeat round after the read began, and this
   * node has applied everything committed before it (ReadIndex, Raft thesis 6.4). While no
   * leader is known it first waits for one, up to `readTimeoutMs`.
   */
  read(): Promise<void> {
    if (this.stopped || this.closing) return Promise.reject(closedError(this.fatal));
    const timeoutMs = this.options.readTimeoutMs ?? READ_TIMEOUT_MS_DEFAULT;
    if (this.core.softState().leader === 0) return this.afterLeaderKnown("read", timeoutMs, () => this.readNow(timeoutMs));
    return this.readNow(timeoutMs);
  }

  private readNow(timeoutMs: number): Promise<void> {
    if (this.stopped || this.closing) return Promise.reject(closedError(this.fatal));
    if (this.core.softState().leader === 0) return Promise.reject(this.notLeader("read"));
    const { requestId, done } = this.reads.add(timeoutMs, performance.now());
    this.core.readIndex(requestId);
    this.kick();
    return done;
  }

  /**
   * Resolves with the leader's id once a leader is known (at once if one is): a host may
   * wait for it before it starts serving. Rejects with NotLeaderError (leader unknown)
   * after `timeoutMs` (default: `proposalTimeoutMs`), or NODE_ERR_CLOSED.
   */
  waitForLeader(options: { timeoutMs?: number } = {}): Promise<number> {
    if (this.stopped) return Promise.reject(closedError(this.fatal));
    const leader = this.core.softState().leader;
    if (leader !== 0) return Promise.resolve(leader);
    const timeoutMs = options.timeoutMs ?? this.options.proposalTimeoutMs ?? PROPOSAL_TIMEOUT_MS_DEFAULT;
    return this.afterLeaderKnown("waiting for a leader", timeoutMs, async () => this.core.softState().leader);
  }

  /** Runs `then` once a leader is known; NotLeaderError if none is within `timeoutMs`. */
  private afterLeaderKnown<T>(what: string, timeoutMs: number, then: () => Promise<T>): Promise<T> {
    return this.leaderWaiters.wait(timeoutMs, () => this.notLeader(`${what} (no leader known within ${timeoutMs} ms)`)).then(then);
  }

  // ---- membership (Raft thesis chapter 4) -----------------------------------------------------

  /** The configuration in force on this node: every member with its role and addresses. */
  members(): MembershipView {
    const { config, index } = this.core.clusterConfig();
    return membershipView(config, index, index <= this.core.commitIndex());
  }

  /** Adds a member as a learner: it receives the log (by snapshot first) and does not vote yet. */
  addLearner(member: { id: number; peerAddress: string; apiAddress?: string }): Promise<MembershipView> {
    return this.changeMembership({ add: [member] });
  }

  /** Makes a learner a voter once it has caught up (RAFT_ERR_LEARNER_BEHIND before). */
  promote(id: number): Promise<MembershipView> {
    return this.changeMembership({ promote: [id] });
  }

  /** Removes a voter or a learner. A leader removing itself leads until the change commits, then hands over. */
  removeMember(id: number): Promise<MembershipView> {
    return this.changeMembership({ remove: [id] });
  }

  /**
   * Several changes at once: through joint consensus when more than one voter changes
   * (thesis 4.3). Resolves with the new membership once the change is committed and
   * applied here (for a joint change, once the joint configuration has been left).
   * Rejects with NotLeaderError on a follower, RAFT_ERR_CONFIG_CHANGE_IN_PROGRESS,
   * RAFT_ERR_LEARNER_BEHIND, RAFT_ERR_UNKNOWN_MEMBER, RAFT_ERR_LAST_VOTER,
   * RAFT_ERR_INVALID_CONFIG_CHANGE, NODE_ERR_TIMEOUT (it may still take effect).
   */
  async changeMembership(change: { add?: Array<{ id: number; peerAddress: string; apiAddress?: string }>; promote?: number[]; remove?: number[] }): Promise<MembershipView> {
    if (this.stopped || this.closing) throw closedError(this.fatal);
    const request: ConfigChange = {
      addLearners: (change.add ?? []).map((m): Member => ({ id: m.id, peerAddress: m.peerAddress, apiAddress: m.apiAddress ?? "" })),
      promote: change.promote ?? [],
      remove: change.remove ?? [],
    };
    const timeoutMs = this.options.membershipTimeoutMs ?? MEMBERSHIP_TIMEOUT_MS_DEFAULT;
    const position = await this.proposeConfigChangeWhenReady(request, Date.now() + timeoutMs);
    this.kick();
    await this.configChanges.add(position.index, position.term, timeoutMs);
    return this.members();
  }

  /**
   * A new leader may not start a change before its first entry commits (thesis 4.1
   * erratum): that takes a round trip, so the request waits for it (one tick at a time,
   * until `deadline`) instead of failing with RAFT_ERR_LEADER_NOT_READY.
   */
  private async proposeConfigChangeWhenReady(request: ConfigChange, deadline: number): Promise<ProposalPosition> {
    const tickMs = this.options.tickMs ?? TICK_MS_DEFAULT;
    // Bounded by the deadline.
    for (;;) {
      if (this.stopped) throw closedError(this.fatal);
      try {
        return this.core.proposeConfigChange(request);
      } catch (error) {
        const code = (error as RaftwalError).code;
        if (code === RaftErrorCode.NOT_LEADER) throw this.notLeader();
        if (code !== RaftErrorCode.LEADER_NOT_READY || Date.now() + tickMs > deadline) throw error;
      }
      await sleep(tickMs);
    }
  }

  /** Asks the leader (this node) to hand leadership to `to` (Raft thesis 3.10). */
  transferLeadership(to: number): void {
    if (this.stopped) throw closedError(this.fatal);
    this.core.transferLeadership(to);
    this.kick();
  }

  /** Role and known leader (0: none): the cheap part of status(), for per-request routing. */
  leadership(): { role: SoftState["role"]; leader: number } {
    const soft = this.core.softState();
    return { role: soft.role, leader: soft.leader };
  }

  status(): NodeStatus {
    const soft = this.core.softState();
    const hard = this.core.hardState();
    const config = this.core.clusterConfig();
    const removed = this.removalCountdownTicks !== undefined || (this.fatal as RaftwalError | undefined)?.code === NodeErrorCode.REMOVED;
    return {
      id: this.options.id,
      clusterId: this.options.clusterId,
      role: soft.role,
      term: soft.term,
      leader: soft.leader,
      commitIndex: hard.commit,
      appliedIndex: this.applied,
      lastIndex: this.storage.lastIndex(),
      firstIndex: this.storage.firstIndex(),
      snapshotIndex: this.storage.snapshotIndex(),
      configIndex: config.index,
      voter: isVoter(config.config, this.options.id),
      ...(this.core.recovering() ? { repairing: this.core.recovering() } : {}),
      removed,
      membership: nodeMembership(config.config, this.options.id, removed),
      readMode: this.options.raft?.readMode ?? "read-index",
      progress: this.core.progress(),
    };
  }

  /** The disk this node's storage holds: WAL files and the current snapshot (storage-usage.ts). */
  storageUsage(): Promise<StorageUsage> {
    return storageUsage(this.options.storage?.fs ?? new NodeFileSystem(), this.options.dataDir, this.storage.snapshotMeta());
  }

  /**
   * Damage found while running (a read that fails its checksum) stops the node: a leader
   * steps down by stopping. Its next start finds the same damage (every record is checked
   * at open) and repairs it from the peers, like any follower (src/raft/REPAIR.md).
   */
  private repairHint(reason: Error): { next?: string } {
    const code = (reason as RaftwalError).code;
    const damage = code === "WAL_ERR_CORRUPT" || code === "WAL_ERR_SNAPSHOT_CORRUPT" || code === "WAL_ERR_HARD_STATE_CORRUPT";
    if (!damage) return {};
    return (this.options.onStorageCorruption ?? ON_STORAGE_CORRUPTION_DEFAULT) === "repair"
      ? { next: "storage damage: restart the node; it sets the damage aside and repairs it from its peers" }
      : { next: "storage damage: onStorageCorruption is \"stop\"; see the README's storage-damage section" };
  }

  /**
   * This node's own member record (its peer and API addresses): from the configuration in
   * force, or, when storage damage took every configuration naming this node (it waits for
   * the leader to send one again), as its data directory's MEMBER file kept it.
   */
  self(): Member | undefined {
    const member = memberOf(this.core.clusterConfig().config, this.options.id);
    const saved = this.ownMember.saved();
    return member ?? (saved && { id: saved.id, peerAddress: saved.peerAddress, apiAddress: saved.apiAddress });
  }

  /** The peer address of member `id` in the configuration in force, if it is a member. */
  peerAddress(id: number): PeerAddress | undefined {
    return memberAddress(this.core.clusterConfig().config, id);
  }

  /** The error that stopped this node, if a fatal one did. */
  failure(): Error | undefined {
    return this.fatal;
  }

  /** Called once if the node stops on a fatal error (a failed fsync, a broken invariant). */
  onFatal(handler: (error: Error) => void): void {
    this.fatalHandlers.push(handler);
  }

  /**
   * Graceful shutdown: refuses new proposals and reads, lets those in flight finish (up to
   * `drainTimeoutMs`, default `proposalTimeoutMs`; the ticker keeps running meanwhile), then
   * stops the ticker, fails what is left, closes the transport, saves the commit index,
   * closes the storage and logs "stopped".
   */
  close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.drain(options.drainTimeoutMs ?? this.options.proposalTimeoutMs ?? PROPOSAL_TIMEOUT_MS_DEFAULT).then(() => this.stop());
    return this.closing;
  }

  /** Waits, a tick at a time, until no proposal or read is pending, the node stopped, or `timeoutMs` passed. */
  private async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const tickMs = this.options.tickMs ?? TICK_MS_DEFAULT;
    // Bounded by the deadline.
    while (!this.stopped && this.proposals.size + this.reads.size > 0 && Date.now() < deadline) {
      await sleep(tickMs);
    }
  }

  private notLeader(what = "request"): NotLeaderError {
    const leader = this.core.softState().leader;
    return new NotLeaderError(this.options.id, leader, what, leader ? this.peerAddress(leader) : undefined);
  }

  /**
   * Stops the node: on close() (no reason), once removed from the cluster (NODE_ERR_REMOVED:
   * an orderly end too), or on a failure, which is never retried and skips every further
   * write. `failure()` and the onFatal handlers get the reason.
   */
  private async stop(reason?: Error): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const failed = reason !== undefined && (reason as RaftwalError).code !== NodeErrorCode.REMOVED;
    if (reason) {
      this.fatal = reason;
      if (failed) this.logger.error("node stopped on a fatal error; it will not retry", { error: reason.message, code: (reason as RaftwalError).code, ...this.repairHint(reason) });
      else this.logger.warn("node stopped: removed from the cluster");
    }
    if (this.ticker) clearInterval(this.ticker);
    if (!failed && this.pumping) await this.pumping;
    if (!failed && this.snapshotting) await this.snapshotting;
    const error = closedError(reason);
    this.proposals.rejectAll(error);
    this.reads.rejectAll(error);
    this.configChanges.rejectAll(error);
    this.leaderWaiters.rejectAll(error);
    await this.transport.close();
    let saved = false;
    if (!failed) {
      // Keep the commit index a restart starts from as fresh as this node knows it.
      saved = await this.storage.saveHardState(this.advancedHardState).then(
        () => true,
        (e: unknown) => (this.logger.warn("could not save the hard state at close", { error: String(e) }), false),
      );
    }
    await this.storage.close().catch(() => undefined);
    if (!failed) this.logger.info("stopped", { term: this.advancedHardState.term, commitIndex: this.advancedHardState.commit, appliedIndex: this.applied, commitIndexSaved: saved });
    if (reason) for (const handler of this.fatalHandlers) handler(reason);
  }
}

/** Creates and starts a node: see RaftNodeOptions. */
export function createNode<Result>(options: RaftNodeOptions<Result>): Promise<RaftNode<Result>> {
  return RaftNode.create(options);
}
