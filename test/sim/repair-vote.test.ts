/**
 * A vote lost with the hard state, in a five-node cluster, whose candidate wins only after
 * the node asked the voters for their terms (src/raft/REPAIR.md, rule 5). Node N votes for
 * C in term T and loses its hard state; C's campaign goes on, its request to M held back.
 * N asks for terms while cut off from C: the three other voters (a set that meets every
 * majority) have not heard of T. Had N taken their term and voted again, D (campaigning in T
 * through a leadership transfer) and C (with M's late vote and N's lost one) would both lead
 * term T. N must wait for every voter's term, C's included: it grants nothing meanwhile, C
 * alone leads T, and once the network heals N learns T and is whole again.
 */
import { describe, expect, it } from "vitest";
import { MessageType, type Message } from "../../src/proto/schema.js";
import { Rng } from "../../src/rng.js";
import { commit, makeCluster, others, waitApplied, waitFor, waitForLeader } from "./helpers.js";
import { converge } from "./simulation.js";

const CORE = { electionTimeoutTicks: 20, heartbeatIntervalTicks: 1, preVote: false, checkQuorum: false };

describe("a vote lost with the hard state is never cast again in its term", () => {
  it("five nodes: the candidate that got the lost vote wins after the probe; the node waits for its term", () => {
    const cluster = makeCluster({ seed: 7, testName: "lost vote, candidate wins after the probe", nodeCount: 5, core: CORE });
    const leader = waitForLeader(cluster);
    waitApplied(cluster, commit(cluster, "a").index);
    const L = leader.id;
    const [C, N, D, M] = others(cluster, L) as [number, number, number, number];
    const T = leader.raft().softState().term + 1;
    const held: Message[] = [];
    let cutOff = true;
    cluster.network.intercept = (m) => {
      if (cutOff) {
        // C hears only N and campaigns in T; only N hears C (C's request to M is held back); N talks only to C.
        if (m.to === C) return m.from === N;
        if (m.from === C) {
          if (m.type === MessageType.VOTE && m.to === M) held.push(m);
          return m.to === N;
        }
        return m.from !== N || m.to === C;
      }
      // Then C hears only M's answer and reaches only M; N and C are cut apart; D does not reach M or C.
      if (m.to === C) return m.from === M && m.type === MessageType.VOTE_RESPONSE;
      if (m.from === C) return m.to === M;
      return !(m.from === D && m.to === M);
    };
    const votedC = () => cluster.node(N).disk.storage.hardState().vote === C && cluster.node(N).disk.storage.hardState().term === T;
    waitFor(cluster, votedC, 200, `node ${N} voted for ${C} in term ${T}`);
    cluster.run(2);
    expect(cluster.soft(C)).toMatchObject({ role: "candidate", term: T });
    cluster.crash(N);
    expect(cluster.node(N).damage("damage-hard-state", new Rng(1))?.hardStateLost).toBe(true);
    cutOff = false;
    cluster.restart(N);
    // Three voters answer with a term below T: not enough, C has not answered. (Were N to vote
    // again, D would win T with N's vote, and the checkers would report a double vote.)
    cluster.run(5);
    cluster.guard(() => cluster.node(L).raft().transferLeadership(D));
    cluster.run(3);
    for (const message of held) cluster.network.send(message);
    waitFor(cluster, () => cluster.soft(C)?.role === "leader", 20, `node ${C} leads term ${T}`);
    expect(cluster.checkers.leaders().get(T)).toBe(C);
    expect(cluster.node(N).raft().recovering()).toMatchObject({ hardStateLost: true });
    cluster.network.intercept = undefined;
    converge(cluster, 500, 1500);
    expect(cluster.node(N).raft().recovering()).toBeUndefined();
    expect(cluster.node(N).disk.repairMark()).toBeUndefined();
    // Reference: Figure 3 (Election Safety), REPAIR.md rule 5
  });
});
