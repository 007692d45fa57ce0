/**
 * The contract between the Raft core and whoever hosts it (the node runtime, the
 * simulation harness, a user's own embedding).
 *
 * The core is a deterministic state machine. It owns no timers, sockets, files or
 * randomness: logical time arrives through `tick()`, randomness through the seeded
 * `random` function in its config, messages through `step()`, and older log entries
 * are read through `RaftLogStorage`. Everything it wants done comes out as a `Ready`.
 *
 * The host loop, in order:
 *
 *   1. Feed events: `tick()` every tick, `step(message)` for every message received,
 *      `propose(...)`, `readIndex(...)`, `transferLeadership(...)`, `report*(...)`.
 *   2. When `hasReady()`, take `ready()`. At most one Ready is outstanding: the next
 *      `ready()` may only be taken after `advance()` for this one. Events may keep
 *      arriving in between (steps 1 and 2 interleave freely).
 *   3. Send `ready.messages` at once. They are safe to send before anything in this
 *      Ready is durable: the core withholds every message that depends on state not
 *      yet durable (a vote granted, an append acknowledged, a snapshot chunk
 *      acknowledged) until the `advance()` that confirms that state is durable; it is
 *      released in a later Ready. This is the persistence contract:
 *        - "Persistent state on all servers: (Updated on stable storage before
 *          responding to RPCs)" (Raft paper, Figure 2).
 *        - A leader may send AppendEntries for entries it has not yet persisted
 *          itself (Raft thesis, section 10.2.1); it counts itself toward a commit
 *          quorum only for entries it has persisted.
 *   4. Make durable, in this order: `ready.snapshotChunks` (appended to the pending
 *      incoming snapshot), `ready.snapshot` (install: the snapshot becomes the newest
 *      durable one and the log up to its index is discarded, keeping any later
 *      entries that match it), `ready.entries` (if `entries[0].index` is at or below
 *      the storage's last index, the log is first truncated from that index:
 *      section 5.3), then `ready.hardState`. The storage must reflect all of it (its
 *      `lastIndex()`, `term()`, `snapshotMeta()`) before `advance()`.
 *   5. Apply `ready.committedEntries` to the application state machine, in order
 *      (skip entries with empty data: they are leader no-ops). If `ready.snapshot`
 *      is set, restore the state machine from it first. Serve `ready.readStates` once
 *      the applied index reaches each one's `index`.
 *   6. Call `advance(ready)`. This declares: everything in step 4 is durable and
 *      everything in step 5 is applied.
 *
 * Committed entries are only handed out once they are durable on this node, so an
 * application never applies an entry that a crash could take away from it.
 */
import type { ClusterConfig, Entry, HardState, Member, Message, SnapshotChunk, SnapshotMeta } from "../proto/schema.js";
import type { ConfigChange } from "./config-change.js";
import type { StorageDamage } from "./recovery.js";
import type { ReadMode } from "./lease.js";

export type { StorageDamage, ReadMode };
export type { ClusterConfig, ConfigChange, Entry, HardState, Member, Message, SnapshotChunk, SnapshotMeta };

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

/** Volatile state the host may want to display or act on. `leader` 0 means unknown. */
export interface SoftState {
  role: Role;
  leader: number;
  term: number;
}

/** A read request that became safe: serve it once the applied index reaches `index`. */
export interface ReadState {
  requestId: Uint8Array;
  index: number;
}

/** See the host loop at the top of this file for what to do with each field. */
export interface Ready {
  /** Set when role, leader or term changed since the last Ready. */
  softState?: SoftState;
  /** Set when term, vote or commit changed: persist before advance(). */
  hardState?: HardState;
  /** Entries to append durably (after truncating from entries[0].index if needed). */
  entries: Entry[];
  /**
   * Chunks of an incoming snapshot to write durably, in order. Within one transfer the
   * offsets are contiguous; a chunk at offset 0 starts a new transfer (discarding a
   * partial one). When `snapshot` is set, the last chunk here is that snapshot's
   * `done` chunk (or it arrived in an earlier Ready).
   */
  snapshotChunks: SnapshotChunk[];
  /** A fully received snapshot to install durably and restore the state machine from. */
  snapshot?: SnapshotMeta;
  /** Messages to send now; every one of them is already safe to send. */
  messages: Message[];
  /** Committed, locally durable entries to apply, in index order, without gaps. */
  committedEntries: Entry[];
  /** Read requests confirmed by a leadership check (ReadIndex, thesis section 6.4). */
  readStates: ReadState[];
  /**
   * Set when the configuration in force changed since the last Ready (the host reads the
   * one it starts with through clusterConfig()): the host connects to new members and
   * drops removed ones.
   * It is already in force inside the core (thesis 4.1: on append, not on commit).
   */
  clusterConfig?: ClusterConfig;
}

/**
 * The durable log as the core sees it. The host writes to it (step 4 of the loop);
 * the core only reads. Reads are synchronous: a WAL serves them from its index and a
 * bounded cache, reading segment files on demand. Any object with these methods will
 * do (storage/raft-storage.ts fits structurally and imports nothing from the core).
 *
 * Errors: the core reads `term` and `entries` only inside the ranges documented below,
 * so a read outside them, or a failing read, means a broken storage or a broken host.
 * The core never catches what a storage throws and never matches on its code: the
 * error passes through the core's method to the host unchanged. Throw a RaftwalError
 * with the storage's own code (storage/ throws WAL_ERR_COMPACTED and
 * WAL_ERR_UNAVAILABLE; MemoryStorage throws RAFT_ERR_LOG_COMPACTED and
 * RAFT_ERR_LOG_UNAVAILABLE).
 *
 * Invariant: firstIndex() - 1 <= snapshotMeta().index <= lastIndex() once the node has a
 * snapshot. A storage may keep entries behind its snapshot (a catch-up tail: the core sends
 * them to a follower a little behind instead of the snapshot); the core applies from the
 * snapshot's index, never below it.
 */
export interface RaftLogStorage {
  /** The durable hard state at start-up (all zero for a new node). */
  hardState(): HardState;
  /** The newest durable snapshot's metadata (index 0, term 0 when there is none). */
  snapshotMeta(): SnapshotMeta;
  /** Index of the first entry still in the log: snapshotMeta().index + 1, or lower when entries are kept behind the snapshot. */
  firstIndex(): number;
  /** Index of the last entry in the log; snapshotMeta().index when the log is empty. */
  lastIndex(): number;
  /**
   * Term of the entry at `index`, for firstIndex() - 1 <= index <= lastIndex()
   * (at the snapshot's index it is the snapshot's term). Throws below and above that
   * range (see Errors above).
   */
  term(index: number): number;
  /**
   * Entries [lo, hi), stopping before their encoded data would exceed `bytesMax`
   * but always returning at least one entry. Same errors as `term`.
   */
  entries(lo: number, hi: number, bytesMax: number): Entry[];
  /**
   * Up to `bytesMax` of the newest snapshot's payload, starting at `offset`: of the snapshot
   * `snapshotMeta()` names at the same moment (a storage changes the two together, never one
   * before the other; the core reads the meta, then chunks, without yielding in between).
   * A leader's chunked transfer reads the newest snapshot only, so when the application takes a
   * newer snapshot while a transfer is under way, that transfer restarts from offset 0
   * with the newer one: keep the interval between application snapshots longer than a
   * transfer takes, or a far-behind follower may never finish one.
   */
  readSnapshotChunk(offset: number, bytesMax: number): Uint8Array;
  /**
   * Indexes of the log's entries above the snapshot whose `type` is not ENTRY_NORMAL,
   * ascending. They are rare (configuration changes); the core reads them at start to
   * find the configuration in force without reading the whole log.
   */
  typedEntryIndexes(): number[];
}

/** Configuration of one Raft core. Counts and sizes carry their unit in the name. */
export interface RaftConfig {
  /** This node's id (> 0). */
  id: number;
  /**
   * The initial configuration's voters and learners: in force until the log or a snapshot
   * holds a configuration (a node bootstrapping a cluster writes one as its first entry;
   * a node that waits to be added starts with none and is neither).
   */
  voters?: number[];
  learners?: number[];
  storage: RaftLogStorage;
  /** Seeded source of randomness in [0, 1): election timeouts are drawn from it. */
  random: () => number;
  /** Base election timeout; the effective one is drawn from [base, 2 * base). Default 10. */
  electionTimeoutTicks?: number;
  /** Default 1. Must be smaller than electionTimeoutTicks. */
  heartbeatIntervalTicks?: number;
  /** Default true (thesis section 9.6). */
  preVote?: boolean;
  /** Default true (thesis section 6.2: a leader without a quorum steps down). */
  checkQuorum?: boolean;
  /** Most entry bytes in one append message. Default 1 MiB. */
  messageBytesMax?: number;
  /** Most append messages in flight to one follower in replicate state. Default 256. */
  inflightMessagesMax?: number;
  /** Most entry bytes in flight to one follower. Default 16 MiB. */
  inflightBytesMax?: number;
  /** Most bytes of a snapshot in one InstallSnapshot chunk. Default 1 MiB. */
  snapshotChunkBytes?: number;
  /** Highest index the application has already applied (restart). Default: the snapshot index. */
  appliedIndex?: number;
  /**
   * A leader refuses proposals (RAFT_ERR_PROPOSAL_DROPPED) while this many entry bytes
   * are proposed but not yet handed out as committed. Default 256 MiB.
   */
  uncommittedBytesMax?: number;
  /** Most committed-entry bytes in one Ready (always at least one entry). Default 64 MiB. */
  committedBytesPerReadyMax?: number;
  /**
   * A learner is promoted to voter only while it lags the leader's last index by at most
   * this many entries (RAFT_ERR_LEARNER_BEHIND otherwise): a voter that cannot keep up
   * would slow or block commitment. Default 1,000.
   */
  learnerLagEntriesMax?: number;
  /**
   * How a leader confirms a read: "read-index" (default: a heartbeat round per batch of
   * reads, thesis 6.4) or "lease" (no round while a quorum acknowledged a heartbeat within
   * the election timeout less `leaseClockDriftTicks`; needs checkQuorum; assumes bounded
   * clock drift: see lease.ts for the risk).
   */
  readMode?: ReadMode;
  /** Lease reads only: how many ticks clocks may drift apart within an election timeout. Default 2. */
  leaseClockDriftTicks?: number;
  /**
   * What the host found damaged in this node's storage at start (protocol-aware recovery,
   * recovery.ts): the core starts recovering and repairs it from its peers.
   */
  damage?: StorageDamage;
}

/** One member's replication state as the leader tracks it (etcd's tracker.Progress). */
export interface PeerProgress {
  id: number;
  /** A voter of the configuration in force (else a learner, or the leader removing itself). */
  voter: boolean;
  /** Highest index known replicated on it (for the leader itself: persisted). */
  match: number;
  /** Next index to send to it. */
  next: number;
  state: "probe" | "replicate" | "snapshot";
  /** Heard from within the current election timeout. */
  recentActive: boolean;
}

/** The result of a proposal: where the entry will live if it commits. */
export interface ProposalPosition {
  /** Index of the (first) proposed entry. */
  index: number;
  /** The leader's term; the proposal succeeded iff the entry applied at `index` has this term. */
  term: number;
}

/** The core as its host drives it: events in (the methods up to `snapshotTaken`), Readies out; see the host loop above. */
export interface RaftCore {
  tick(): void;
  step(message: Message): void;
  /**
   * Appends one entry as leader; throws RaftwalError RAFT_ERR_NOT_LEADER otherwise (its
   * `leaderId` property names the known leader, 0 if none), RAFT_ERR_PROPOSAL_DROPPED
   * during a leadership transfer or past uncommittedBytesMax, and
   * RAFTWAL_ERR_INVALID_ARGUMENT for empty data (empty entries are leader no-ops).
   */
  propose(data: Uint8Array): ProposalPosition;
  /** Appends several entries in one go; they get consecutive indexes starting at the result's. */
  proposeBatch(data: Uint8Array[]): ProposalPosition;
  /**
   * Appends the configuration a membership change leads to (thesis chapter 4): C_new at
   * once for a change of at most one voter, else the joint C_old,new, which the leader
   * leaves by itself once committed. In force from the append. Throws RAFT_ERR_NOT_LEADER,
   * RAFT_ERR_CONFIG_CHANGE_IN_PROGRESS (another change not complete), RAFT_ERR_LEADER_NOT_READY
   * (this leader has not yet committed an entry of its term), RAFT_ERR_LEARNER_BEHIND,
   * RAFT_ERR_UNKNOWN_MEMBER, RAFT_ERR_LAST_VOTER, RAFT_ERR_INVALID_CONFIG_CHANGE.
   */
  proposeConfigChange(change: ConfigChange): ProposalPosition;
  /** The configuration in force and the index of the entry (or snapshot) it comes from. */
  clusterConfig(): { index: number; config: ClusterConfig };
  /** What is still being repaired (recovery.ts), or undefined when this node's state is whole. */
  recovering(): { lostFromIndex: number; targetIndex: number; hardStateLost: boolean } | undefined;
  /** The configuration in force at `index` (at or above the snapshot's index): for a snapshot's metadata. */
  clusterConfigAt(index: number): ClusterConfig;
  /**
   * Starts a linearizable read (thesis section 6.4); its ReadState appears in a later
   * Ready. On a follower the request is forwarded to the leader it knows. A read can be
   * lost (message loss, leader change, a deposed leader never answers): the host
   * retries after its own timeout. Throws RAFT_ERR_NOT_LEADER when no leader is known.
   */
  readIndex(requestId: Uint8Array): void;
  transferLeadership(to: number): void;
  reportUnreachable(peer: number): void;
  reportSnapshot(peer: number, ok: boolean): void;
  /**
   * The application has durably stored a snapshot covering entries up to `meta.index`
   * (at or below the applied index) and the storage now serves it; the log before it
   * may be compacted. Followers too far behind receive it via InstallSnapshot.
   */
  snapshotTaken(meta: SnapshotMeta): void;
  hasReady(): boolean;
  ready(): Ready;
  /**
   * Returns and removes the messages that are already safe to send, at any time, even
   * while a Ready is outstanding (between `ready()` and `advance()`). A host that
   * persists asynchronously uses it so that heartbeats, appends and vote requests do
   * not wait for a slow disk. Messages that depend on durability stay withheld until
   * `advance()`; `ready().messages` holds whatever has not been taken.
   */
  takeMessages(): Message[];
  /** The leader's view of every member's replication, its own included (empty when not leader). */
  progress(): PeerProgress[];
  /**
   * As leader: a follower is being caught up by snapshot (it needs entries already compacted,
   * a transfer to it is under way, or it installed one and has not yet acknowledged the
   * entries the leader had then) and it answered, or a transfer to it started, within the
   * last two election timeouts. The host holds its own next snapshot back meanwhile
   * (src/node/snapshot-policy.ts): it would restart the transfer and compact the entries the
   * follower needs after it.
   */
  sendingSnapshot(): boolean;
  /** Highest index known committed. */
  commitIndex(): number;
  /** Highest index the host confirmed applied (through advance()). */
  appliedIndex(): number;
  advance(ready: Ready): void;
  softState(): SoftState;
  hardState(): HardState;
}
