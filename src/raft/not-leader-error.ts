/** RAFT_ERR_NOT_LEADER with the id of the leader this node knows of (0 when none). */
import { ErrorCode, RaftwalError } from "../errors.js";

export class NotLeaderError extends RaftwalError {
  readonly leader: number;

  constructor(nodeId: number, leader: number, what: string) {
    super(ErrorCode.NOT_LEADER, `${what} on node ${nodeId}, which is not the leader (leader: ${leader === 0 ? "unknown" : leader})`);
    this.leader = leader;
  }
}
