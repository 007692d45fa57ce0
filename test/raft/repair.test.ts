/**
 * Protocol-aware recovery in the core (src/raft/recovery.ts, REPAIR.md; Alagappan et al.,
 * FAST'18): a node that lost durable state never lets the loss count toward a quorum, and
 * is repaired from the leader.
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../../src/raft/index.js";
import { bytes, drain, entry, message, MessageType, Network, newCore } from "./helpers.js";
import type { Message } from "../../src/proto/schema.js";

const options = { preVote: false, checkQuorum: false };

/** A 3-node cluster led by 1 with `count` committed entries everywhere. */
function clusterWith(count: number): Network {
  const net = new Network([1, 2, 3], options);
  net.elect(1);
  for (let i = 0; i < count; i++) net.core(1).propose(bytes(`e${i}`));
  net.deliver();
  net.tickAll(1);
  return net;
}

/** Restarts node `id` as if its storage had lost the log from `lostFrom` on (the host truncated it there). */
function restartWithLostLog(net: Network, id: number, lostFrom: number): void {
  const old = net.node(id);
  const lostTo = old.storage.lastIndex();
  const storage = new MemoryStorage();
  const kept = [];
  for (let i = 1; i < lostFrom; i++) kept.push(old.storage.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0]);
  storage.append(kept);
  const hard = old.storage.hardState();
  storage.setHardState({ ...hard, commit: Math.min(hard.commit, lostFrom - 1) });
  net.nodes.set(id, { ...old, core: newCore(id, [1, 2, 3], storage, { ...options, damage: { lostFromIndex: lostFrom, lostToIndex: lostTo, hardStateLost: false } }), storage, applied: [] });
}

function sentBy(net: Network, id: number, type: number): Message[] {
  return net.sent.filter((m) => m.from === id && m.type === type);
}

describe("a node that lost part of its log", () => {
  it("neither campaigns nor grants votes until the leader has refilled its log", () => {
    const net = clusterWith(5);
    net.isolate(1);
    restartWithLostLog(net, 2, 3);
    net.sent.length = 0;
    expect(net.core(2).recovering()).toMatchObject({ lostFromIndex: 3 });
    net.tick(2, 50);
    net.deliver();
    expect(sentBy(net, 2, MessageType.VOTE)).toEqual([]);
    // Node 3 campaigns: node 2 must refuse (its short log no longer shows what it promised).
    const core3 = net.core(3);
    for (let i = 0; i < 60 && core3.softState().role !== "candidate"; i++) core3.tick();
    net.deliver();
    const answers = net.sent.filter((m) => m.from === 2 && m.type === MessageType.VOTE_RESPONSE);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.every((m) => m.reject)).toBe(true);
    expect(core3.softState().role).not.toBe("leader");
    // Reference: FAST'18 CTRL (no vote while entries are lost), section 5.4.1 (the vote rests on the log)
  });

  it("tells the leader where its log ends; the leader resends from there, and then it is whole again", () => {
    const net = clusterWith(6);
    restartWithLostLog(net, 2, 4);
    net.tickAll(2);
    const repair = sentBy(net, 2, MessageType.REPAIR);
    expect(repair[0]).toMatchObject({ to: 1, index: 4 });
    expect(net.sent.some((m) => m.from === 1 && m.to === 2 && m.type === MessageType.REPAIR_RESPONSE)).toBe(true);
    net.tickAll(3);
    expect(net.node(2).storage.lastIndex()).toBe(net.node(1).storage.lastIndex());
    expect(net.core(2).recovering()).toBeUndefined();
    // Reference: FAST'18 CTRL (repair from the leader), section 5.3 (the leader resends what the follower lacks)
  });

  it("the leader stops counting the old match index: a commit needs the repaired copy", () => {
    const net = clusterWith(4);
    net.isolate(3);
    restartWithLostLog(net, 2, 2);
    // Node 2 talks to the leader but drops every append: it stays behind.
    net.filters.push((m) => !(m.to === 2 && m.type === MessageType.APPEND));
    net.tickAll(2);
    const position = net.core(1).propose(bytes("new"));
    net.deliver();
    net.tickAll(2);
    expect(net.core(1).commitIndex()).toBeLessThan(position.index);
    // Reference: FAST'18 CTRL (a lost entry is never counted toward a quorum)
  });

  it("a heartbeat crediting it with more than it holds does not move its commit past its log", () => {
    const storage = new MemoryStorage();
    storage.append([entry(1, 1, "a"), entry(2, 1, "b")]);
    storage.setHardState({ term: 1, vote: 0, commit: 2 });
    const node = { core: newCore(2, [1, 2, 3], storage, { ...options, damage: { lostFromIndex: 3, lostToIndex: 9, hardStateLost: false } }), storage };
    node.core.step(message({ type: MessageType.HEARTBEAT, from: 1, to: 2, term: 1, commit: 9 }));
    drain(node);
    expect(node.core.commitIndex()).toBe(2);
  });
});

describe("a node that lost its term and vote", () => {
  function lostHardState(voters = [1, 2, 3]) {
    const storage = new MemoryStorage();
    storage.append([entry(1, 3, "a")]);
    const core = newCore(2, voters, storage, { ...options, damage: { lostFromIndex: 0, lostToIndex: 1, hardStateLost: true } });
    return { core, storage };
  }

  it("does not vote until enough voters told their terms to meet every majority that counted its lost vote", () => {
    const node = lostHardState();
    for (let i = 0; i < 30; i++) node.core.tick();
    const probes = drain(node).filter((m) => m.type === MessageType.TERM_PROBE);
    expect([...new Set(probes.map((m) => m.to))].sort()).toEqual([1, 3]);
    // One answer is not enough in a 3-voter cluster: the voter that did not answer may hold the lost vote's term.
    node.core.step(message({ type: MessageType.TERM_PROBE_RESPONSE, from: 1, to: 2, term: 5 }));
    drain(node);
    node.core.step(message({ type: MessageType.VOTE, from: 3, to: 2, term: 7, index: 1, logTerm: 3 }));
    expect(drain(node).find((m) => m.type === MessageType.VOTE_RESPONSE)?.reject).toBe(true);
    node.core.step(message({ type: MessageType.TERM_PROBE_RESPONSE, from: 3, to: 2, term: 7 }));
    drain(node);
    expect(node.core.recovering()).toBeUndefined();
    // It may have voted in 7: it takes 7 with a vote for itself, never for another in 7...
    expect(node.core.hardState()).toMatchObject({ term: 7, vote: 2 });
    node.core.step(message({ type: MessageType.VOTE, from: 1, to: 2, term: 7, index: 1, logTerm: 3 }));
    expect(drain(node).find((m) => m.type === MessageType.VOTE_RESPONSE)?.reject).toBe(true);
    // ... and votes normally in later terms.
    node.core.step(message({ type: MessageType.VOTE, from: 1, to: 2, term: 8, index: 1, logTerm: 3 }));
    expect(drain(node).find((m) => m.type === MessageType.VOTE_RESPONSE)?.reject).toBe(false);
    // Reference: FAST'18 CTRL (learn the term from a majority), Figure 2 (at most one vote per term)
  });

  it("answers from voters that are recovering themselves do not count", () => {
    const node = lostHardState();
    for (let i = 0; i < 30; i++) node.core.tick();
    drain(node);
    node.core.step(message({ type: MessageType.TERM_PROBE_RESPONSE, from: 1, to: 2, term: 5 }));
    node.core.step(message({ type: MessageType.TERM_PROBE_RESPONSE, from: 3, to: 2, term: 9, reject: true }));
    drain(node);
    expect(node.core.recovering()).toMatchObject({ hardStateLost: true });
  });

  it("a node whose damage took every configuration entry does not stop as unrepairable: it waits for a leader", () => {
    // The whole log lost (a damaged newest snapshot, no older one): no configuration, no voter to ask.
    const storage = new MemoryStorage();
    const core = newCore(2, [], storage, { ...options, damage: { lostFromIndex: 1, lostToIndex: 9, hardStateLost: false } });
    const node = { core, storage };
    for (let i = 0; i < 200; i++) core.tick();
    drain(node);
    expect(core.recovering()).toMatchObject({ lostFromIndex: 1 });
    // A leader makes contact: within a round of asking, it is asked to repair from index 1.
    core.step(message({ type: MessageType.HEARTBEAT, from: 1, to: 2, term: 3 }));
    for (let i = 0; i < 10; i++) core.tick();
    expect(drain(node).find((m) => m.type === MessageType.REPAIR)).toMatchObject({ to: 1, index: 1 });
    // Reference: FAST'18 CTRL (a node repairs from the leader), REPAIR.md rule 6 (only a quorum of recovering voters is unrepairable)
  });

  it("stops loudly when a quorum is recovering and no leader appears: it never invents data", () => {
    const node = lostHardState();
    expect(() => {
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 25; i++) node.core.tick();
        drain(node);
        node.core.step(message({ type: MessageType.TERM_PROBE_RESPONSE, from: 3, to: 2, term: 4, reject: true }));
      }
    }).toThrow(expect.objectContaining({ code: "RAFT_ERR_UNREPAIRABLE" }));
  });
});
