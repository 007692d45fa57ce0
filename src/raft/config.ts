/**
 * Defaults and validation of `RaftConfig`. Every limit is a named constant with its
 * unit; relations between limits are checked here once, at construction.
 */
import type { ClusterConfig } from "../proto/schema.js";
import { RaftwalError, RaftwalErrorCode } from "./errors.js";
import type { RaftConfig, RaftLogStorage, ReadMode, StorageDamage } from "./types.js";

/** Ticks before a follower without news from a leader campaigns (section 5.2). */
export const ELECTION_TIMEOUT_TICKS_DEFAULT = 10;
export const HEARTBEAT_INTERVAL_TICKS_DEFAULT = 1;
/** One append message carries at most this many entry bytes (at least one entry). */
export const MESSAGE_BYTES_MAX_DEFAULT = 1 << 20;
/** Pipelined append messages to one follower before waiting for acknowledgements. */
export const INFLIGHT_MESSAGES_MAX_DEFAULT = 256;
export const INFLIGHT_BYTES_MAX_DEFAULT = 16 << 20;
export const SNAPSHOT_CHUNK_BYTES_DEFAULT = 1 << 20;
/**
 * Snapshot chunks sent to one follower ahead of its acknowledgements: enough to keep
 * a transfer moving while the follower makes earlier chunks durable, few enough that a
 * lost chunk wastes little (the window is resent from the follower's offset).
 */
export const SNAPSHOT_CHUNKS_IN_FLIGHT_MAX = 4;
/** A leader refuses proposals while this many entry bytes are proposed but not yet handed out committed. */
export const UNCOMMITTED_BYTES_MAX_DEFAULT = 256 << 20;
/** Most committed-entry bytes handed out in one Ready (at least one entry). */
export const COMMITTED_BYTES_PER_READY_MAX_DEFAULT = 64 << 20;
/** A learner lagging more than this many entries behind the leader's log is not promoted. */
export const LEARNER_LAG_ENTRIES_MAX_DEFAULT = 1_000;
/** Lease reads: ticks clocks may drift apart within an election timeout (a 20% margin at the default 10 ticks). */
export const LEASE_CLOCK_DRIFT_TICKS_DEFAULT = 2;
/** Pending ReadIndex requests a leader (or a new leader waiting for its first commit) holds. */
export const PENDING_READS_MAX = 65_536;

export interface NormalizedConfig {
  id: number;
  /** The configuration in force until the log or a snapshot holds one. */
  initialConfig: ClusterConfig;
  storage: RaftLogStorage;
  random: () => number;
  electionTimeoutTicks: number;
  heartbeatIntervalTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  messageBytesMax: number;
  inflightMessagesMax: number;
  inflightBytesMax: number;
  snapshotChunkBytes: number;
  uncommittedBytesMax: number;
  committedBytesPerReadyMax: number;
  learnerLagEntriesMax: number;
  damage: StorageDamage | undefined;
  readMode: ReadMode;
  leaseClockDriftTicks: number;
  appliedIndex: number | undefined;
}

/** A bad configuration is the caller's error: RAFTWAL_ERR_INVALID_ARGUMENT, not an invariant. */
function check(condition: boolean, message: string): void {
  if (!condition) throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `raft config: ${message}`);
}

function nonNegativeInteger(value: number, name: string): number {
  check(Number.isSafeInteger(value) && value >= 0, `${name} must be a non-negative integer, got ${value}`);
  return value;
}

function positiveInteger(value: number, name: string): number {
  check(Number.isSafeInteger(value) && value > 0, `${name} must be a positive integer, got ${value}`);
  return value;
}

export function normalizeConfig(config: RaftConfig): NormalizedConfig {
  const normalized: NormalizedConfig = {
    id: positiveInteger(config.id, "id"),
    initialConfig: initialClusterConfig(config.voters ?? [], config.learners ?? []),
    storage: config.storage,
    random: config.random,
    electionTimeoutTicks: positiveInteger(config.electionTimeoutTicks ?? ELECTION_TIMEOUT_TICKS_DEFAULT, "electionTimeoutTicks"),
    heartbeatIntervalTicks: positiveInteger(config.heartbeatIntervalTicks ?? HEARTBEAT_INTERVAL_TICKS_DEFAULT, "heartbeatIntervalTicks"),
    preVote: config.preVote ?? true,
    checkQuorum: config.checkQuorum ?? true,
    messageBytesMax: positiveInteger(config.messageBytesMax ?? MESSAGE_BYTES_MAX_DEFAULT, "messageBytesMax"),
    inflightMessagesMax: positiveInteger(config.inflightMessagesMax ?? INFLIGHT_MESSAGES_MAX_DEFAULT, "inflightMessagesMax"),
    inflightBytesMax: positiveInteger(config.inflightBytesMax ?? INFLIGHT_BYTES_MAX_DEFAULT, "inflightBytesMax"),
    snapshotChunkBytes: positiveInteger(config.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES_DEFAULT, "snapshotChunkBytes"),
    uncommittedBytesMax: positiveInteger(config.uncommittedBytesMax ?? UNCOMMITTED_BYTES_MAX_DEFAULT, "uncommittedBytesMax"),
    committedBytesPerReadyMax: positiveInteger(
      config.committedBytesPerReadyMax ?? COMMITTED_BYTES_PER_READY_MAX_DEFAULT,
      "committedBytesPerReadyMax",
    ),
    learnerLagEntriesMax: nonNegativeInteger(config.learnerLagEntriesMax ?? LEARNER_LAG_ENTRIES_MAX_DEFAULT, "learnerLagEntriesMax"),
    damage: config.damage,
    readMode: config.readMode ?? "read-index",
    leaseClockDriftTicks: nonNegativeInteger(config.leaseClockDriftTicks ?? LEASE_CLOCK_DRIFT_TICKS_DEFAULT, "leaseClockDriftTicks"),
    appliedIndex: config.appliedIndex,
  };
  check(normalized.heartbeatIntervalTicks < normalized.electionTimeoutTicks, "heartbeatIntervalTicks must be < electionTimeoutTicks");
  check(normalized.readMode === "read-index" || normalized.readMode === "lease", `readMode must be "read-index" or "lease", got ${String(normalized.readMode)}`);
  if (normalized.readMode === "lease") {
    // The lease rests on voters refusing votes while they hear from a leader (CheckQuorum's lease, thesis 4.2.3).
    check(normalized.checkQuorum, "readMode \"lease\" needs checkQuorum");
    check(
      normalized.electionTimeoutTicks - normalized.leaseClockDriftTicks > normalized.heartbeatIntervalTicks,
      "leaseClockDriftTicks must leave a lease longer than the heartbeat interval",
    );
  }
  const { voters, learners } = normalized.initialConfig;
  for (const id of [...voters, ...learners]) positiveInteger(id, "member id");
  check(new Set([...voters, ...learners]).size === voters.length + learners.length, "voters and learners must be distinct");
  check(typeof normalized.random === "function", "random must be a function");
  return normalized;
}

/** A configuration of ids only (no addresses): the core needs none, the host adds them. */
function initialClusterConfig(voters: readonly number[], learners: readonly number[]): ClusterConfig {
  return { voters: [...voters].sort((a, b) => a - b), votersOutgoing: [], learners: [...learners].sort((a, b) => a - b), members: [], removed: [] };
}
