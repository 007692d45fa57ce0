/**
 * Test-only access to what the core keeps in memory and the RaftCore interface does not
 * show: RawNode holds its Raft instance in a private field. The membership checkers read
 * the log not yet durable (the unstable entries and snapshot) and the term of a leader's
 * entry at its commit index; the membership mutation test appends an entry by hand.
 * Nothing here changes the core's behaviour except `appendAsLeader`, which only a
 * mutation test calls.
 */
import type { ClusterConfig, Entry } from "../../src/proto/schema.js";
import type { IndexedClusterConfig } from "../../src/raft/config-log.js";
import type { Raft } from "../../src/raft/raft.js";
import type { Unstable } from "../../src/raft/log-unstable.js";
import type { RaftCore } from "../../src/raft/types.js";

function raftOf(core: RaftCore): Raft {
  const raft = (core as unknown as { raft?: Raft }).raft;
  if (raft === undefined) throw new Error("core-internals: the core is not a RawNode holding a Raft instance");
  return raft;
}

/** The part of the core's log that is not durable yet. */
export function unstableOf(core: RaftCore): Unstable {
  return raftOf(core).log.unstable;
}

/** The term of the entry at `index` in the core's log (durable or not); -1 when compacted or beyond it. */
export function logTermOf(core: RaftCore, index: number): number {
  return raftOf(core).log.termOrMinusOne(index);
}

/**
 * The core's own configuration in force, not copied (clusterConfig() copies it): the
 * checkers run after every tick and compare by identity first. Do not modify.
 */
export function configInForceOf(core: RaftCore): IndexedClusterConfig {
  return raftOf(core).log.configs.current();
}

/** The configuration in force at the core's commit index, not copied (the transport's view of who was removed). Do not modify. */
export function committedConfigOf(core: RaftCore): ClusterConfig {
  const raft = raftOf(core);
  return raft.log.configs.at(raft.log.committed);
}

/** The core's last log index (durable or not). */
export function lastIndexOf(core: RaftCore): number {
  return raftOf(core).log.lastIndex();
}

/**
 * Appends `entry` (of the leader's term, at the next index) to a leader's log as if the
 * core had decided it, bypassing every rule of proposeConfigChange: for mutation tests only.
 */
export function appendAsLeader(core: RaftCore, entry: Omit<Entry, "index" | "term">): { index: number; term: number } {
  const raft = raftOf(core);
  if (raft.role !== "leader") throw new Error(`appendAsLeader: node ${raft.id} is not leader`);
  const index = raft.log.lastIndex() + 1;
  raft.appendEntries([{ ...entry, index, term: raft.term }]);
  return { index, term: raft.term };
}
