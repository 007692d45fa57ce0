/**
 * PreVote (thesis section 9.6), CheckQuorum and the leader lease (thesis sections
 * 6.2 and 4.2.3). Both are on by default.
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../src/raft/index.js";
import { drain, message, MessageType, Network, newCore } from "./helpers.js";

function leaderOf(net: Network, ids: number[]): number[] {
  return ids.filter((id) => net.core(id).softState().role === "leader");
}

describe("PreVote (thesis section 9.6)", () => {
  it("a partitioned node that rejoins does not depose a healthy leader nor raise the term", () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const term = net.core(1).softState().term;
    net.isolate(3);
    net.tickAll(100);
    expect(net.core(3).softState().term).toBe(term); // pre-votes failed: no term inflation
    net.heal();
    net.tickAll(30);
    expect(leaderOf(net, [1, 2, 3])).toEqual([1]);
    expect(net.core(1).softState().term).toBe(term);
    expect(net.core(3).softState()).toMatchObject({ role: "follower", leader: 1, term });
    // Reference: thesis section 9.6 ("a server first checks whether it could win an election before incrementing its term")
  });

  it("a pre-vote changes neither the voter's term nor its vote", () => {
    const storage = new MemoryStorage();
    const node = { core: newCore(1, [1, 2, 3], storage), storage };
    node.core.step(message({ type: MessageType.PRE_VOTE, from: 2, to: 1, term: 5 }));
    const out = drain(node);
    expect(out.map((m) => [m.type, m.term, m.reject])).toEqual([[MessageType.PRE_VOTE_RESPONSE, 5, false]]);
    expect(node.core.hardState()).toEqual({ term: 0, vote: 0, commit: 0 });
    // Reference: thesis section 9.6
  });

  it("a pre-candidate keeps its term; winning the pre-vote starts a real election in the next term", () => {
    const storage = new MemoryStorage();
    const node = { core: newCore(1, [1, 2, 3], storage), storage };
    for (let i = 0; i < 30 && node.core.softState().role === "follower"; i++) node.core.tick();
    expect(node.core.softState()).toMatchObject({ role: "pre-candidate", term: 0 });
    const preVotes = node.core.takeMessages();
    expect(preVotes.map((m) => [m.type, m.term])).toEqual([[MessageType.PRE_VOTE, 1], [MessageType.PRE_VOTE, 1]]);
    node.core.step(message({ type: MessageType.PRE_VOTE_RESPONSE, from: 2, to: 1, term: 1 }));
    expect(node.core.softState()).toMatchObject({ role: "candidate", term: 1 });
    // Reference: thesis section 9.6
  });

  it("a pre-candidate rejected by a majority returns to follower without changing its term", () => {
    const node = { core: newCore(1, [1, 2, 3]), storage: new MemoryStorage() };
    for (let i = 0; i < 30 && node.core.softState().role === "follower"; i++) node.core.tick();
    node.core.step(message({ type: MessageType.PRE_VOTE_RESPONSE, from: 2, to: 1, term: 0, reject: true }));
    node.core.step(message({ type: MessageType.PRE_VOTE_RESPONSE, from: 3, to: 1, term: 0, reject: true }));
    expect(node.core.softState()).toMatchObject({ role: "follower", term: 0 });
    // Reference: thesis section 9.6
  });
});

describe("CheckQuorum and the leader lease (thesis sections 6.2, 4.2.3)", () => {
  it("a follower that heard from its leader within the election timeout ignores a higher-term (pre-)vote", () => {
    const storage = new MemoryStorage();
    const node = { core: newCore(2, [1, 2, 3], storage), storage };
    node.core.step(message({ type: MessageType.HEARTBEAT, from: 1, to: 2, term: 1 }));
    drain(node);
    node.core.step(message({ type: MessageType.PRE_VOTE, from: 3, to: 2, term: 2, index: 100, logTerm: 1 }));
    node.core.step(message({ type: MessageType.VOTE, from: 3, to: 2, term: 2, index: 100, logTerm: 1 }));
    expect(drain(node)).toEqual([]);
    expect(node.core.hardState()).toMatchObject({ term: 1, vote: 0 });
    // After an election timeout without the leader, it votes again.
    for (let i = 0; i < 10; i++) node.core.tick();
    node.core.step(message({ type: MessageType.PRE_VOTE, from: 3, to: 2, term: 2, index: 100, logTerm: 1 }));
    expect(node.core.takeMessages().map((m) => [m.type, m.reject])).toEqual([[MessageType.PRE_VOTE_RESPONSE, false]]);
    // Reference: thesis section 4.2.3 ("if a server receives a RequestVote request within the minimum election timeout of hearing from a current leader, it does not update its term or grant its vote")
  });

  it("a leader that has not heard from a majority within an election timeout steps down", () => {
    const net = new Network([1, 2, 3, 4, 5]);
    net.elect(1);
    net.isolate(1);
    net.tickAll(10);
    expect(net.core(1).softState().role).toBe("leader"); // first check: followers were active in the last interval
    net.tickAll(10);
    expect(net.core(1).softState()).toMatchObject({ role: "follower", leader: 0 });
    // Reference: thesis section 6.2 ("a leader steps down if an election timeout elapses without a successful round of heartbeats to a majority")
  });

  it("a leader that hears from a majority keeps leading", () => {
    const net = new Network([1, 2, 3, 4, 5]);
    net.elect(1);
    net.partition([1, 2, 3], [4, 5]);
    net.tickAll(50);
    expect(net.core(1).softState().role).toBe("leader");
    // Reference: thesis section 6.2
  });

  it("without PreVote, a rejoining node's higher term reaches the leader through its stale-term answer", () => {
    const net = new Network([1, 2, 3], { preVote: false });
    net.elect(1);
    net.isolate(3);
    net.tickAll(60);
    const term3 = net.core(3).softState().term;
    expect(term3).toBeGreaterThan(net.core(1).softState().term);
    net.heal();
    net.tickAll(60);
    // A leader exists again, at a term at least as high as the rejoining node's.
    const leaders = leaderOf(net, [1, 2, 3]);
    expect(leaders.length).toBe(1);
    expect(net.core(leaders[0]).softState().term).toBeGreaterThanOrEqual(term3);
    // Reference: section 5.1 (higher terms win), thesis section 9.6 (the disruption PreVote avoids)
  });
});
