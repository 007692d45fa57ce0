/** The node runtime's public API: create a node, embed a state machine, change its membership. */
export { createNode, RaftNode } from "./raft-node.js";
export {
  TICK_MS_DEFAULT,
  ELECTION_TIMEOUT_TICKS_DEFAULT,
  HEARTBEAT_INTERVAL_TICKS_DEFAULT,
  SNAPSHOT_EVERY_ENTRIES_DEFAULT,
  SNAPSHOT_EVERY_WAL_BYTES_DEFAULT,
  PROPOSAL_TIMEOUT_MS_DEFAULT,
  READ_TIMEOUT_MS_DEFAULT,
  MEMBERSHIP_TIMEOUT_MS_DEFAULT,
  type RaftNodeOptions,
  type NodeStatus,
  type PeerConfig,
  type PeerAddress,
  type InitialClusterState,
  type NodeMembership,
} from "./options.js";
export type { MembershipView, MemberView } from "./membership.js";
export type { StateMachine } from "./state-machine.js";
export type { PeerProgress } from "../raft/types.js";
export { NotLeaderError, NodeErrorCode } from "./errors.js";
export { createLogger, silentLogger, type Logger, type LogLevel } from "./logger.js";
export { NodeMetrics } from "./metrics.js";
export { LATENCY_STAGES, FOLLOWER_LATENCY_STAGES, LatencyTrace, type LatencySample, type LatencyStage, type FollowerLatencyStage, type LatencySummary, type LatencyStageSummary } from "./latency-trace.js";
