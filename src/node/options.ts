/**
 * What `createNode` takes, its defaults, and what `status()` reports. The defaults suit a
 * LAN or loopback: 100 ms ticks and the core's tick defaults (elections after 10-20
 * ticks, 1-2 s, of silence; a heartbeat every tick).
 */
import { ELECTION_TIMEOUT_TICKS_DEFAULT, HEARTBEAT_INTERVAL_TICKS_DEFAULT } from "../raft/config.js";
import type { PeerProgress, RaftConfig, ReadMode, SoftState } from "../raft/types.js";
import type { RaftStorageOptions } from "../../storage/raft-storage.js";
import type { TcpTransportOptions } from "../transport/transport.js";
import type { NodeTransport } from "../transport/node-transport.js";
import type { PeerAddress, TransportTlsOptions } from "../transport/tls.js";
import type { Logger } from "./logger.js";
import type { InitialClusterState, NodeMembership, PeerConfig } from "./membership.js";
import type { StateMachine } from "./state-machine.js";

export type { InitialClusterState, NodeMembership, PeerAddress, PeerConfig };

export const TICK_MS_DEFAULT = 100;
export { ELECTION_TIMEOUT_TICKS_DEFAULT, HEARTBEAT_INTERVAL_TICKS_DEFAULT };

/**
 * The election timeout a node runs with, in ticks: the option or the default. One place, so
 * that the core, the start's tick advance, the removal countdown, the redial bound and the
 * leadership-transfer deadline all count the same timeout.
 */
export function electionTimeoutTicksOf(options: { electionTimeoutTicks?: number }): number {
  return options.electionTimeoutTicks ?? ELECTION_TIMEOUT_TICKS_DEFAULT;
}
/** Take a snapshot (and compact the WAL) every this many applied entries. */
export const SNAPSHOT_EVERY_ENTRIES_DEFAULT = 100_000;
/** ... or once about this many bytes of entries went into the WAL since the last snapshot. */
export const SNAPSHOT_EVERY_WAL_BYTES_DEFAULT = 256 * 1024 * 1024;
/** Entries kept in the log behind each snapshot (at most half of snapshotEveryEntries by default): etcd's SnapshotCatchUpEntries. */
export const SNAPSHOT_CATCH_UP_ENTRIES_DEFAULT = 5_000;
/** ... and at most about this many bytes of them. */
export const SNAPSHOT_CATCH_UP_BYTES_DEFAULT = 64 * 1024 * 1024;

/**
 * The default catch-up tail for a snapshot interval: etcd's 5,000 entries, but at most half
 * the interval, so that a node that snapshots often (tests, `--snapshot-every 50`) still
 * catches far-behind followers up by snapshot and keeps a short log.
 */
export function snapshotCatchUpEntriesDefault(snapshotEveryEntries: number): number {
  return Math.min(SNAPSHOT_CATCH_UP_ENTRIES_DEFAULT, Math.floor(snapshotEveryEntries / 2));
}
export const PROPOSAL_TIMEOUT_MS_DEFAULT = 5_000;
export const READ_TIMEOUT_MS_DEFAULT = 5_000;
/**
 * What a node does when it finds its storage damaged at start: "repair" (default) sets the
 * damage aside and repairs it from its peers (src/raft/REPAIR.md); "stop" refuses to start,
 * as every Raft library did before. Repair is the default because it never gives up safety
 * (a repairing node counts toward no quorum until whole again; the simulation and the
 * torture suite check it with damage on any node, the leader and a majority included),
 * while stopping leaves the cluster one node short until an operator replaces the node.
 */
export const ON_STORAGE_CORRUPTION_DEFAULT = "repair";
/** A membership change waits for its entry, and a joint one for the entry that leaves it. */
export const MEMBERSHIP_TIMEOUT_MS_DEFAULT = 10_000;

export interface RaftNodeOptions<Result> {
  /** This node's id (> 0). Ids are never reused: a replacement node gets a new one. */
  id: number;
  /** Peers must present the same cluster id: a node of another cluster cannot connect. */
  clusterId: string;
  /** This node's data directory (WAL, hard state, snapshots). */
  dataDir: string;
  stateMachine: StateMachine<Result>;
  /**
   * What an empty data directory means (ignored once it holds state: the log knows the
   * configuration). "new": found a new cluster whose members are `peers`; "join": a new
   * member, which waits for a leader to add it (as a learner); "existing" (default): this
   * node must already have state, and an empty directory is refused (src/node/membership.ts).
   */
  initialClusterState?: InitialClusterState;
  /** The founding members (this node included) with their peer addresses: read only to bootstrap ("new"). */
  peers?: PeerConfig[];
  /**
   * Where to listen for peers. Default: this node's address in the configuration (or in
   * `peers`; or, when storage damage took every configuration naming it, in the data
   * directory's MEMBER file: own-member.ts). Required to join. Port 0 picks a free port.
   */
  listen?: PeerAddress;
  tickMs?: number;
  electionTimeoutTicks?: number;
  heartbeatIntervalTicks?: number;
  /**
   * A node that starts without a leader counts electionTimeoutTicks - 2 ticks at once (1
   * left for a single voter), so that the first election of a fresh or restarted cluster
   * comes after 2..electionTimeoutTicks + 1 ticks instead of a whole randomized timeout
   * (etcd's --initial-election-tick-advance; election-tick-advance.ts). Default true.
   */
  initialElectionTickAdvance?: boolean;
  snapshotEveryEntries?: number;
  /** Also snapshot once about this many bytes of entries were written to the WAL since the last one. */
  snapshotEveryWalBytes?: number;
  /**
   * Entries kept in the log behind each snapshot (the catch-up tail), so that a leader can
   * still send a follower that is only a little behind the entries it lacks instead of its
   * whole snapshot: one that restarted or lost its connection just after a compaction.
   * Default: 5,000 (etcd's SnapshotCatchUpEntries) or half of `snapshotEveryEntries`,
   * whichever is smaller. 0: compact up to the snapshot.
   */
  snapshotCatchUpEntries?: number;
  /** ... and at most about this many bytes of entries (default 64 MiB), so that large values do not make the tail large on disk. */
  snapshotCatchUpBytes?: number;
  /** How long a proposal / a linearizable read may wait; checked on each tick, so up to one tick later (deadlines.ts). */
  proposalTimeoutMs?: number;
  readTimeoutMs?: number;
  membershipTimeoutMs?: number;
  logger?: Logger;
  /** Mutual TLS for peer links. */
  tls?: TransportTlsOptions;
  /** Storage engine options (file system seam, WAL segment size, group-commit bounds). */
  storage?: RaftStorageOptions;
  /** "repair" (default) or "stop": see ON_STORAGE_CORRUPTION_DEFAULT. */
  onStorageCorruption?: "repair" | "stop";
  /** Seed of the core's election-timeout randomness. Default: from the OS. */
  seed?: number;
  /** Flow-control and membership knobs passed to the core. */
  raft?: Pick<
    RaftConfig,
    "messageBytesMax" | "inflightMessagesMax" | "inflightBytesMax" | "snapshotChunkBytes" | "uncommittedBytesMax" | "preVote" | "checkQuorum" | "learnerLagEntriesMax" | "readMode" | "leaseClockDriftTicks"
  >;
  /**
   * Record where each traced write's time goes on this node (latency-trace.ts; served by the
   * KV API at `GET /debug/latency`). Default false: then it costs nothing.
   */
  latencyTrace?: boolean;
  /**
   * Builds the link to the peers from the options the node derived (id, cluster id,
   * listen address, peers, logger, tls). Default: `(options) => new TcpTransport(options)`.
   * A host wraps or replaces the transport here (a decorator that drops messages, say).
   */
  transport?: (options: TcpTransportOptions) => NodeTransport;
}

export interface NodeStatus {
  id: number;
  /** The cluster this node belongs to (RaftNodeOptions.clusterId): a client checks it reached the cluster it meant. */
  clusterId: string;
  role: SoftState["role"];
  term: number;
  /** 0 when no leader is known. */
  leader: number;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  /** The first entry still in the log: at or below snapshotIndex + 1 (the entries behind the snapshot are its catch-up tail). */
  firstIndex: number;
  snapshotIndex: number;
  /** Index of the configuration in force (its log entry, or the snapshot it came with). */
  configIndex: number;
  /** This node is a voter of the configuration in force (else a learner, joining, or removed). */
  voter: boolean;
  /** This node was removed from the cluster; it stops shortly after learning so. */
  removed: boolean;
  /** What this node is still repairing from its peers (storage damage found at start), if anything. */
  repairing?: { lostFromIndex: number; targetIndex: number; hardStateLost: boolean };
  /** This node's place in the configuration in force (membership.ts, `NodeMembership`). */
  membership: NodeMembership;
  /** How this node, as leader, confirms linearizable reads (RaftNodeOptions.raft.readMode). */
  readMode: ReadMode;
  /** Replication progress of every member (only on the leader). */
  progress: PeerProgress[];
}
