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
} as const;

export function timeoutError(what: string, ms: number): RaftwalError {
  return new RaftwalError(NodeErrorCode.TIMEOUT, `${what} did not complete within ${ms} ms (it may still take effect)`);
}

export function closedError(reason?: Error): RaftwalError {
  return new RaftwalError(NodeErrorCode.CLOSED, reason ? `node stopped: ${reason.message}` : "node closed", { cause: reason });
}
