/**
 * The Raft core's public entry point: `createRaft` plus the contract types and the
 * in-memory storage used by tests, simulations and benchmarks.
 */
import assert from "node:assert";
import type { RaftConfig, RaftCore } from "./types.js";

export type * from "./types.js";
export { MemoryStorage } from "./memory-storage.js";

/** Creates a Raft core (work in progress: the state machine lands in raft.ts). */
export function createRaft(config: RaftConfig): RaftCore {
  assert(config.id > 0, "id must be > 0");
  throw new Error("createRaft: not implemented yet");
}
