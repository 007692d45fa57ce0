/** Errors a RaftNode's callers handle. Match on `code`. NotLeaderError is the core's (src/raft). */
export { NotLeaderError } from "../raft/not-leader-error.js";
import { RaftwalError } from "../errors.js";

export const NodeErrorCode = {
  /** The proposal or read did not complete within its timeout; it may still take effect. */
  TIMEOUT: "NODE_ERR_TIMEOUT",
  /** The node was closed (or stopped after a fatal storage error) before the request completed. */
  CLOSED: "NODE_ERR_CLOSED",
  /** The entry at the proposal's index was written by another leader: the proposal was lost. */
  PROPOSAL_LOST: "NODE_ERR_PROPOSAL_LOST",
  /** The data directory holds no state but the node was started as an existing member (it must not rejoin under its old id). */
  EMPTY_DATA_DIR: "NODE_ERR_EMPTY_DATA_DIR",
  /** A node asked to bootstrap a new cluster is not among the founding members. */
  BAD_BOOTSTRAP: "NODE_ERR_BAD_BOOTSTRAP",
  /** This node was removed from the cluster's configuration: it stopped taking part. */
  REMOVED: "NODE_ERR_REMOVED",
} as const;

export function timeoutError(what: string, ms: number): RaftwalError {
  return new RaftwalError(NodeErrorCode.TIMEOUT, `${what} did not complete within ${ms} ms (it may still take effect)`);
}

export function closedError(reason?: Error): RaftwalError {
  return new RaftwalError(NodeErrorCode.CLOSED, reason ? `node stopped: ${reason.message}` : "node closed", { cause: reason });
}
