/**
 * The core's error codes (prefix RAFT_ERR_), and the base class it throws them with.
 *
 * The core never throws a storage code and never matches on one: a `RaftLogStorage`
 * read outside the range the core asks for is the storage's business, and whatever the
 * storage throws passes through the core to the host unchanged (see RaftLogStorage in
 * types.ts). RaftwalError itself lives in the lowest layer (storage/errors.ts); this
 * module is the core's one way to it, so the core's files import errors from here only.
 */
import { codesOf, type ErrorCodeTable } from "../../storage/errors.js";

export { RaftwalError, RaftwalErrorCode } from "../../storage/errors.js";

export const RAFT_ERRORS = {
  NOT_LEADER: {
    code: "RAFT_ERR_NOT_LEADER",
    meaning: "A proposal, read or leadership transfer reached a node that is not the leader. A `NotLeaderError`: `leaderId` names the known leader (0: none).",
  },
  PROPOSAL_DROPPED: {
    code: "RAFT_ERR_PROPOSAL_DROPPED",
    meaning:
      "A proposal was refused (a leadership transfer in progress, too many uncommitted bytes, too many pending reads) or its fate became unknown (a snapshot replaced the log).",
  },
  LOG_COMPACTED: {
    code: "RAFT_ERR_LOG_COMPACTED",
    meaning: "The core's log (or `MemoryStorage`) was asked for an index below its first index: compacted into a snapshot.",
  },
  LOG_UNAVAILABLE: {
    code: "RAFT_ERR_LOG_UNAVAILABLE",
    meaning: "The core's log (or `MemoryStorage`) was asked for an index beyond its last index, or the storage served a snapshot shorter than its metadata says.",
  },
  CONFIG_CHANGE_IN_PROGRESS: {
    code: "RAFT_ERR_CONFIG_CHANGE_IN_PROGRESS",
    meaning: "A membership change is pending: not yet committed, or a joint configuration not yet left.",
  },
  LEADER_NOT_READY: {
    code: "RAFT_ERR_LEADER_NOT_READY",
    meaning:
      "A new leader has not yet committed an entry of its term, so it may not start a membership change yet (thesis 4.1 erratum); it will within a round trip. The node runtime waits for it.",
  },
  LEARNER_BEHIND: {
    code: "RAFT_ERR_LEARNER_BEHIND",
    meaning: "A learner to promote lags the leader's log by more than `learnerLagEntriesMax` entries.",
  },
  UNKNOWN_MEMBER: {
    code: "RAFT_ERR_UNKNOWN_MEMBER",
    meaning: "A membership change names a node that is not a member (or, to promote, not a learner).",
  },
  LAST_VOTER: { code: "RAFT_ERR_LAST_VOTER", meaning: "A membership change would leave the cluster without a voter." },
  INVALID_CONFIG_CHANGE: {
    code: "RAFT_ERR_INVALID_CONFIG_CHANGE",
    meaning: "A membership change that makes no sense: empty, an id already in use or removed before, no peer address.",
  },
  UNREPAIRABLE: {
    code: "RAFT_ERR_UNREPAIRABLE",
    meaning:
      "This node lost durable state and a quorum of voters is recovering with no leader: the cluster may no longer hold every committed entry on a majority, and raftwal never invents data. The node stops; see the README's storage-damage section.",
  },
  INVARIANT: {
    code: "RAFT_ERR_INVARIANT",
    meaning: "A broken invariant of the core: a bug, or a host breaking the contract of `src/raft/types.ts`. A `RaftInvariantError`, not meant to be caught.",
  },
} as const satisfies ErrorCodeTable;
export const RaftErrorCode = codesOf(RAFT_ERRORS);
export type RaftErrorCode = (typeof RaftErrorCode)[keyof typeof RaftErrorCode];
