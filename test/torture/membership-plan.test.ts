/**
 * The membership nemesis's choices (src/torture/membership-plan.ts), pure: what each step
 * kind does within the bounds, and how the asked-for members move.
 */
import { describe, expect, it } from "vitest";
import { applyChange, membershipLimits, planMembershipStep, type Members } from "../../src/torture/membership-plan.js";

const limits = membershipLimits(3);
const three: Members = { voters: [1, 2, 3], learners: [] };
/** Picks that choose the first candidate and never the leader. */
const first = [0, 0.9, 0, 0];

describe("membership nemesis plan", () => {
  it("bounds: at least 3 voters, at most 2 more members than founded, at most 2 learners", () => {
    expect(limits).toEqual({ votersMin: 3, membersMax: 5, learnersMax: 2 });
    expect(membershipLimits(5)).toEqual({ votersMin: 3, membersMax: 7, learnersMax: 2 });
  });

  it("add: a learner while there is room; else a promotion, else a removal", () => {
    expect(planMembershipStep("member-add", three, 1, first, limits)).toEqual([{ kind: "add" }]);
    const full = { voters: [1, 2, 3], learners: [4, 5] };
    expect(planMembershipStep("member-add", full, 1, first, limits)).toEqual([{ kind: "promote", id: 4 }]);
    const fullOfVoters = { voters: [1, 2, 3, 4, 5], learners: [] };
    expect(planMembershipStep("member-add", fullOfVoters, 1, first, limits)).toEqual([{ kind: "remove", id: 1 }]);
  });

  it("promote: a learner; with none, one is added and promoted", () => {
    expect(planMembershipStep("member-promote", { voters: [1, 2, 3], learners: [7] }, 1, first, limits)).toEqual([{ kind: "promote", id: 7 }]);
    expect(planMembershipStep("member-promote", three, 1, first, limits)).toEqual([{ kind: "add" }, { kind: "promote", id: "new" }]);
  });

  it("remove: the leader when picked; a voter is replaced first when too few would remain", () => {
    const leaderPick = [0, 0.1, 0, 0];
    expect(planMembershipStep("member-remove", { voters: [1, 2, 3, 4], learners: [] }, 2, leaderPick, limits)).toEqual([{ kind: "remove", id: 2 }]);
    expect(planMembershipStep("member-remove", three, 2, leaderPick, limits)).toEqual([{ kind: "add" }, { kind: "promote", id: "new" }, { kind: "remove", id: 2 }]);
    expect(planMembershipStep("member-remove", { voters: [1, 2, 3], learners: [6] }, 2, leaderPick, limits)).toEqual([
      { kind: "promote", id: 6 },
      { kind: "remove", id: 2 },
    ]);
    // A learner goes without growing first.
    expect(planMembershipStep("member-remove", { voters: [1, 2, 3], learners: [6] }, 2, [0, 0.9, 0.99, 0], limits)).toEqual([{ kind: "remove", id: 6 }]);
  });

  it("replace: the leader when picked, else any member", () => {
    expect(planMembershipStep("member-replace", three, 3, [0, 0.2, 0, 0], limits)).toEqual([{ kind: "replace", id: 3 }]);
    expect(planMembershipStep("member-replace", three, 3, [0, 0.9, 0.5, 0], limits)).toEqual([{ kind: "replace", id: 2 }]);
  });

  it("every plan keeps the bounds, whatever the picks", () => {
    let members: Members = three;
    let nextId = 4;
    const kinds = ["member-add", "member-promote", "member-remove", "member-replace"] as const;
    for (let step = 0; step < 500; step++) {
      const picks = [((step * 7919) % 101) / 101, ((step * 104_729) % 97) / 97, ((step * 1_299_709) % 89) / 89, 0];
      const leader = members.voters[step % members.voters.length];
      let newId: number | undefined;
      for (const action of planMembershipStep(kinds[step % 4], members, leader, picks, limits)) {
        if (action.kind === "add" || action.kind === "replace") newId = nextId++;
        members = applyChange(members, action, newId);
      }
      expect(members.voters.length).toBeGreaterThanOrEqual(limits.votersMin);
      expect(members.voters.length + members.learners.length).toBeLessThanOrEqual(limits.membersMax);
      expect(members.learners.length).toBeLessThanOrEqual(limits.learnersMax);
      expect(new Set([...members.voters, ...members.learners]).size).toBe(members.voters.length + members.learners.length);
    }
  });

  it("applyChange moves the members as asked", () => {
    expect(applyChange(three, { kind: "add" }, 4)).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(applyChange({ voters: [1, 2, 3], learners: [4] }, { kind: "promote", id: "new" }, 4)).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(applyChange(three, { kind: "remove", id: 2 })).toEqual({ voters: [1, 3], learners: [] });
    expect(applyChange(three, { kind: "replace", id: 2 }, 9)).toEqual({ voters: [1, 3, 9], learners: [] });
    expect(applyChange({ voters: [1, 2, 3], learners: [4] }, { kind: "replace", id: 4 }, 9)).toEqual({ voters: [1, 2, 3], learners: [9] });
  });
});
