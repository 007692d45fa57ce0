/**
 * The node runtime's error codes (prefix NODE_ERR_) and the errors a RaftNode's callers
 * handle. Match on `code`. NotLeaderError (RAFT_ERR_NOT_LEADER) is the core's (src/raft),
 * re-exported here because the node adds the leader's address to it.
 */
import { codesOf, RaftwalError, type ErrorCodeTable } from "../../storage/errors.js";

export { NotLeaderError } from "../raft/not-leader-error.js";

export const NODE_ERRORS = {
  TIMEOUT: {
    code: "NODE_ERR_TIMEOUT",
    meaning: "A proposal or read did not complete within its timeout; a proposal may still commit (make commands idempotent, or de-duplicate them).",
  },
  CLOSED: { code: "NODE_ERR_CLOSED", meaning: "The node was closed, or stopped after a fatal storage error, before the request completed." },
  PROPOSAL_LOST: {
    code: "NODE_ERR_PROPOSAL_LOST",
    meaning: "The entry at the proposal's index was written by another leader: the proposal was lost.",
  },
  EMPTY_DATA_DIR: {
    code: "NODE_ERR_EMPTY_DATA_DIR",
    meaning: "The data directory holds no state but the node was started as an existing member (it must not rejoin under its old id).",
  },
  BAD_BOOTSTRAP: { code: "NODE_ERR_BAD_BOOTSTRAP", meaning: "A node asked to bootstrap a new cluster is not among the founding members." },
  WRONG_DATA_DIR: {
    code: "NODE_ERR_WRONG_DATA_DIR",
    meaning: "The data directory belongs to another node: its MEMBER file names another id (a node must never run on another node's log and votes).",
  },
  REMOVED: { code: "NODE_ERR_REMOVED", meaning: "This node was removed from the cluster's configuration: it stopped taking part." },
  TRANSFER_FAILED: {
    code: "NODE_ERR_TRANSFER_FAILED",
    meaning: "A leadership transfer did not complete in time (the target was behind or unreachable); the message names the leader in place. Ask again.",
  },
} as const satisfies ErrorCodeTable;
export const NodeErrorCode = codesOf(NODE_ERRORS);
export type NodeErrorCode = (typeof NodeErrorCode)[keyof typeof NodeErrorCode];

export function timeoutError(what: string, ms: number): RaftwalError {
  return new RaftwalError(NodeErrorCode.TIMEOUT, `${what} did not complete within ${ms} ms (it may still take effect)`);
}

export function closedError(reason?: Error): RaftwalError {
  return new RaftwalError(NodeErrorCode.CLOSED, reason ? `node stopped: ${reason.message}` : "node closed", { cause: reason });
}

export function proposalLostError(index: number, proposedTerm: number, appliedTerm: number): RaftwalError {
  return new RaftwalError(NodeErrorCode.PROPOSAL_LOST, `the proposal at index ${index} (term ${proposedTerm}) was replaced by an entry of term ${appliedTerm}`);
}
