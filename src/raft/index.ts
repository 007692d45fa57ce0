/**
 * The Raft core's public entry point: `createRaft`, the contract types (types.ts,
 * whose header is the host loop and the persistence contract), NotLeaderError, and the
 * in-memory storage used by tests, simulations and benchmarks.
 */
import { normalizeConfig } from "./config.js";
import { Raft } from "./raft.js";
import { RawNode } from "./raw-node.js";
import type { RaftConfig, RaftCore } from "./types.js";

export type * from "./types.js";
export { MemoryStorage } from "./memory-storage.js";
export { NotLeaderError } from "./not-leader-error.js";

/** Creates a Raft core from the durable state in `config.storage` (a follower, with no leader known). */
export function createRaft(config: RaftConfig): RaftCore {
  return new RawNode(new Raft(normalizeConfig(config)));
}
