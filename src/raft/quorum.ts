/**
 * Majority arithmetic over a configuration, joint or not (section 5.2: "a candidate wins
 * an election if it receives votes from a majority of the servers"; section 5.3: an entry
 * is committed once "replicated on a majority of the servers"; thesis section 4.3: in the
 * joint configuration C_old,new "agreement (for elections and entry commitment) requires
 * separate majorities from both the old and new configurations").
 *
 * A configuration's voters come in two halves: `voters` (incoming) and `votersOutgoing`
 * (non-empty only while joint). An empty half agrees to everything, so a non-joint
 * configuration is decided by `voters` alone. Learners are in neither half: they never
 * vote and never count.
 */
import type { ClusterConfig } from "../proto/schema.js";

export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest index present on a majority of `voters`, given each one's match index;
 * +Infinity for an empty half. `scratch` is a caller-owned array, reused to avoid an
 * allocation per call.
 */
export function majorityIndex(voters: readonly number[], matchOf: (id: number) => number, scratch: number[]): number {
  const count = voters.length;
  if (count === 0) return Number.POSITIVE_INFINITY;
  scratch.length = count;
  // Insertion sort, descending: voter counts are small (a handful).
  for (let i = 0; i < count; i++) {
    const value = matchOf(voters[i]);
    let j = i - 1;
    while (j >= 0 && scratch[j] < value) {
      scratch[j + 1] = scratch[j];
      j -= 1;
    }
    scratch[j + 1] = value;
  }
  return scratch[majority(count) - 1];
}

/** The highest index present on a majority of both halves (the commit rule's quorum). */
export function jointIndex(config: ClusterConfig, matchOf: (id: number) => number, scratch: number[]): number {
  return Math.min(majorityIndex(config.voters, matchOf, scratch), majorityIndex(config.votersOutgoing, matchOf, scratch));
}

export type VoteResult = "won" | "lost" | "pending";

/** The outcome of a vote among `voters` (true = granted); votes from others are ignored. */
export function majorityVote(voters: readonly number[], votes: ReadonlyMap<number, boolean>): VoteResult {
  if (voters.length === 0) return "won";
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted += 1;
    else if (vote === false) rejected += 1;
  }
  const needed = majority(voters.length);
  if (granted >= needed) return "won";
  if (voters.length - rejected < needed) return "lost";
  return "pending";
}

/** Won only with a majority of both halves; lost as soon as either half is lost. */
export function jointVote(config: ClusterConfig, votes: ReadonlyMap<number, boolean>): VoteResult {
  const incoming = majorityVote(config.voters, votes);
  const outgoing = majorityVote(config.votersOutgoing, votes);
  if (incoming === "lost" || outgoing === "lost") return "lost";
  if (incoming === "won" && outgoing === "won") return "won";
  return "pending";
}

/** Whether the voters for which `yes` holds form a quorum of both halves. */
export function jointQuorum(config: ClusterConfig, yes: (id: number) => boolean): boolean {
  return hasMajority(config.voters, yes) && hasMajority(config.votersOutgoing, yes);
}

/** Whether the voters for which `yes` holds are a majority of `voters` (an empty set always is). */
export function hasMajority(voters: readonly number[], yes: (id: number) => boolean): boolean {
  if (voters.length === 0) return true;
  let count = 0;
  for (const id of voters) if (yes(id)) count += 1;
  return count >= majority(voters.length);
}
