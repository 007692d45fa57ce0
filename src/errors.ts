/**
 * Every error raftwal raises on purpose is a RaftwalError with a stable `code`.
 * Match on `code`, never on the message text: messages carry detail and may change.
 *
 * Programmer errors (a broken invariant, an impossible transition) are plain
 * `AssertionError`s from `assert` and are not meant to be caught.
 */
export class RaftwalError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Stable error codes. Storage codes start with WAL_, core codes with RAFT_. */
export const ErrorCode = {
  /** A record before the last complete batch fails its checksum or is malformed. */
  WAL_CORRUPT: "WAL_ERR_CORRUPT",
  /** An fsync (or a write) failed: the WAL instance refuses all further writes. */
  WAL_FAILED: "WAL_ERR_FAILED",
  /** The WAL was closed. */
  WAL_CLOSED: "WAL_ERR_CLOSED",
  /** A directory or file is not a raftwal WAL / segment / snapshot. */
  WAL_NOT_A_WAL: "WAL_ERR_NOT_A_WAL",
  /** An index below the first available entry (compacted into a snapshot). */
  WAL_COMPACTED: "WAL_ERR_COMPACTED",
  /** An index above the last entry. */
  WAL_UNAVAILABLE: "WAL_ERR_UNAVAILABLE",
  /** The hard-state file is damaged (never read as "term 0"). */
  HARD_STATE_CORRUPT: "WAL_ERR_HARD_STATE_CORRUPT",
  /** A snapshot file fails its checksum or is malformed. */
  SNAPSHOT_CORRUPT: "WAL_ERR_SNAPSHOT_CORRUPT",
  /** An argument outside its documented range (entry too large, bad index). */
  INVALID_ARGUMENT: "RAFTWAL_ERR_INVALID_ARGUMENT",

  /** A proposal or read reached a node that is not the leader. */
  NOT_LEADER: "RAFT_ERR_NOT_LEADER",
  /** A proposal was dropped (leadership transfer in progress, too many uncommitted bytes). */
  PROPOSAL_DROPPED: "RAFT_ERR_PROPOSAL_DROPPED",
  /** Log storage could not provide an entry the core needed (compacted or unavailable). */
  LOG_UNAVAILABLE: "RAFT_ERR_LOG_UNAVAILABLE",
  /** A membership change is pending (not yet committed, or a joint configuration not yet left), or the new leader has not yet committed an entry of its term. */
  CONFIG_CHANGE_IN_PROGRESS: "RAFT_ERR_CONFIG_CHANGE_IN_PROGRESS",
  /** A learner to promote lags the leader's log by more than learnerLagEntriesMax entries. */
  LEARNER_BEHIND: "RAFT_ERR_LEARNER_BEHIND",
  /** A membership change names a node that is not a member (or, to promote, not a learner). */
  UNKNOWN_MEMBER: "RAFT_ERR_UNKNOWN_MEMBER",
  /** A membership change would leave the cluster without a voter. */
  LAST_VOTER: "RAFT_ERR_LAST_VOTER",
  /** A membership change that makes no sense: empty, an id already in use or removed before, no peer address. */
  INVALID_CONFIG_CHANGE: "RAFT_ERR_INVALID_CONFIG_CHANGE",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
