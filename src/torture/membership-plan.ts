/**
 * The membership nemesis's choices, pure: given a step's kind and picks, the membership
 * the tool has asked for so far, and the leader, which changes to make, in order. The
 * cluster stays within bounds (at least `votersMin` voters after each step, at most
 * `membersMax` members and `learnersMax` learners), so a step that cannot do what its
 * kind names does the nearest thing that keeps the bounds (a promote with no learner adds
 * one first; a remove that would leave too few voters grows the cluster first).
 *
 * Members are also what the run checks the final configuration against: `applyChange`
 * is how the asked-for membership moves.
 */
import { choose, type NEMESIS_GROUPS } from "./nemesis.js";

export type MembershipFaultKind = (typeof NEMESIS_GROUPS)["membership"][number];

/** The voters and learners the tool has asked for. */
export interface Members {
  voters: number[];
  learners: number[];
}

/** `"new"`: the node the step's `add` started. */
export type MemberTarget = number | "new";

export type MemberAction =
  | { kind: "add" }
  | { kind: "promote"; id: MemberTarget }
  | { kind: "remove"; id: number }
  /** Kill the node, wipe its data directory, remove it, add a new node in its place (promoted if it was a voter). */
  | { kind: "replace"; id: number };

export interface MembershipLimits {
  votersMin: number;
  membersMax: number;
  learnersMax: number;
}

/** Cluster-size bounds for a run that starts with `nodes` voters. */
export function membershipLimits(nodes: number): MembershipLimits {
  return { votersMin: Math.min(3, nodes), membersMax: nodes + 2, learnersMax: 2 };
}

/** Picks: [0] a member to promote or remove, [1] < 0.5: remove the leader (0.3 for replace), [2] another member. */
export function planMembershipStep(kind: MembershipFaultKind, members: Members, leader: number | undefined, picks: readonly number[], limits: MembershipLimits): MemberAction[] {
  const all = [...members.voters, ...members.learners];
  const canAdd = members.learners.length < limits.learnersMax && all.length < limits.membersMax;
  const canPromote = members.voters.length < limits.membersMax;
  switch (kind) {
    case "member-add":
      if (canAdd) return [{ kind: "add" }];
      return members.learners.length > 0 && canPromote ? [{ kind: "promote", id: choose(members.learners, 1, picks)[0] }] : planRemove(members, leader, picks, limits);
    case "member-promote":
      if (members.learners.length > 0 && canPromote) return [{ kind: "promote", id: choose(members.learners, 1, picks)[0] }];
      if (canAdd && canPromote) return [{ kind: "add" }, { kind: "promote", id: "new" }];
      return planRemove(members, leader, picks, limits);
    case "member-remove":
      return planRemove(members, leader, picks, limits);
    case "member-replace": {
      const target = leader !== undefined && picks[1] < 0.3 ? leader : choose(all, 1, [picks[2]])[0];
      return target === undefined ? [] : [{ kind: "replace", id: target }];
    }
  }
}

/** Removes the leader half of the time, else any member; grows first when the voters would fall below the minimum. */
function planRemove(members: Members, leader: number | undefined, picks: readonly number[], limits: MembershipLimits): MemberAction[] {
  const all = [...members.voters, ...members.learners];
  const target = leader !== undefined && picks[1] < 0.5 ? leader : choose(all, 1, [picks[2]])[0];
  if (target === undefined) return [];
  if (!members.voters.includes(target) || members.voters.length - 1 >= limits.votersMin) return [{ kind: "remove", id: target }];
  if (members.learners.length > 0) return [{ kind: "promote", id: members.learners[0] }, { kind: "remove", id: target }];
  return [{ kind: "add" }, { kind: "promote", id: "new" }, { kind: "remove", id: target }];
}

/** The members after one change (`newId`: the node an add or a replace started). */
export function applyChange(members: Members, action: MemberAction, newId?: number): Members {
  const without = (ids: number[], id: number) => ids.filter((other) => other !== id);
  const target = action.kind === "add" ? undefined : action.id === "new" ? newId : action.id;
  switch (action.kind) {
    case "add":
      return { voters: members.voters, learners: [...members.learners, newId!] };
    case "promote":
      return { voters: [...members.voters, target!], learners: without(members.learners, target!) };
    case "remove":
      return { voters: without(members.voters, target!), learners: without(members.learners, target!) };
    case "replace": {
      const wasVoter = members.voters.includes(target!);
      const rest = { voters: without(members.voters, target!), learners: without(members.learners, target!) };
      return wasVoter ? { voters: [...rest.voters, newId!], learners: rest.learners } : { voters: rest.voters, learners: [...rest.learners, newId!] };
    }
  }
}
