/**
 * Terms, elections and votes: Raft paper sections 5.1, 5.2 and 5.4.1.
 * Single cores are driven by hand; small networks use the FIFO pump in helpers.ts.
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../src/raft/index.js";
import { drain, message, MessageType, Network, newCore, seededRandom, storageWithTerms } from "./helpers.js";

const noPreVote = { preVote: false, checkQuorum: false };

/** Ticks a lone core until it starts campaigning; returns the ticks used. */
function ticksUntilCampaign(core: ReturnType<typeof newCore>): number {
  for (let ticks = 1; ticks <= 100; ticks++) {
    core.tick();
    if (core.softState().role !== "follower") return ticks;
  }
  throw new Error("never campaigned");
}

/** A core made candidate at term 1 (pre-vote off), its Ready persisted and advanced. */
function candidate(id = 1, voters = [1, 2, 3]) {
  const storage = new MemoryStorage();
  const core = newCore(id, voters, storage, noPreVote);
  ticksUntilCampaign(core);
  const node = { core, storage };
  const sent = drain(node);
  return { core, storage, node, sent };
}

/** A core made leader at term 1 of a 3-node cluster (pre-vote off). */
function leader() {
  const c = candidate();
  c.core.step(message({ type: MessageType.VOTE_RESPONSE, from: 2, to: 1, term: 1 }));
  drain(c.node);
  return c;
}

describe("terms (section 5.1)", () => {
  for (const role of ["follower", "candidate", "leader"] as const) {
    it(`a ${role} that sees a higher term adopts it and becomes follower`, () => {
      const setup = role === "leader" ? leader() : role === "candidate" ? candidate() : { core: newCore(1, [1, 2, 3]) };
      const { core } = setup;
      expect(core.softState().role).toBe(role);
      core.step(message({ type: MessageType.APPEND, from: 2, to: 1, term: 5 }));
      expect(core.softState()).toEqual({ role: "follower", leader: 2, term: 5 });
      expect(core.hardState().term).toBe(5);
      expect(core.hardState().vote).toBe(0);
      // Reference: section 5.1 ("If one server's current term is smaller than the other's, then it updates its current term")
    });
  }

  it("a request with a stale term is rejected and the sender learns the current term", () => {
    const storage = new MemoryStorage();
    storage.setHardState({ term: 3, vote: 0, commit: 0 });
    const node = { core: newCore(1, [1, 2, 3], storage), storage };
    node.core.step(message({ type: MessageType.APPEND, from: 2, to: 1, term: 2, entries: [{ index: 1, term: 2, type: 0, data: new Uint8Array(1) }] }));
    const out = drain(node);
    expect(node.core.softState().term).toBe(3);
    expect(storage.lastIndex()).toBe(0);
    expect(out.map((m) => [m.type, m.to, m.term])).toEqual([[MessageType.APPEND_RESPONSE, 2, 3]]);
    // Reference: section 5.1 ("If a server receives a request with a stale term number, it rejects the request")
  });

  it("a stale vote request is rejected with the current term", () => {
    const storage = new MemoryStorage();
    storage.setHardState({ term: 3, vote: 0, commit: 0 });
    const node = { core: newCore(1, [1, 2, 3], storage, noPreVote), storage };
    node.core.step(message({ type: MessageType.VOTE, from: 2, to: 1, term: 2 }));
    const out = drain(node);
    expect(node.core.hardState()).toEqual({ term: 3, vote: 0, commit: 0 });
    expect(out.map((m) => [m.type, m.term, m.reject])).toEqual([[MessageType.VOTE_RESPONSE, 3, true]]);
    // Reference: section 5.1
  });

  it("a stale response is ignored by the leader", () => {
    const { core, node } = leader();
    core.step(message({ type: MessageType.VOTE, from: 3, to: 1, term: 1 })); // same term: rejected, no change
    core.step(message({ type: MessageType.APPEND_RESPONSE, from: 2, to: 1, term: 0, index: 1 }));
    drain(node);
    expect(core.progress().find((p) => p.id === 2)!.match).toBe(0);
    expect(core.softState().role).toBe("leader");
    // Reference: section 5.1
  });
});

describe("leader election (section 5.2)", () => {
  it("a follower that hears nothing for an election timeout becomes candidate, increments its term and votes for itself", () => {
    const { core, sent } = candidate();
    expect(core.softState()).toEqual({ role: "candidate", leader: 0, term: 1 });
    expect(core.hardState().vote).toBe(1);
    const requests = sent.filter((m) => m.type === MessageType.VOTE);
    expect(requests.map((m) => m.to).sort()).toEqual([2, 3]);
    expect(requests.every((m) => m.term === 1)).toBe(true);
    // Reference: section 5.2 ("a follower increments its current term and transitions to candidate state. It then votes for itself")
  });

  it("election timeouts are drawn at random from [base, 2 * base)", () => {
    const observed = new Set<number>();
    for (let seed = 1; seed <= 30; seed++) {
      const random = seededRandom(seed * 1_000_003);
      const core = newCore(1, [1, 2, 3], new MemoryStorage(), { random });
      const ticks = ticksUntilCampaign(core);
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      observed.add(ticks);
    }
    expect(observed.size).toBeGreaterThan(3);
    // Reference: section 5.2 ("election timeouts are chosen randomly from a fixed interval")
  });

  it("a candidate that receives votes from a majority becomes leader", () => {
    const { core } = leader();
    expect(core.softState()).toEqual({ role: "leader", leader: 1, term: 1 });
    // Reference: section 5.2 ("A candidate wins an election if it receives votes from a majority of the servers")
  });

  it("a candidate that receives an append from a leader of its term returns to follower", () => {
    const { core } = candidate();
    core.step(message({ type: MessageType.APPEND, from: 2, to: 1, term: 1 }));
    expect(core.softState()).toEqual({ role: "follower", leader: 2, term: 1 });
    // Reference: section 5.2 ("If the leader's term ... is at least as large as the candidate's current term, then the candidate ... returns to follower state")
  });

  it("a candidate rejected by a majority returns to follower", () => {
    const { core } = candidate(1, [1, 2, 3, 4, 5]);
    for (const from of [2, 3, 4]) core.step(message({ type: MessageType.VOTE_RESPONSE, from, to: 1, term: 1, reject: true }));
    expect(core.softState().role).toBe("follower");
    expect(core.softState().term).toBe(1);
    // Reference: section 5.2
  });

  it("a candidate whose election times out without a winner starts a new election in a new term", () => {
    const { core, node } = candidate();
    for (let i = 0; i < 20 && core.softState().term === 1; i++) core.tick();
    drain(node);
    expect(core.softState()).toEqual({ role: "candidate", leader: 0, term: 2 });
    expect(core.hardState().vote).toBe(1);
    // Reference: section 5.2 ("the candidate will time out and start a new election by incrementing its term")
  });

  it("a server votes for at most one candidate per term, first come first served", () => {
    const storage = new MemoryStorage();
    const node = { core: newCore(1, [1, 2, 3], storage, noPreVote), storage };
    node.core.step(message({ type: MessageType.VOTE, from: 2, to: 1, term: 1 }));
    node.core.step(message({ type: MessageType.VOTE, from: 3, to: 1, term: 1 }));
    const replies = drain(node).filter((m) => m.type === MessageType.VOTE_RESPONSE);
    expect(replies.map((m) => [m.to, m.reject])).toEqual([[2, false], [3, true]]);
    expect(storage.hardState().vote).toBe(2);
    // A retry from the same candidate is granted again.
    node.core.step(message({ type: MessageType.VOTE, from: 2, to: 1, term: 1 }));
    expect(drain(node).map((m) => [m.to, m.reject])).toEqual([[2, false]]);
    // Reference: section 5.2 ("each server will vote for at most one candidate in a given term, on a first-come-first-served basis")
  });

  it("a network of three elects exactly one leader and the others follow it", () => {
    const net = new Network([1, 2, 3]);
    net.tickAll(40);
    const leaders = [1, 2, 3].filter((id) => net.core(id).softState().role === "leader");
    expect(leaders.length).toBe(1);
    const term = net.core(leaders[0]).softState().term;
    for (const id of [1, 2, 3]) expect(net.core(id).softState()).toMatchObject({ leader: leaders[0], term });
    // Reference: section 5.2
  });

  it("a minority cannot elect a leader", () => {
    const net = new Network([1, 2, 3, 4, 5]);
    net.partition([1, 2], [3, 4, 5]);
    net.filters.push((m) => ![3, 4, 5].includes(m.from)); // 3, 4, 5 are down
    net.tickAll(200);
    for (const id of [1, 2]) expect(net.core(id).softState().role).not.toBe("leader");
    // Reference: section 5.2
  });
});

describe("election restriction (section 5.4.1)", () => {
  it("a voter denies its vote to a candidate whose last term is older", () => {
    const storage = storageWithTerms([1, 2]);
    const node = { core: newCore(1, [1, 2, 3], storage, noPreVote), storage };
    node.core.step(message({ type: MessageType.VOTE, from: 2, to: 1, term: 3, index: 5, logTerm: 1 }));
    expect(drain(node).map((m) => [m.type, m.reject])).toEqual([[MessageType.VOTE_RESPONSE, true]]);
    expect(storage.hardState().vote).toBe(0);
    // Reference: section 5.4.1 ("If the logs have last entries with different terms, then the log with the later term is more up-to-date")
  });

  it("a voter denies its vote to a candidate with the same last term but a shorter log", () => {
    const storage = storageWithTerms([1, 2, 2]);
    const node = { core: newCore(1, [1, 2, 3], storage, noPreVote), storage };
    node.core.step(message({ type: MessageType.VOTE, from: 2, to: 1, term: 3, index: 2, logTerm: 2 }));
    expect(drain(node).map((m) => m.reject)).toEqual([true]);
    node.core.step(message({ type: MessageType.VOTE, from: 3, to: 1, term: 3, index: 3, logTerm: 2 }));
    expect(drain(node).map((m) => [m.to, m.reject])).toEqual([[3, false]]);
    // Reference: section 5.4.1 ("If the logs end with the same term, then whichever log is longer is more up-to-date")
  });

  it("a voter grants its vote to a candidate with a later last term even if its log is shorter", () => {
    const storage = storageWithTerms([1, 1, 1, 1]);
    const node = { core: newCore(1, [1, 2, 3], storage, noPreVote), storage };
    node.core.step(message({ type: MessageType.VOTE, from: 2, to: 1, term: 3, index: 2, logTerm: 2 }));
    expect(drain(node).map((m) => m.reject)).toEqual([false]);
    // Reference: section 5.4.1
  });
});
