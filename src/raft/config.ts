/**
 * Defaults and validation of `RaftConfig`. Every limit is a named constant with its
 * unit; relations between limits are checked here once, at construction.
 */
import { RaftwalError, RaftwalErrorCode } from "./errors.js";
import type { RaftConfig, RaftLogStorage } from "./types.js";

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
/** Pending ReadIndex requests a leader (or a new leader waiting for its first commit) holds. */
export const PENDING_READS_MAX = 65_536;

export interface NormalizedConfig {
  id: number;
  voters: number[];
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
  appliedIndex: number | undefined;
}

/** A bad configuration is the caller's error: RAFTWAL_ERR_INVALID_ARGUMENT, not an invariant. */
function check(condition: boolean, message: string): void {
  if (!condition) throw new RaftwalError(RaftwalErrorCode.INVALID_ARGUMENT, `raft config: ${message}`);
}

function positiveInteger(value: number, name: string): number {
  check(Number.isSafeInteger(value) && value > 0, `${name} must be a positive integer, got ${value}`);
  return value;
}

export function normalizeConfig(config: RaftConfig): NormalizedConfig {
  const normalized: NormalizedConfig = {
    id: positiveInteger(config.id, "id"),
    voters: [...config.voters],
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
    appliedIndex: config.appliedIndex,
  };
  check(normalized.heartbeatIntervalTicks < normalized.electionTimeoutTicks, "heartbeatIntervalTicks must be < electionTimeoutTicks");
  check(normalized.voters.length > 0, "voters must not be empty");
  check(normalized.voters.includes(normalized.id), `voters must include this node (${normalized.id})`);
  check(new Set(normalized.voters).size === normalized.voters.length, "voters must be distinct");
  for (const voter of normalized.voters) positiveInteger(voter, "voter id");
  check(typeof normalized.random === "function", "random must be a function");
  return normalized;
}
