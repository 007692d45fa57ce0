/**
 * RAFT_ERR_NOT_LEADER: a proposal, read or leadership transfer reached a node that is not
 * the leader. One class for the core and the node runtime: the core knows the leader's
 * id; the node adds the leader's peer address when it knows it.
 */
import { RaftErrorCode, RaftwalError } from "./errors.js";

export interface LeaderAddress {
  host: string;
  port: number;
}

export class NotLeaderError extends RaftwalError {
  /** The leader this node knows of; 0 when none is known. */
  readonly leaderId: number;
  /** The leader's peer address, when the node runtime knows it (never set by the core). */
  readonly leaderAddress: LeaderAddress | undefined;

  constructor(nodeId: number, leaderId: number, what: string, leaderAddress?: LeaderAddress) {
    super(RaftErrorCode.NOT_LEADER, `${what} on node ${nodeId}, which is not the leader (leader: ${leaderId === 0 ? "unknown" : leaderId})`);
    this.leaderId = leaderId;
    this.leaderAddress = leaderAddress;
  }
}
