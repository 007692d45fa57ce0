/**
 * Reading cluster configurations (Raft paper section 6, thesis chapter 4). A
 * configuration is a value: the whole membership, never a delta (see raftwal.proto).
 * This module answers questions about one; config-log.ts tracks which one is in force.
 */
import type { ClusterConfig, Member } from "../proto/schema.js";

export type { ClusterConfig, Member };

/** Joint consensus (C_old,new) is in progress: a majority of both halves is needed. */
export function isJoint(config: ClusterConfig): boolean {
  return config.votersOutgoing.length > 0;
}

/** Votes in elections and counts for commitment in at least one half. */
export function isVoter(config: ClusterConfig, id: number): boolean {
  return config.voters.includes(id) || config.votersOutgoing.includes(id);
}

export function isLearner(config: ClusterConfig, id: number): boolean {
  return config.learners.includes(id);
}

export function isMember(config: ClusterConfig, id: number): boolean {
  return isVoter(config, id) || isLearner(config, id);
}

/** Every id the leader replicates to: voters of both halves and learners, ascending, without repeats. */
export function memberIds(config: ClusterConfig): number[] {
  return sortedUnique([...config.voters, ...config.votersOutgoing, ...config.learners]);
}

/** Every voter of either half, ascending, without repeats. */
export function voterIds(config: ClusterConfig): number[] {
  return sortedUnique([...config.voters, ...config.votersOutgoing]);
}

export function sortedUnique(ids: readonly number[]): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

export function memberOf(config: ClusterConfig, id: number): Member | undefined {
  return config.members.find((member) => member.id === id);
}

/** A one-line description for logs and tools: "voters 1,2,3 learners 4" or "joint 1,2,4 / 1,2,3". */
export function describeClusterConfig(config: ClusterConfig): string {
  const voters = isJoint(config) ? `joint ${config.voters.join(",")} / ${config.votersOutgoing.join(",")}` : `voters ${config.voters.join(",") || "none"}`;
  return config.learners.length > 0 ? `${voters} learners ${config.learners.join(",")}` : voters;
}

/** Whether two configurations list the same sets and addresses. */
export function sameClusterConfig(a: ClusterConfig, b: ClusterConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** How many ids are in one set and not the other (the single-server rule allows at most one). */
export function symmetricDifference(a: readonly number[], b: readonly number[]): number {
  let count = 0;
  for (const id of a) if (!b.includes(id)) count += 1;
  for (const id of b) if (!a.includes(id)) count += 1;
  return count;
}

/** A configuration of voters (and learners) without addresses: for tests, tools and an initial configuration. */
export function clusterConfigOf(voters: readonly number[], learners: readonly number[] = []): ClusterConfig {
  return { voters: sortedUnique(voters), votersOutgoing: [], learners: sortedUnique(learners), members: [], removed: [] };
}
