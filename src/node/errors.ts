/** Errors a RaftNode's callers handle. Match on `code`. */
import { RaftwalError } from "../errors.js";
import { NotLeaderError as CoreNotLeaderError } from "../raft/not-leader-error.js";

export const NodeErrorCode = {
  /** The proposal or read did not complete within its timeout; it may still take effect. */
  TIMEOUT: "NODE_ERR_TIMEOUT",
  /** The node was closed (or stopped after a fatal storage error) before the request completed. */
  CLOSED: "NODE_ERR_CLOSED",
  /** The entry at the proposal's index was written by another leader: the proposal was lost. */
  PROPOSAL_LOST: "NODE_ERR_PROPOSAL_LOST",
} as const;

/**
 * This node is not the leader: the core's NotLeaderError (code RAFT_ERR_NOT_LEADER) plus
 * where to find the leader. `leaderId` is 0 when no leader is known.
 */
export class NotLeaderError extends CoreNotLeaderError {
  constructor(
    nodeId: number,
    leaderId: number,
    /** The leader's peer address when known. */
    readonly leaderAddress: { host: string; port: number } | undefined,
  ) {
    super(nodeId, leaderId, "request");
  }

  get leaderId(): number {
    return this.leader;
  }
}

export function timeoutError(what: string, ms: number): RaftwalError {
  return new RaftwalError(NodeErrorCode.TIMEOUT, `${what} did not complete within ${ms} ms (it may still take effect)`);
}

export function closedError(reason?: Error): RaftwalError {
  return new RaftwalError(NodeErrorCode.CLOSED, reason ? `node stopped: ${reason.message}` : "node closed", { cause: reason });
}
