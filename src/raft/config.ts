/**
 * Defaults and validation of `RaftConfig`. Every limit is a named constant with its
 * unit; relations between limits are checked here once, at construction.
 */
import assert from "node:assert";
import type { RaftConfig, RaftLogStorage } from "./types.js";

/** Ticks before a follower without news from a leader campaigns (section 5.2). */
export const ELECTION_TIMEOUT_TICKS_DEFAULT = 10;
export const HEARTBEAT_INTERVAL_TICKS_DEFAULT = 1;
/** One append message carries at most this many entry bytes (at least one entry). */
export const MAX_MESSAGE_BYTES_DEFAULT = 1 << 20;
/** Pipelined append messages to one follower before waiting for acknowledgements. */
export const MAX_INFLIGHT_MESSAGES_DEFAULT = 256;
export const MAX_INFLIGHT_BYTES_DEFAULT = 16 << 20;
export const SNAPSHOT_CHUNK_BYTES_DEFAULT = 1 << 20;
/**
 * Snapshot chunks sent to one follower ahead of its acknowledgements: enough to keep
 * a transfer moving while the follower makes earlier chunks durable, few enough that a
 * lost chunk wastes little (the window is resent from the follower's offset).
 */
export const SNAPSHOT_CHUNKS_IN_FLIGHT_MAX = 4;
/** A leader refuses proposals while this many entry bytes are proposed but not yet handed out committed. */
export const MAX_UNCOMMITTED_BYTES_DEFAULT = 256 << 20;
/** Most committed-entry bytes handed out in one Ready (at least one entry). */
export const MAX_COMMITTED_BYTES_PER_READY_DEFAULT = 64 << 20;
/** Pending ReadIndex requests a leader (or a new leader waiting for its first commit) holds. */
export const MAX_PENDING_READS = 65_536;

export interface NormalizedConfig {
  id: number;
  voters: number[];
  storage: RaftLogStorage;
  random: () => number;
  electionTimeoutTicks: number;
  heartbeatIntervalTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxMessageBytes: number;
  maxInflightMessages: number;
  maxInflightBytes: number;
  snapshotChunkBytes: number;
  maxUncommittedBytes: number;
  maxCommittedBytesPerReady: number;
  appliedIndex: number | undefined;
}

function positiveInteger(value: number, name: string): number {
  assert(Number.isSafeInteger(value) && value > 0, `${name} must be a positive integer, got ${value}`);
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
    maxMessageBytes: positiveInteger(config.maxMessageBytes ?? MAX_MESSAGE_BYTES_DEFAULT, "maxMessageBytes"),
    maxInflightMessages: positiveInteger(config.maxInflightMessages ?? MAX_INFLIGHT_MESSAGES_DEFAULT, "maxInflightMessages"),
    maxInflightBytes: positiveInteger(config.maxInflightBytes ?? MAX_INFLIGHT_BYTES_DEFAULT, "maxInflightBytes"),
    snapshotChunkBytes: positiveInteger(config.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES_DEFAULT, "snapshotChunkBytes"),
    maxUncommittedBytes: positiveInteger(config.maxUncommittedBytes ?? MAX_UNCOMMITTED_BYTES_DEFAULT, "maxUncommittedBytes"),
    maxCommittedBytesPerReady: positiveInteger(
      config.maxCommittedBytesPerReady ?? MAX_COMMITTED_BYTES_PER_READY_DEFAULT,
      "maxCommittedBytesPerReady",
    ),
    appliedIndex: config.appliedIndex,
  };
  assert(normalized.heartbeatIntervalTicks < normalized.electionTimeoutTicks, "heartbeatIntervalTicks must be < electionTimeoutTicks");
  assert(normalized.voters.length > 0, "voters must not be empty");
  assert(normalized.voters.includes(normalized.id), `voters must include this node (${normalized.id})`);
  assert(new Set(normalized.voters).size === normalized.voters.length, "voters must be distinct");
  for (const voter of normalized.voters) positiveInteger(voter, "voter id");
  assert(typeof normalized.random === "function", "random must be a function");
  return normalized;
}
