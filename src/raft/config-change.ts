/**
 * Planning a membership change: from the configuration in force and a requested change,
 * the next configuration (pure; the leader-side rules on when a change may start are in
 * raft.ts, proposeConfigChange).
 *
 * Thesis chapter 4: a change of at most one voter goes straight to C_new (section 4.2,
 * "the single-server approach": the majorities of C_old and C_new overlap); a change of
 * several voters goes through the joint configuration C_old,new (section 4.3), which the
 * leader leaves by itself once it is committed. Learners (section 4.2.1) can be added and
 * removed in any number without touching the voters' majorities.
 */
import { RaftErrorCode, RaftwalError } from "./errors.js";
import type { ClusterConfig, Member } from "../proto/schema.js";
import { isJoint, isLearner, isMember, isVoter, sortedUnique, symmetricDifference } from "./cluster-config.js";

/** A membership change as an operator asks for it. */
export interface ConfigChange {
  /** New members, as learners: they receive the log (by snapshot first) and do not vote. */
  addLearners?: Member[];
  /** Learners to make voters (each must have caught up with the leader's log). */
  promote?: number[];
  /** Members (voters or learners) to remove. */
  remove?: number[];
}

function invalid(message: string): RaftwalError {
  return new RaftwalError(RaftErrorCode.INVALID_CONFIG_CHANGE, message);
}

function checkChange(current: ClusterConfig, change: ConfigChange): void {
  const added = change.addLearners ?? [];
  const promote = change.promote ?? [];
  const remove = change.remove ?? [];
  if (added.length + promote.length + remove.length === 0) throw invalid("the change adds, promotes and removes nobody");
  const named = [...added.map((member) => member.id), ...promote, ...remove];
  if (new Set(named).size !== named.length) throw invalid(`a member is named twice in one change: ${named.join(", ")}`);
  for (const member of added) {
    if (!Number.isSafeInteger(member.id) || member.id <= 0) throw invalid(`member id ${member.id} is not a positive integer`);
    if (isMember(current, member.id)) throw invalid(`node ${member.id} is already a member`);
    if (current.removed.includes(member.id)) throw invalid(`node ${member.id} was removed from this cluster; ids are never reused (give the new node a new id)`);
    if (member.peerAddress === "") throw invalid(`node ${member.id} needs a peer address`);
  }
  for (const id of promote) {
    if (isVoter(current, id)) throw invalid(`node ${id} is already a voter`);
    if (!isLearner(current, id)) throw new RaftwalError(RaftErrorCode.UNKNOWN_MEMBER, `node ${id} is not a learner of this cluster (add it as a learner first)`);
  }
  for (const id of remove) {
    if (!isMember(current, id)) throw new RaftwalError(RaftErrorCode.UNKNOWN_MEMBER, `node ${id} is not a member of this cluster`);
  }
}

/**
 * The configuration that `change` leads to from `current` (not joint): C_new directly for
 * a change of at most one voter, else the joint C_old,new. Throws coded errors for a
 * change that names no one, an id already in use or removed before, a promotion of a
 * non-learner, an unknown member, or the removal of the last voter.
 */
export function planConfigChange(current: ClusterConfig, change: ConfigChange): ClusterConfig {
  if (isJoint(current)) throw new RaftwalError(RaftErrorCode.CONFIG_CHANGE_IN_PROGRESS, "a joint configuration is still being left");
  checkChange(current, change);
  const remove = new Set(change.remove ?? []);
  const promote = change.promote ?? [];
  const added = change.addLearners ?? [];
  const voters = sortedUnique([...current.voters.filter((id) => !remove.has(id)), ...promote]);
  if (voters.length === 0) throw new RaftwalError(RaftErrorCode.LAST_VOTER, "the change would remove the last voter");
  const learners = sortedUnique([...current.learners.filter((id) => !remove.has(id) && !promote.includes(id)), ...added.map((member) => member.id)]);
  const joint = symmetricDifference(current.voters, voters) > 1;
  // Removed voters stay members (in the outgoing half) until the joint configuration is left.
  const votersOutgoing = joint ? [...current.voters] : [];
  const kept = new Set([...voters, ...learners, ...votersOutgoing]);
  const members = [...current.members.filter((member) => kept.has(member.id)), ...added.map((member) => ({ ...member }))].sort((a, b) => a.id - b.id);
  const gone = [...current.voters, ...current.learners].filter((id) => !kept.has(id));
  return { voters, votersOutgoing, learners, members, removed: sortedUnique([...current.removed, ...gone]) };
}

/** C_new from a joint C_old,new: the outgoing half is dropped, and its voters not in C_new are removed. */
export function leaveJointConfig(config: ClusterConfig): ClusterConfig {
  const kept = new Set([...config.voters, ...config.learners]);
  return {
    voters: [...config.voters],
    votersOutgoing: [],
    learners: [...config.learners],
    members: config.members.filter((member) => kept.has(member.id)).map((member) => ({ ...member })),
    removed: sortedUnique([...config.removed, ...config.votersOutgoing.filter((id) => !kept.has(id))]),
  };
}
